"""Alembic environment: runs on the connection models.database hands it."""

from __future__ import annotations

from alembic import context

from models.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when someone runs plain `alembic`
    raise RuntimeError("run migrations with `candour db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

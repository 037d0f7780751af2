"""PostgreSQL: compress stored messages with lz4 instead of pglz

Every incoming message and every outgoing one is stored whole, and read back whole to
send it and to file its copy in Sent. PostgreSQL compresses such values with pglz by
default; lz4 does the same job at a fraction of the CPU. Only where the server has lz4
(PostgreSQL 14 and later, built with it, as Debian's is); SQLite stores bytes as they are.
Existing rows keep their compression until rewritten; both read back the same.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = (("message", "raw"), ("outbox", "raw"))


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).scalar()
    return bool(found)


def upgrade() -> None:
    if _has_lz4():
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _has_lz4():
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION pglz")

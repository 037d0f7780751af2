"""the whole procedure: outcomes, early resolution, extensions, remedies, lessons

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def _table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f(f"fk_{name}_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_case_id"), ["case_id"], unique=False)


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("outcome_summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_responder", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("early_due_at", _WHEN, nullable=True))
    _table(
        "extension",
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("old_due_at", _WHEN, nullable=False),
        sa.Column("new_due_at", _WHEN, nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
    )
    _table(
        "remedy",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
    )
    _table(
        "lesson",
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("due_at", _WHEN, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("done_at", _WHEN, nullable=True),
        sa.Column("done_by", sa.String(length=320), nullable=True),
    )


def downgrade() -> None:
    for name in ("lesson", "remedy", "extension"):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{name}_case_id"))
        op.drop_table(name)
    with op.batch_alter_table("case", schema=None) as batch_op:
        for column in ("early_due_at", "last_responder", "outcome_summary", "outcome"):
            batch_op.drop_column(column)

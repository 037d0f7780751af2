"""mailbox sync: when each mailbox was last seen through, and its backlog then

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_sync",
        sa.Column("mailbox", sa.String(length=120), primary_key=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailbox_sync")

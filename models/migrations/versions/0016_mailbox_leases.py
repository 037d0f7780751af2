"""mailbox leases: which worker watches each mailbox, until when; which workers share the
mailboxes; and the reply-signing secret that workers sharing a PostgreSQL database share

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_lease",
        sa.Column("mailbox", sa.String(length=120), primary_key=True),
        sa.Column("holder", sa.String(length=120), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "lease_worker",
        sa.Column("id", sa.String(length=120), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "shared_secret",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shared_secret")
    op.drop_table("lease_worker")
    op.drop_table("mailbox_lease")

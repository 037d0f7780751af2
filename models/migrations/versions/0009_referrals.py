"""referrals: the automatic reply a case got, and when its referral is to be confirmed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("automatic_reply", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("referral_due_at", sa.DateTime(timezone=True), nullable=True))
    # Cases a signpost closed before: their automatic reply was the signpost.
    op.execute(
        "UPDATE \"case\" SET automatic_reply = 'signpost' "
        "WHERE close_reason = 'referred' AND acknowledged_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("referral_due_at")
        batch_op.drop_column("automatic_reply")

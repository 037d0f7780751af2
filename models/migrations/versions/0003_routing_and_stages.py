"""routing and stages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ack_breached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("route", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("assigned_to", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("pseudonym", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stage", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("stage_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("request_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("late_request", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("close_reason", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("close_reason")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("late_request")
        batch_op.drop_column("request_due_at")
        batch_op.drop_column("responded_at")
        batch_op.drop_column("stage_due_at")
        batch_op.drop_column("stage_started_at")
        batch_op.drop_column("stage")
        batch_op.drop_column("pseudonym")
        batch_op.drop_column("assigned_to")
        batch_op.drop_column("route")
        batch_op.drop_column("ack_breached")

"""representative: who acts for the complainant, and their authority

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("representative", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("representative_name", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("representative_authority", sa.String(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("representative_authority")
        batch_op.drop_column("representative_name")
        batch_op.drop_column("representative")

"""outbox: drop the three single-column indexes that others cover

Every write of an outbox row (queued, claimed, sent, copy filed: four versions of the row)
adds an entry to each of its indexes on PostgreSQL. `mailbox` is the first column of
ix_outbox_sent_copy and ix_outbox_rate, `status` of ix_outbox_due, and no query looks a
row up by `recipient` alone (the loop guard uses ix_outbox_rate).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_mailbox"))
        batch_op.drop_index(batch_op.f("ix_outbox_recipient"))
        batch_op.drop_index(batch_op.f("ix_outbox_status"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_recipient"), ["recipient"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_mailbox"), ["mailbox"], unique=False)

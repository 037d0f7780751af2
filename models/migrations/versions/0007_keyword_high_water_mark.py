"""IMAP keywords: one high-water mark per mailbox instead of a flag on every message

Setting `message.flagged` after each batch rewrote every message row a second time
(raw bytes included, and on PostgreSQL an entry in each of its five indexes), and the
repair at every cycle's start filtered the whole mailbox for unflagged rows.
`imap_cursor.keyword_uid` says the same for a whole mailbox: every recorded message up
to it has its keyword. It starts below the lowest message still unflagged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imap_cursor", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("keyword_uid", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute(
        """
        UPDATE imap_cursor SET keyword_uid = COALESCE(
            (SELECT MIN(m.uid) - 1 FROM message m
             WHERE m.mailbox = imap_cursor.mailbox AND m.uidvalidity = imap_cursor.uidvalidity
               AND NOT m.flagged),
            imap_cursor.last_uid)
        """
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("flagged")


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        """
        UPDATE message SET flagged = EXISTS (
            SELECT 1 FROM imap_cursor c
            WHERE c.mailbox = message.mailbox AND c.uidvalidity = message.uidvalidity
              AND message.uid <= c.keyword_uid)
        """
    )
    with op.batch_alter_table("imap_cursor", schema=None) as batch_op:
        batch_op.drop_column("keyword_uid")

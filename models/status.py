"""What `candour status` reads: counts a monitoring check needs, in one reader session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.cases import AUTOMATIC_REPLY_KINDS, OPEN_STATUSES
from models.schema import Case, MailboxSync, Message, Outbox, Worker


@dataclass(frozen=True)
class MailboxStatus:
    name: str
    last_recorded: datetime | None
    open_cases: int
    overdue_acknowledgements: int
    overdue_stages: int
    quarantined: int
    last_sync: datetime | None = None  # when its watcher last saw it through (MailboxSync)
    backlog: int = 0  # new messages waiting in it then


@dataclass(frozen=True)
class OutboxStatus:
    by_status: dict[str, int]
    oldest_pending: datetime | None


def mailbox_status(session: Session, mailbox: str, now: datetime) -> MailboxStatus:
    open_ = (
        select(func.count())
        .select_from(Case)
        .where(Case.mailbox == mailbox, Case.status.in_(OPEN_STATUSES))
    )
    late_ack = open_.where(
        Case.acknowledged_at.is_(None), Case.no_ack_reason.is_(None), Case.ack_due_at < now
    )
    late_stage = open_.where(Case.status != "responded", Case.stage_due_at < now)
    quarantined = (
        select(func.count())
        .select_from(Message)
        .where(Message.mailbox == mailbox, Message.outcome == "quarantined")
    )
    last = select(func.max(Message.recorded_at)).where(Message.mailbox == mailbox)
    sync = session.get(MailboxSync, mailbox)
    return MailboxStatus(
        mailbox,
        _aware(session.scalar(last)),
        session.scalar(open_) or 0,
        session.scalar(late_ack) or 0,
        session.scalar(late_stage) or 0,
        session.scalar(quarantined) or 0,
        _aware(sync.synced_at) if sync else None,
        sync.backlog if sync else 0,
    )


def note_sync(session: Session, mailbox: str, now: datetime, backlog: int, worker: str) -> None:
    """Record that `mailbox` was seen through at `now` with `backlog` messages waiting."""
    from sqlalchemy.dialects import postgresql, sqlite

    postgres = session.get_bind().dialect.name == "postgresql"
    insert: Any = postgresql.insert if postgres else sqlite.insert
    values = {"mailbox": mailbox, "synced_at": now, "backlog": backlog, "worker": worker}
    statement = insert(MailboxSync).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[MailboxSync.mailbox],
            set_={k: v for k, v in values.items() if k != "mailbox"},
        )
    )


def outbox_status(session: Session) -> OutboxStatus:
    rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
    oldest = session.scalar(select(func.min(Outbox.created_at)).where(Outbox.status == "pending"))
    return OutboxStatus({status: count for status, count in rows}, _aware(oldest))


def recent_workers(session: Session, now: datetime, within: timedelta) -> dict[str, datetime]:
    """Workers whose heartbeat is more recent than `within`, and when it was."""
    rows = session.execute(select(Worker.id, Worker.seen_at).where(Worker.seen_at >= now - within))
    return {worker: seen for worker, seen in rows}


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def case_labels(session: Session, references: Sequence[str]) -> list[tuple[str, str]]:
    """(mailbox, label) of each of these cases (the metrics count cases opened by label)."""
    rows = session.execute(select(Case.mailbox, Case.label).where(Case.reference.in_(references)))
    return [(str(mailbox), str(label)) for mailbox, label in rows]


def acknowledged_arrivals(
    session: Session, outbox_ids: Sequence[int]
) -> list[tuple[int, str, datetime]]:
    """(outbox id, mailbox, when the case's message arrived) of the automatic replies among
    these rows: what the metrics time an acknowledgement from."""
    rows = session.execute(
        select(Outbox.id, Outbox.mailbox, Case.received_at)
        .join(Case, Outbox.case_id == Case.id)
        .where(Outbox.id.in_(outbox_ids), Outbox.kind.in_(AUTOMATIC_REPLY_KINDS))
    )
    return [(int(i), str(m), received) for i, m, received in rows]

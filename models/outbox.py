"""The outbox: mail Candour has decided to send, and the state of each delivery.

How this guarantees that a crash never produces a second acknowledgement:
1. The decision to acknowledge and the acknowledgement itself (its final bytes and its
   Message-ID) are written in the same transaction as the case. `once_key` is unique
   (``ack:<case reference>``), so no code path can queue a second acknowledgement for a case,
   and the message dedupe keys make reprocessing the same IMAP message a no-op.
2. Before a row is handed to SMTP it is moved from `pending` to `sending` and that is
   committed. Only after the server accepts the DATA is it marked `sent`.
3. A row still in `sending` when the daemon starts was interrupted between those two
   commits: the server may or may not have the message. It becomes `in_doubt` and is
   never resent automatically; an operator decides (`candour outbox retry ID`).
   The window is one delivery batch (at most 64 messages sent concurrently, whose verdicts
   are committed together): typically well under a second.
4. Failures that prove the server did not take the message (refused connection, a 4xx/5xx
   reply before or at the end of DATA) go back to `pending` with a later `not_before`, or
   to `failed` for permanent (5xx) refusals; they can never have been delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import bulk, lifecycle
from models.cases import AUTOMATIC_REPLY_KINDS, add_event, note_thread
from models.schema import Case, Outbox, Worker


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row, detached from the session, ready for SMTP."""

    id: int
    mailbox: str
    envelope_from: str
    recipient: str
    raw: bytes
    attempts: int


class Mail(Protocol):
    """What the outbox keeps of a message to send (replies.compose.OutgoingMail is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def envelope_from(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def raw(self) -> bytes: ...


def queue(
    session: Session,
    *,
    mailbox: str,
    mail: Mail,
    now: datetime,
    case: Case | None = None,
    case_id: int | None = None,
    once_key: str | None = None,
) -> None:
    """Add mail to the outbox for `case` (or `case_id`); written in the caller's transaction."""
    message_id = mail.message_id
    values = {
        "mailbox": mailbox,
        "case_id": case_id,
        "kind": mail.kind,
        "once_key": once_key,
        "envelope_from": mail.envelope_from,
        "recipient": mail.recipient,
        "message_id": message_id,
        "raw": mail.raw,
        "status": "pending",
        "attempts": 0,
        "not_before": now,
        "created_at": now,
        "sent_at": None,
        "last_error": None,
        "sent_copy": "none",
    }
    bulk.add(session, Outbox, values, case)
    note_thread(session, message_id, case)


def claim_due(session: Session, now: datetime, limit: int, worker: str = "") -> list[Delivery]:
    """Move up to `limit` due pending rows to `sending` and return them (commit follows).

    One statement: UPDATE ... WHERE id IN (the oldest due ids) RETURNING the rows. On
    PostgreSQL the ids are picked FOR UPDATE SKIP LOCKED, so workers sharing the outbox
    claim disjoint rows; SQLite has one writer at a time.
    """
    due = (
        select(Outbox.id)
        .where(Outbox.status == "pending", Outbox.not_before <= now)
        .order_by(Outbox.id)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(Outbox)
        .where(Outbox.id.in_(due.scalar_subquery()))
        .values(status="sending", attempts=Outbox.attempts + 1, claimed_by=worker or None)
        .returning(
            Outbox.id,
            Outbox.mailbox,
            Outbox.envelope_from,
            Outbox.recipient,
            Outbox.raw,
            Outbox.attempts,
        )
        .execution_options(synchronize_session=False)
    ).all()
    # RETURNING gives no order: deliver oldest first.
    return sorted((Delivery(*row) for row in claimed), key=lambda d: d.id)


def mark_sent(session: Session, delivery_id: int, now: datetime) -> None:
    mark_sent_many(session, [delivery_id], now)


def mark_sent_many(session: Session, delivery_ids: Sequence[int], now: datetime) -> None:
    """Record deliveries: one UPDATE for the rows, one SELECT for their cases.

    The cases' changes are flushed a kind at a time: the ORM writes a run of rows that
    change the same columns as one executemany, and acknowledgements (status and
    acknowledged_at) and signposts (which also close the case) change different ones;
    flushed together in id order they would interleave into one statement per run.
    """
    if not delivery_ids:
        return
    sent = session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(delivery_ids)))
        .values(status="sent", sent_at=now, last_error=None, sent_copy="pending")
        .returning(Outbox.id, Outbox.kind, Outbox.case_id)
        .execution_options(synchronize_session=False)
    ).all()
    case_ids = {case_id for _, _, case_id in sent if case_id is not None}
    by_id = (
        {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(case_ids)))}
        if case_ids
        else {}
    )
    by_kind: dict[str, list[tuple[int, Case]]] = {}
    for row_id, kind, case_id in sorted(sent):
        if case_id is not None and case_id in by_id:
            by_kind.setdefault(kind, []).append((row_id, by_id[case_id]))
    with bulk.buffered(session):  # the history events: one INSERT for the batch
        for kind, rows in by_kind.items():
            for row_id, case in rows:
                _sent(session, row_id, kind, case, now)
            session.flush()


def _sent(session: Session, row_id: int, kind: str, case: Case, now: datetime) -> None:
    add_event(session, case, now, f"{kind}.sent", f"outbox {row_id}")
    if kind in AUTOMATIC_REPLY_KINDS:
        lifecycle.on_automatic_reply_sent(session, case, kind, now)


def mark_retry(
    session: Session, delivery_id: int, not_before: datetime, error: str, *, permanent: bool
) -> None:
    row = session.get(Outbox, delivery_id)
    if row is None:
        return
    row.status = "failed" if permanent else "pending"
    row.not_before = not_before
    row.last_error = error[:2000]


def mark_in_doubt(session: Session, delivery_id: int, error: str) -> None:
    session.execute(
        update(Outbox)
        .where(Outbox.id == delivery_id)
        .values(status="in_doubt", last_error=error[:2000])
    )


def beat(session: Session, worker: str, now: datetime) -> None:
    """Worker `worker` is alive at `now`."""
    found = session.get(Worker, worker)
    if found is None:
        session.add(Worker(id=worker, seen_at=now))
    else:
        found.seen_at = now


def sending_claims(session: Session) -> dict[int, str | None]:
    """The rows in `sending`, and which worker claimed each."""
    rows = session.execute(
        select(Outbox.id, Outbox.claimed_by).where(Outbox.status == "sending")
    ).all()
    return {row_id: worker for row_id, worker in rows}


def last_seen(session: Session, workers: Sequence[str]) -> dict[str, datetime]:
    rows = session.execute(select(Worker.id, Worker.seen_at).where(Worker.id.in_(workers)))
    return {worker: seen for worker, seen in rows}


def recover_interrupted(session: Session, ids: Sequence[int] | None = None) -> list[int]:
    """Rows left in `sending` by a worker that is gone become `in_doubt` (all of them when
    `ids` is None); returns their ids. replies.deliver decides which workers are gone."""
    if ids is None:
        ids = list(session.scalars(select(Outbox.id).where(Outbox.status == "sending")))
    ids = list(ids)
    if ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.status == "sending")
            .values(status="in_doubt", last_error="interrupted while sending (worker stopped)")
        )
    return ids


def retry(session: Session, delivery_id: int, now: datetime) -> bool:
    """An operator's decision to send an in-doubt or failed row again."""
    row = session.get(Outbox, delivery_id)
    if row is None or row.status not in {"in_doubt", "failed"}:
        return False
    row.status = "pending"
    row.not_before = now
    return True


def pending_sent_copies(
    session: Session, mailbox: str, limit: int = 200
) -> list[tuple[int, bytes]]:
    return list(
        session.execute(
            select(Outbox.id, Outbox.raw)
            .where(Outbox.mailbox == mailbox, Outbox.sent_copy == "pending")
            .order_by(Outbox.id)
            .limit(limit)
        ).all()
    )


def mark_copies_done(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(update(Outbox).where(Outbox.id.in_(list(ids))).values(sent_copy="done"))


def rows(session: Session, status: str | None = None) -> list[Outbox]:
    query = select(Outbox).order_by(Outbox.id)
    if status is not None:
        query = query.where(Outbox.status == status)
    return list(session.scalars(query))


def once_key_queued(session: Session, key: str) -> bool:
    """True when mail under `key` is in the outbox (asked before queueing it again)."""
    return session.scalar(select(Outbox.id).where(Outbox.once_key == key)) is not None

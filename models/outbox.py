"""The outbox: mail Candour has decided to send, and the state of each delivery.

How this guarantees that a crash never produces a second acknowledgement:
1. The decision to acknowledge and the acknowledgement itself (its final bytes and its
   Message-ID) are written in the same transaction as the case. `once_key` is unique
   (``ack:<case reference>``), so no code path can queue a second acknowledgement for a case,
   and the message dedupe keys make reprocessing the same IMAP message a no-op.
2. A worker claims a batch of due rows (`pending` -> `claimed`, naming itself in
   `claimed_by`); nothing is sent yet. Each SMTP connection then takes one claimed row at a
   time: the row goes to `sending` in a commit just before its SMTP transaction, and to
   `sent` right after the server accepts the DATA, in the same commit that moves that
   connection's next row to `sending`.
3. So a crash leaves at most one row per SMTP connection in `sending`: the one whose DATA
   was in flight. When the worker is gone (replies.deliver decides), its `sending` rows
   become `in_doubt` and are never resent automatically: an operator decides
   (`candour outbox retry ID`). Its `claimed` rows never reached SMTP and go back to
   `pending`, to be sent once by whichever worker claims them next.
4. Failures that prove the server did not take the message (refused connection, a 4xx/5xx
   reply before or at the end of DATA) go back to `pending` with a later `not_before`, or
   to `failed` for permanent (5xx) refusals; they can never have been delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select, update
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
    """Move up to `limit` due pending rows to `claimed` by `worker` and return them (commit
    follows). Nothing is on the wire yet: `start_sending` comes next.

    Rows answering fresh mail (priority 1: `prioritise`) are claimed first, so an
    acknowledgement of a new complaint is not queued behind the thousands a backlog has
    just produced; otherwise, and within a priority, oldest first, so one case's mail keeps
    its order. Everything due still goes out in the same pass: priority only orders it.

    One statement: UPDATE ... WHERE id IN (the chosen due ids) RETURNING the rows. On
    PostgreSQL the ids are picked FOR UPDATE SKIP LOCKED, so workers sharing the outbox
    claim disjoint rows; SQLite has one writer at a time. `attempts` counts SMTP attempts,
    so a Delivery carries the number this one will be.
    """
    due = (
        select(Outbox.id)
        .where(Outbox.status == "pending", Outbox.not_before <= now)
        .order_by(Outbox.priority.desc(), Outbox.id)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(Outbox)
        .where(Outbox.id.in_(due.scalar_subquery()))
        .values(status="claimed", claimed_by=worker or None)
        .returning(
            Outbox.id,
            Outbox.mailbox,
            Outbox.envelope_from,
            Outbox.recipient,
            Outbox.raw,
            Outbox.attempts + 1,
            Outbox.priority,
        )
        .execution_options(synchronize_session=False)
    ).all()
    # RETURNING gives no order: deliver in the order chosen, priority first, then oldest.
    ordered = sorted(claimed, key=lambda row: (-row[-1], row[0]))
    return [Delivery(*row[:-1]) for row in ordered]


def prioritise(session: Session, mailbox: str, references: Sequence[str]) -> int:
    """Put the pending mail of these cases ahead of the rest (the daemon records fresh
    mail ahead of a backlog: daemon/mailbox/watcher.py). Returns the rows moved up."""
    if not references:
        return 0
    cases = select(Case.id).where(Case.mailbox == mailbox, Case.reference.in_(references))
    moved = session.execute(
        update(Outbox)
        .where(Outbox.status == "pending", Outbox.case_id.in_(cases.scalar_subquery()))
        .values(priority=1)
        .execution_options(synchronize_session=False)
    )
    return int(moved.rowcount or 0)  # type: ignore[attr-defined]


# The outbox sender runs these for every few messages it sends: built once, not per call
# (building an UPDATE ... IN took as long as running it). "ids" expands to the id list.
_START_SENDING = (
    update(Outbox)
    .where(
        Outbox.id.in_(bindparam("ids", expanding=True)),
        Outbox.status == "claimed",
        Outbox.claimed_by == bindparam("worker"),
    )
    .values(status="sending", attempts=Outbox.attempts + 1)
    .returning(Outbox.id)
    .execution_options(synchronize_session=False)
)
_START_SENDING_UNNAMED = (
    update(Outbox)
    .where(
        Outbox.id.in_(bindparam("ids", expanding=True)),
        Outbox.status == "claimed",
        Outbox.claimed_by.is_(None),
    )
    .values(status="sending", attempts=Outbox.attempts + 1)
    .returning(Outbox.id)
    .execution_options(synchronize_session=False)
)
_MARK_SENT = (
    update(Outbox)
    .where(Outbox.id.in_(bindparam("ids", expanding=True)), Outbox.status != "sent")
    .values(status="sent", sent_at=bindparam("now"), last_error=None, sent_copy="pending")
    .returning(Outbox.id, Outbox.kind, Outbox.case_id)
    .execution_options(synchronize_session=False)
)
_CASES = select(Case).where(Case.id.in_(bindparam("ids", expanding=True)))


def start_sending(session: Session, ids: Sequence[int], worker: str = "") -> set[int]:
    """Move rows `worker` still holds in `claimed` to `sending`, just before their SMTP
    transactions; returns the ids moved. A row missing from the answer was taken back
    (its worker was thought gone) and must not be sent."""
    if not ids:
        return set()
    if worker:
        moved = session.scalars(_START_SENDING, {"ids": list(ids), "worker": worker})
    else:
        moved = session.scalars(_START_SENDING_UNNAMED, {"ids": list(ids)})
    return set(moved)


def release(session: Session, ids: Sequence[int]) -> int:
    """Rows claimed but never handed to SMTP go back to `pending`; returns how many."""
    if not ids:
        return 0
    result = session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(ids)), Outbox.status == "claimed")
        .values(status="pending", claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_sent(session: Session, delivery_id: int, now: datetime) -> None:
    mark_sent_many(session, [delivery_id], now)


def mark_sent_many(
    session: Session,
    delivery_ids: Sequence[int],
    now: datetime,
    replies: Mapping[int, str] | None = None,
) -> None:
    """Record deliveries: one UPDATE for the rows, one SELECT for their cases. `replies`
    holds the server's answer to DATA (its queue id) by row, kept in the case history.

    The cases' changes are flushed a kind at a time: the ORM writes a run of rows that
    change the same columns as one executemany, and acknowledgements (status and
    acknowledged_at) and signposts (which also close the case) change different ones;
    flushed together in id order they would interleave into one statement per run.
    """
    if not delivery_ids:
        return
    # status != "sent" in _MARK_SENT: a retried write changes nothing twice.
    sent = session.execute(_MARK_SENT, {"ids": list(delivery_ids), "now": now}).all()
    case_ids = sorted({case_id for _, _, case_id in sent if case_id is not None})
    by_id = {c.id: c for c in session.scalars(_CASES, {"ids": case_ids})} if case_ids else {}
    by_kind: dict[str, list[tuple[int, Case]]] = {}
    for row_id, kind, case_id in sorted(sent):
        if case_id is not None and case_id in by_id:
            by_kind.setdefault(kind, []).append((row_id, by_id[case_id]))
    with bulk.buffered(session):  # the history events: one INSERT for the batch
        for kind, rows in by_kind.items():
            for row_id, case in rows:
                _sent(session, row_id, kind, case, now, (replies or {}).get(row_id, ""))
            session.flush()


def _sent(session: Session, row_id: int, kind: str, case: Case, now: datetime, reply: str) -> None:
    detail = f"outbox {row_id}: {reply}" if reply else f"outbox {row_id}"
    add_event(session, case, now, f"{kind}.sent", detail)
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


def claims(session: Session) -> dict[int, tuple[str, str | None]]:
    """The rows in `claimed` or `sending`: their status and which worker holds each."""
    rows = session.execute(
        select(Outbox.id, Outbox.status, Outbox.claimed_by).where(
            Outbox.status.in_(("claimed", "sending"))
        )
    ).all()
    return {row_id: (status, worker) for row_id, status, worker in rows}


def last_seen(session: Session, workers: Sequence[str]) -> dict[str, datetime]:
    rows = session.execute(select(Worker.id, Worker.seen_at).where(Worker.id.in_(workers)))
    return {worker: seen for worker, seen in rows}


def recover_interrupted(session: Session, ids: Sequence[int] | None = None) -> list[int]:
    """Rows of a worker that is gone (all such rows when `ids` is None): those in `sending`
    had their SMTP transaction in flight and become `in_doubt`; those in `claimed` never
    reached SMTP and go back to `pending`. Returns the in-doubt ids. replies.deliver
    decides which workers are gone."""
    held = Outbox.status.in_(("claimed", "sending"))
    if ids is None:
        ids = list(session.scalars(select(Outbox.id).where(held)))
    ids = list(ids)
    if not ids:
        return []
    release(session, ids)
    return list(
        session.scalars(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.status == "sending")
            .values(status="in_doubt", last_error="interrupted while sending (worker stopped)")
            .returning(Outbox.id)
            .execution_options(synchronize_session=False)
        )
    )


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

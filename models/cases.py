"""Queries and writes for cases, incoming messages and IMAP cursors, inside a caller's session."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import bulk
from models.schema import Case, CaseEvent, ImapCursor, Message, Outbox, ReferenceCounter

# Statuses of a case still in the procedure (models.lifecycle moves cases between them).
OPEN_STATUSES = (
    "new",
    "acknowledged",
    "early_resolution",
    "in_stage",
    "responded",
    "referral_pending",
)


def last_uid(session: Session, mailbox: str, uidvalidity: int) -> int:
    """The highest UID fully recorded for this mailbox and UIDVALIDITY (0 when new)."""
    value = session.scalar(
        select(ImapCursor.last_uid).where(
            ImapCursor.mailbox == mailbox, ImapCursor.uidvalidity == uidvalidity
        )
    )
    return int(value or 0)


def advance_cursor(session: Session, mailbox: str, uidvalidity: int, uid: int) -> None:
    cursor = session.scalar(
        select(ImapCursor)
        .where(ImapCursor.mailbox == mailbox, ImapCursor.uidvalidity == uidvalidity)
        .with_for_update()
    )
    if cursor is None:
        session.add(ImapCursor(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=uid))
    elif uid > cursor.last_uid:
        cursor.last_uid = uid


def already_recorded(
    session: Session, mailbox: str, uidvalidity: int, uid: int, dedupe_key: str
) -> bool:
    """True when this UID, or the same message under another UID, is already recorded."""
    found = session.scalar(
        select(Message.id)
        .where(
            Message.mailbox == mailbox,
            (
                (Message.dedupe_key == dedupe_key)
                | ((Message.uidvalidity == uidvalidity) & (Message.uid == uid))
            ),
        )
        .limit(1)
    )
    return found is not None


def recorded_keys(
    session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int], keys: Sequence[str]
) -> tuple[set[int], set[str]]:
    """Which of these UIDs and dedupe keys are already recorded: one query each, per batch."""
    found_uids = set(
        session.scalars(
            select(Message.uid).where(
                Message.mailbox == mailbox,
                Message.uidvalidity == uidvalidity,
                Message.uid.in_(uids),
            )
        )
    )
    found_keys = set(
        session.scalars(
            select(Message.dedupe_key).where(
                Message.mailbox == mailbox, Message.dedupe_key.in_(keys)
            )
        )
    )
    return {int(u) for u in found_uids}, {str(k) for k in found_keys}


_THREADS = "candour.threads"
_REFERENCES = "candour.references"


def _thread_rows(
    session: Session, mailbox: str, ids: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """(Message-ID -> case id) for messages received, and for mail sent, among `ids`."""
    received: dict[str, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Message.message_id, Message.case_id).where(
                Message.mailbox == mailbox,
                Message.message_id.in_(ids),
                Message.case_id.is_not(None),
            )
        ).all()
    )
    sent: dict[str, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Outbox.message_id, Outbox.case_id).where(
                Outbox.mailbox == mailbox, Outbox.message_id.in_(ids), Outbox.case_id.is_not(None)
            )
        ).all()
    )
    return received, sent


def index_threads(
    session: Session, mailbox: str, ids: Iterable[str], references: Iterable[str] = ()
) -> None:
    """For a batch: look up at once the cases these Message-IDs and references belong to.

    From then on `case_for_message_ids` and `case_by_reference` answer from memory for
    this session; `note_thread` and `add_case` add what the batch itself records, so a
    reply to a message earlier in the same batch still finds its case. Only for a
    transaction without savepoints (a note would outlive a rolled-back one).
    """
    wanted = sorted(set(ids))
    by_id: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        received, sent = _thread_rows(session, mailbox, wanted[start : start + 500])
        for found in (received, sent):  # received first, as case_for_message_ids does
            for mid, case_id in found.items():
                by_id.setdefault(mid, case_id)
    refs = sorted({r.upper() for r in references})
    loaded: dict[int, Case] = {}
    case_ids = sorted(set(by_id.values()))
    for start in range(0, max(len(case_ids), len(refs)), 500):
        query = select(Case).where(
            Case.id.in_(case_ids[start : start + 500])
            | Case.reference.in_(refs[start : start + 500])
        )
        loaded.update((c.id, c) for c in session.scalars(query))
    index: dict[str, Case] = {mid: loaded[cid] for mid, cid in by_id.items() if cid in loaded}
    session.info[_THREADS] = index
    session.info[_REFERENCES] = {c.reference: c for c in loaded.values()}


def add_case(session: Session, case: Case) -> None:
    """A new case (see index_threads)."""
    session.add(case)
    index: dict[str, Case] | None = session.info.get(_REFERENCES)
    if index is not None:
        index[case.reference] = case


def note_thread(session: Session, message_id: str | None, case: Case | None) -> None:
    """A message of `case` with this Message-ID was recorded or queued (see index_threads)."""
    index: dict[str, Case] | None = session.info.get(_THREADS)
    if index is not None and message_id and case is not None:
        index.setdefault(message_id, case)


def case_for_message_ids(session: Session, mailbox: str, ids: Sequence[str]) -> Case | None:
    """The case any of these Message-IDs belongs to (received or sent by us), nearest first."""
    if not ids:
        return None
    index: dict[str, Case] | None = session.info.get(_THREADS)
    if index is not None:
        return next((index[mid] for mid in ids if mid in index), None)
    received, sent = _thread_rows(session, mailbox, ids)
    for mid in ids:
        case_id = received.get(mid) or sent.get(mid)
        if case_id is not None:
            return session.get(Case, case_id)
    return None


def case_by_reference(session: Session, reference: str) -> Case | None:
    index: dict[str, Case] | None = session.info.get(_REFERENCES)
    if index is not None:
        return index.get(reference.upper())
    return session.scalar(select(Case).where(Case.reference == reference.upper()))


def next_reference(session: Session, prefix: str, year: int) -> str:
    """Hand out the next case reference, e.g. CMP-2026-00042, under a row lock.

    The counter row is locked and read once per transaction and then counted on in
    memory (kept in `session.info`), so a batch opening many cases issues one query,
    not one per case, and the flush writes the final number. A savepoint rolled back
    expires the row, which is then read again: no number is skipped.
    """
    held: dict[tuple[str, int], ReferenceCounter] = session.info.setdefault("reference", {})
    counter = held.get((prefix, year))
    if counter is None or counter not in session:
        with session.no_autoflush:
            counter = session.scalar(
                select(ReferenceCounter)
                .where(ReferenceCounter.prefix == prefix, ReferenceCounter.year == year)
                .with_for_update()
            )
        if counter is None:
            counter = ReferenceCounter(prefix=prefix, year=year, last=0)
            session.add(counter)
        held[(prefix, year)] = counter
    counter.last += 1
    return f"{prefix}-{year}-{counter.last:05d}"


def add_event(
    session: Session, case: Case, at: datetime, kind: str, detail: str = "", actor: str = "candour"
) -> None:
    # By the case, not its id: it may be new in this batch and not flushed yet.
    bulk.add(session, CaseEvent, {"at": at, "kind": kind, "detail": detail, "actor": actor}, case)


AUTOMATIC_REPLY_KINDS = ("acknowledgement", "thanks", "signpost", "concern")


def replies_sent_since_many(
    session: Session, mailbox: str, recipients: Sequence[str], since: datetime
) -> dict[str, int]:
    """Automatic replies queued to each recipient since `since`, in one query (none: absent)."""
    if not recipients:
        return {}
    rows = session.execute(
        select(Outbox.recipient, func.count(Outbox.id))
        .where(
            Outbox.mailbox == mailbox,
            Outbox.recipient.in_(sorted(set(recipients))),
            Outbox.created_at >= since,
            Outbox.kind.in_(AUTOMATIC_REPLY_KINDS),
        )
        .group_by(Outbox.recipient)
    )
    return {str(recipient): int(count) for recipient, count in rows}


class KeywordBacklog(NamedTuple):
    """Where the IMAP keywords stand for one mailbox and UIDVALIDITY."""

    mark: int  # every recorded message up to this UID has its keyword
    last_uid: int  # the last UID recorded (the cursor)
    pending: list[tuple[int, str]]  # (uid, outcome) recorded above the mark, oldest first


def keyword_backlog(session: Session, mailbox: str, uidvalidity: int) -> KeywordBacklog:
    """The recorded messages whose keyword may not be set (a crash came between a batch's
    commit and its keywords); none after a clean run. A range scan of the unique
    (mailbox, UIDVALIDITY, UID) index, however large the mailbox."""
    cursor = session.execute(
        select(ImapCursor.keyword_uid, ImapCursor.last_uid).where(
            ImapCursor.mailbox == mailbox, ImapCursor.uidvalidity == uidvalidity
        )
    ).first()
    if cursor is None:
        return KeywordBacklog(0, 0, [])
    mark, last = int(cursor[0]), int(cursor[1])
    if mark >= last:
        return KeywordBacklog(mark, last, [])
    rows = session.execute(
        select(Message.uid, Message.outcome)
        .where(
            Message.mailbox == mailbox,
            Message.uidvalidity == uidvalidity,
            Message.uid > mark,
            Message.uid <= last,
        )
        .order_by(Message.uid)
    )
    return KeywordBacklog(mark, last, [(int(uid), str(outcome)) for uid, outcome in rows])


def keywords_set(
    session: Session, mailbox: str, uidvalidity: int, after: int, through: int
) -> bool:
    """Record that every message with after < UID <= through has its keyword.

    The mark moves only if it had reached `after`: a batch whose keywords are set while
    an earlier one's are not (its STORE failed) leaves the mark below the earlier one,
    which is then set again. Returns whether the mark moved.
    """
    moved = session.execute(
        update(ImapCursor)
        .where(
            ImapCursor.mailbox == mailbox,
            ImapCursor.uidvalidity == uidvalidity,
            ImapCursor.keyword_uid >= after,
            ImapCursor.keyword_uid < through,
        )
        .values(keyword_uid=through)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def case_events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )
    )


def list_cases(
    session: Session,
    mailbox: str | None = None,
    statuses: Sequence[str] = (),
    *,
    needs_review: bool = False,
) -> list[Case]:
    """Cases oldest first: of one mailbox, in these statuses, only those needing review."""
    query = select(Case).order_by(Case.id)
    if mailbox is not None:
        query = query.where(Case.mailbox == mailbox)
    if statuses:
        query = query.where(Case.status.in_(statuses))
    if needs_review:
        query = query.where(Case.needs_review.is_(True))
    return list(session.scalars(query))


def quarantined(session: Session) -> list[Message]:
    return list(
        session.scalars(
            select(Message).where(Message.outcome == "quarantined").order_by(Message.id)
        )
    )


def open_cases(session: Session, mailbox: str) -> list[Case]:
    """The mailbox's cases that are not closed, withdrawn or referred, oldest first."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.mailbox == mailbox, Case.status.in_(OPEN_STATUSES))
            .order_by(Case.id)
        )
    )


def last_from(session: Session, case: Case, sender: str) -> str | None:
    """The Message-ID of the latest message on `case` from `sender`."""
    return session.scalar(
        select(Message.message_id)
        .where(
            Message.case_id == case.id, Message.sender == sender, Message.message_id.is_not(None)
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def case_of_message(session: Session, mailbox: str, message_id: str) -> tuple[Case, int] | None:
    """The case an incoming message (by Message-ID) belongs to, with the message's row id."""
    row = session.scalar(
        select(Message)
        .where(
            Message.mailbox == mailbox,
            Message.message_id == message_id,
            Message.case_id.is_not(None),
        )
        .limit(1)
    )
    if row is None or row.case_id is None:
        return None
    case = session.get(Case, row.case_id)
    return (case, row.id) if case is not None else None


def last_event_detail(session: Session, case_id: int, kind: str) -> str | None:
    """The detail of the case's latest event of `kind`, if any."""
    return session.scalar(
        select(CaseEvent.detail)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )


def closed_without_outcome(session: Session, mailbox: str) -> list[Case]:
    """Complaints closed with a plain #close: their outcome is still to be recorded."""
    return list(
        session.scalars(
            select(Case)
            .where(
                Case.mailbox == mailbox,
                Case.status == "closed",
                Case.label == "complaint",
                Case.outcome.is_(None),
            )
            .order_by(Case.id)
        )
    )

"""What a board report reads from the database (issue 22): one row of facts per case
received in a period, the stages it ran (from its lifecycle events), and its lessons. The
figures are computed from these, purely, in daemon.reports.figures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.schema import Case, CaseEvent, Lesson, Message

_STAGE = re.compile(r"^stage (\d+)\b.*?\bdue (\S+?);")
_RESPONSE = re.compile(r"^stage (\d+) response, (on time|late)")
_EXTENDED = re.compile(r"^stage (\d+) by \d+ working days to (\S+?):")


@dataclass(frozen=True)
class StageRun:
    stage: int
    started_at: datetime
    due_at: datetime
    responded_at: datetime | None


@dataclass(frozen=True)
class CaseFacts:
    case_id: int
    reference: str
    label: str
    channel: str
    flags: tuple[str, ...]
    route: str | None
    status: str
    received_at: datetime
    ack_due_at: datetime | None
    acknowledged_at: datetime | None
    no_ack_reason: str | None
    automatic_reply: str | None
    outcome: str | None
    closed_at: datetime | None
    stage: int
    stage_due_at: datetime | None
    stages: tuple[StageRun, ...]


def case_facts(
    session: Session, start: datetime, end: datetime, mailbox: str | None = None
) -> list[CaseFacts]:
    """The cases received in [start, end), oldest first."""
    query = select(Case).where(Case.received_at >= start, Case.received_at < end)
    if mailbox is not None:
        query = query.where(Case.mailbox == mailbox)
    found = list(session.scalars(query.order_by(Case.received_at, Case.id)))
    runs = _stage_runs(session, [c.id for c in found])
    return [
        CaseFacts(
            c.id,
            c.reference,
            c.label,
            c.channel,
            tuple(c.flag_names),
            c.route,
            c.status,
            c.received_at,
            c.ack_due_at,
            c.acknowledged_at,
            c.no_ack_reason,
            c.automatic_reply,
            c.outcome,
            c.closed_at,
            c.stage,
            c.stage_due_at,
            tuple(runs.get(c.id, ())),
        )
        for c in found
    ]


def _stage_runs(session: Session, ids: list[int]) -> dict[int, list[StageRun]]:
    """Each case's stages: started (or escalated) with a due date, and when answered."""
    runs: dict[int, list[StageRun]] = {}
    kinds = ("stage.started", "stage.escalated", "stage.responded", "stage.extended")
    for start in range(0, len(ids), 500):
        events = session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id.in_(ids[start : start + 500]), CaseEvent.kind.in_(kinds))
            .order_by(CaseEvent.case_id, CaseEvent.at, CaseEvent.id)
        )
        for event in events:
            _apply(runs.setdefault(event.case_id, []), event)
    return runs


def _apply(runs: list[StageRun], event: CaseEvent) -> None:
    started = _STAGE.match(event.detail)
    if event.kind in ("stage.started", "stage.escalated") and started:
        due = datetime.fromisoformat(started.group(2))
        runs.append(StageRun(int(started.group(1)), event.at, due, None))
        return
    extended = _EXTENDED.match(event.detail)
    if event.kind == "stage.extended" and extended and runs:
        last = runs[-1]
        due = datetime.fromisoformat(extended.group(2))
        runs[-1] = StageRun(last.stage, last.started_at, due, last.responded_at)
        return
    answered = _RESPONSE.match(event.detail)
    if event.kind == "stage.responded" and answered and runs:
        last = runs[-1]
        if last.stage == int(answered.group(1)) and last.responded_at is None:
            runs[-1] = StageRun(last.stage, last.started_at, last.due_at, event.at)


def open_at(session: Session, moment: datetime, mailbox: str | None = None) -> list[Case]:
    """Cases received before `moment` and not closed by then."""
    query = select(Case).where(Case.received_at < moment)
    query = query.where((Case.closed_at.is_(None)) | (Case.closed_at >= moment))
    if mailbox is not None:
        query = query.where(Case.mailbox == mailbox)
    return list(session.scalars(query))


def lessons_between(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    """(recorded, done) for lessons recorded in [start, end)."""
    rows = list(
        session.scalars(select(Lesson).where(Lesson.created_at >= start, Lesson.created_at < end))
    )
    return len(rows), sum(1 for lesson in rows if lesson.done_at is not None)


def first_messages(session: Session, case_ids: list[int]) -> dict[int, bytes]:
    """Each case's first message's raw bytes (for the themes)."""
    found: dict[int, bytes] = {}
    for start in range(0, len(case_ids), 500):
        rows = session.execute(
            select(Message.case_id, Message.raw)
            .where(Message.case_id.in_(case_ids[start : start + 500]))
            .order_by(Message.case_id, Message.received_at, Message.id)
        )
        for case_id, raw in rows:
            if case_id is not None and case_id not in found:
                found[case_id] = raw
    return found

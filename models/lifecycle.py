"""The case lifecycle: each move through the complaints procedure, with its time and clock.

    new -> acknowledged -> in_stage (stage N, due ...) -> responded -> in_stage (N+1) ...
    new -> referral_pending (signposted) -> referred, once staff confirm it
    any open status -> closed | withdrawn | referred;  closed ones -> reopened

Statuses: `new` until the automatic reply is delivered; then `in_stage` when a stage is
running (every complaint starts stage 1 on receipt, so its stage clock runs from the
moment it arrived), otherwise `acknowledged` (feedback). `responded` once staff answer the
stage; the complainant's window to ask for the next stage is `request_due_at`. A
signposted (out-of-scope) case is never closed by the signpost: it waits, open, in
`referral_pending` until a person confirms the referral (`#close referred`), or until
`referral_due_at` when the mailbox lets referrals close without objection.

Every function takes an open session, records a CaseEvent per transition and never commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.cases import AUTOMATIC_REPLY_KINDS, OPEN_STATUSES, add_event
from models.schema import Case

log = structlog.get_logger("candour.lifecycle")

CLOSE_REASONS = ("closed", "withdrawn", "referred")
STAGED_LABELS = frozenset({"complaint"})


@dataclass(frozen=True)
class StageRule:
    """One stage of a complaints procedure, its limits written as the policy writes them."""

    name: str
    respond_within: str  # e.g. "10 working days"
    request_within: str | None = None  # how long the complainant has to ask for this stage
    handler: str | None = None  # who answers it
    rights: str | None = None  # what a response at this stage says of the complainant's rights


@dataclass(frozen=True)
class Procedure:
    """A mailbox's complaints procedure as the lifecycle needs it: the stages in order, and
    `due(start, limit)`, the moment a limit like "10 working days" counted from `start`
    runs out (built by the daemon from the mailbox's working calendar)."""

    stages: tuple[StageRule, ...]
    due: Callable[[datetime, str], datetime]
    # A deadline moved on by N working days (an extension), on the same calendar.
    later_by: Callable[[datetime, int], datetime]
    clock_starts: str = "receipt"  # or "accepted": stage 1 starts at #accept
    early: StageRule | None = None  # early resolution before stage 1
    max_extensions: int = 1  # per stage
    max_extension_days: int = 20
    final_rights: str = ""
    same_handler: str = "warn"  # or "hold"

    def stage(self, number: int) -> StageRule | None:
        """Stage `number` (1-based), or None beyond the last one."""
        return self.stages[number - 1] if 1 <= number <= len(self.stages) else None

    def stage_name(self, number: int) -> str:
        """The policy's name for stage `number` ("stage 1", "chief executive review"), or ""."""
        found = self.stage(number)
        return found.name if found is not None else ""


def is_closed(case: Case) -> bool:
    return case.status in CLOSE_REASONS


def _start_stage(
    session: Session,
    case: Case,
    stage: int,
    config: StageRule,
    started: datetime,
    procedure: Procedure,
    event_at: datetime,
    actor: str,
    why: str,
) -> None:
    case.stage = stage
    case.stage_started_at = started
    case.stage_due_at = procedure.due(started, config.respond_within)
    kind = "stage.started" if stage == 1 else "stage.escalated"
    detail = f"stage {stage} ({config.name}), due {case.stage_due_at.isoformat()}; {why}"
    add_event(session, case, event_at, kind, detail, actor=actor)
    log.info(kind, case=case.reference, stage=stage, due=case.stage_due_at.isoformat())


def on_opened(session: Session, case: Case, procedure: Procedure, now: datetime) -> None:
    """Start stage 1 for a new complaint (needs_review or not), counted from its receipt.

    Other labels (feedback, out-of-scope) run no stage. Does nothing when a stage is
    already running or the policy has no stages.
    """
    first = procedure.stage(1)
    if case.label not in STAGED_LABELS or case.stage > 0 or first is None:
        return
    if procedure.clock_starts == "accepted":
        return  # stage 1 starts when staff establish the nature of the complaint (#accept)
    _start_stage(session, case, 1, first, case.received_at, procedure, now, "candour", "opened")


def accept(
    session: Session, case: Case, procedure: Procedure, at: datetime, actor: str
) -> str | None:
    """The nature of the complaint is established: stage 1 starts now (from early
    resolution too). Returns why not, or None."""
    first = procedure.stage(1)
    if is_closed(case):
        return f"case {case.reference} is {case.status}; reopen it first"
    if first is None or case.stage > 0:
        return f"stage {case.stage} is already running"
    case.early_due_at = None
    _start_stage(session, case, 1, first, at, procedure, at, actor, "nature established")
    if case.status in ("new", "acknowledged", "early_resolution"):
        case.status = "in_stage" if case.acknowledged_at is not None else "new"
    return None


def start_early(
    session: Session, case: Case, procedure: Procedure, at: datetime, actor: str
) -> str | None:
    """Early resolution before stage 1, with its own limit counted from receipt; a running,
    unanswered stage 1 is stopped (it starts afresh at #accept). Returns why not, or None."""
    early = procedure.early
    if early is None:
        return "this mailbox's procedure has no early resolution"
    if is_closed(case) or case.stage > 1 or case.responded_at is not None:
        return "early resolution is only before stage 1 is answered"
    case.stage, case.stage_started_at, case.stage_due_at = 0, None, None
    case.early_due_at = procedure.due(case.received_at, early.respond_within)
    case.status = "early_resolution"
    if early.handler:
        case.assigned_to = early.handler
    detail = f"due {case.early_due_at.isoformat()}" + (
        f"; {early.handler}" if early.handler else ""
    )
    add_event(session, case, at, "early.started", detail, actor=actor)
    return None


def on_automatic_reply_sent(session: Session, case: Case, kind: str, at: datetime) -> None:
    """The acknowledgement, thanks or signpost reply was delivered at `at`.

    Marks the case acknowledged (status `in_stage` if a stage runs, `referral_pending`
    after a signpost, else `acknowledged`) and records a breach when it went out after
    `ack_due_at`. Raises ValueError for a kind that is not an automatic reply.
    """
    if kind not in AUTOMATIC_REPLY_KINDS:
        raise ValueError(f"{kind!r} is not an automatic reply ({', '.join(AUTOMATIC_REPLY_KINDS)})")
    if case.acknowledged_at is None:
        case.acknowledged_at = at
        if case.status == "new":
            case.status = _status_after_reply(case, kind)
            add_event(session, case, at, "case.acknowledged", f"{kind}; now {case.status}")
        if case.ack_due_at is not None and at > case.ack_due_at:
            _record_late_acknowledgement(session, case, at, "sent late")


def _status_after_reply(case: Case, kind: str) -> str:
    if case.stage > 0:
        return "in_stage"
    return "referral_pending" if kind == "signpost" else "acknowledged"


def _record_late_acknowledgement(session: Session, case: Case, at: datetime, how: str) -> None:
    if case.ack_breached:
        return
    case.ack_breached = True
    due = case.ack_due_at.isoformat() if case.ack_due_at else "?"
    add_event(session, case, at, "acknowledgement.late", f"{how}; was due {due}")
    log.warning("acknowledgement.late", case=case.reference, how=how)


def record_late_acknowledgements(session: Session, mailbox: str, now: datetime) -> int:
    """Flag open cases whose owed acknowledgement is still unsent after its deadline.

    Cases with a `no_ack_reason` owe none. Returns how many were newly flagged; a case is
    flagged once (`ack_breached`), whether here or when its late reply is finally sent.
    """
    overdue = session.scalars(
        select(Case).where(
            Case.mailbox == mailbox,
            Case.status.in_(OPEN_STATUSES),
            Case.acknowledged_at.is_(None),
            Case.no_ack_reason.is_(None),
            Case.ack_breached.is_(False),
            Case.ack_due_at < now,
        )
    )
    count = 0
    for case in overdue:
        _record_late_acknowledgement(session, case, now, "not sent by its deadline")
        count += 1
    return count


def on_staff_response(
    session: Session, case: Case, at: datetime, procedure: Procedure, responder: str = ""
) -> None:
    """A staff reply relayed to the complainant answers the current stage.

    Sets `responded_at` (the first response of a stage counts; later replies keep it) and
    status `responded`, and opens the complainant's window to ask for the next stage when
    the policy gives one (`request_within`). Does nothing on a closed case.
    """
    if is_closed(case) or case.status == "responded":
        return
    case.responded_at = at
    case.last_responder = responder or case.last_responder
    case.status = "responded"
    timing = "late" if case.stage_due_at is not None and at > case.stage_due_at else "on time"
    detail = f"stage {case.stage} response, {timing}" if case.stage else "response"
    following = procedure.stage(case.stage + 1)
    if case.stage > 0 and following is not None and following.request_within is not None:
        case.request_due_at = procedure.due(at, following.request_within)
        detail += f"; {following.name} may be asked for until {case.request_due_at.isoformat()}"
    add_event(session, case, at, "stage.responded", detail, actor="staff")
    log.info("stage.responded", case=case.reference, stage=case.stage, timing=timing)


def escalate(
    session: Session,
    case: Case,
    at: datetime,
    procedure: Procedure,
    *,
    actor: str,
    by_complainant: bool,
) -> str | None:
    """Move the case to its next stage, whose clock starts at `at`.

    A complainant's request after `request_due_at` is flagged (`late_request`), not
    refused. Returns None on success, or why it cannot be done (case closed, no further
    stage in the policy).
    """
    if is_closed(case):
        return f"case {case.reference} is {case.status}; reopen it first"
    following = procedure.stage(case.stage + 1)
    if following is None:
        last = procedure.stage_name(case.stage) or f"stage {case.stage}"
        return f"no further stage: {last} is the last stage of the procedure"
    if by_complainant and case.request_due_at is not None and at > case.request_due_at:
        case.late_request = True
        add_event(
            session,
            case,
            at,
            "escalation.late_request",
            f"asked after the window closed at {case.request_due_at.isoformat()}",
            actor=actor,
        )
    why = "asked for by the complainant" if by_complainant else "by staff"
    if case.responded_at is None and case.stage_due_at is not None and at > case.stage_due_at:
        why += f"; stage {case.stage} was not answered in time"
    _start_stage(session, case, case.stage + 1, following, at, procedure, at, actor, why)
    case.status = "in_stage"
    case.responded_at = None
    case.request_due_at = None
    if following.handler:
        case.assigned_to = following.handler
        add_event(
            session, case, at, "assigned", f"{following.handler} ({following.name})", actor=actor
        )
    return None


def close(
    session: Session, case: Case, at: datetime, *, reason: str = "closed", actor: str
) -> None:
    """Close the case as `closed`, `withdrawn` or `referred` (its new status).

    Closing a closed case does nothing. Raises ValueError for any other reason.
    """
    if reason not in CLOSE_REASONS:
        raise ValueError(f"close reason must be one of {', '.join(CLOSE_REASONS)}, not {reason!r}")
    if is_closed(case):
        return
    case.status = reason
    case.closed_at = at
    case.close_reason = reason
    add_event(session, case, at, f"case.{reason}", f"at stage {case.stage}", actor=actor)
    log.info("case.closed", case=case.reference, reason=reason)


def reopen(session: Session, case: Case, at: datetime, *, actor: str) -> None:
    """Reopen a closed case where it was: its stage and that stage's due date are kept.

    Reopening an open case does nothing.
    """
    if not is_closed(case):
        return
    was = case.close_reason
    case.closed_at = None
    case.close_reason = None
    if case.responded_at is not None:
        case.status = "responded"
    elif case.acknowledged_at is None:
        case.status = "new"
    else:
        case.status = _status_after_reply(case, case.automatic_reply or "acknowledgement")
    add_event(session, case, at, "case.reopened", f"was {was}; now {case.status}", actor=actor)
    log.info("case.reopened", case=case.reference, status=case.status)


def on_relabelled(
    session: Session, case: Case, procedure: Procedure, at: datetime, actor: str
) -> None:
    """Start or stop the stage clock as the case's new label requires.

    A case relabelled as a complaint starts stage 1 counted from its receipt, as it would
    have on arrival (a late relabel can be overdue at once), and leaves `referral_pending`
    or a closed referral behind: it is in the procedure now. A case relabelled out of the
    procedure stops an unanswered stage's clock. Does nothing on other closed cases.
    """
    staged = case.label in STAGED_LABELS
    if staged and case.close_reason == "referred":
        reopen(session, case, at, actor=actor)
    if is_closed(case):
        return
    if staged and case.stage == 0:
        first = procedure.stage(1)
        if first is not None:
            _start_stage(
                session, case, 1, first, case.received_at, procedure, at, actor, "relabelled"
            )
        if case.status in ("acknowledged", "referral_pending"):
            case.status = "in_stage"
        case.referral_due_at = None
    elif not staged and case.stage > 0 and case.responded_at is None:
        add_event(
            session, case, at, "stage.stopped", f"stage {case.stage}: now {case.label}", actor=actor
        )
        case.stage, case.stage_started_at, case.stage_due_at = 0, None, None
        if case.status == "in_stage":
            case.status = "acknowledged"


def close_unopposed_referrals(session: Session, mailbox: str, now: datetime) -> int:
    """Close as referred the mailbox's signposted cases whose `referral_due_at` has passed
    with nobody objecting (for mailboxes that allow it); returns how many."""
    due = session.scalars(
        select(Case).where(
            Case.mailbox == mailbox,
            Case.status == "referral_pending",
            Case.referral_due_at.is_not(None),
            Case.referral_due_at < now,
        )
    )
    count = 0
    for case in due:
        close(session, case, now, reason="referred", actor="candour (no objection)")
        count += 1
    return count

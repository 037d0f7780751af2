"""The rest of the procedure a case goes through: extensions, outcomes, remedies, lessons.

Each function takes an open session, writes a case event with its actor and time (the
audit trail a regulator asks for) and never commits. models.lifecycle moves a case between
statuses; this module records what the policies ask for besides.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.cases import add_event
from models.lifecycle import Procedure, close, is_closed
from models.schema import Case, Extension, Lesson, Remedy

# How a complaint ended, as the policies word it, and the status each closes the case with.
OUTCOMES = {
    "upheld": "closed",
    "partly-upheld": "closed",
    "not-upheld": "closed",
    "resolved-early": "closed",
    "withdrawn": "withdrawn",
    "referred": "referred",
}
REMEDIES = ("apology", "explanation", "service-change", "payment", "other")


def close_with_outcome(
    session: Session, case: Case, at: datetime, outcome: str | None, summary: str, actor: str
) -> None:
    """Close the case with `outcome` (None: closed without one, which the digest asks for)
    and the summary staff gave. Raises ValueError for an unknown outcome."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if outcome is not None:
        case.outcome = outcome
        add_event(session, case, at, "outcome", f"{outcome}: {summary}".strip(": "), actor=actor)
    case.outcome_summary = summary or case.outcome_summary
    close(session, case, at, reason=OUTCOMES.get(outcome or "", "closed"), actor=actor)


def extend(
    session: Session,
    case: Case,
    procedure: Procedure,
    days: int,
    reason: str,
    at: datetime,
    actor: str,
) -> str | None:
    """Move the running stage's deadline on by `days` working days. Returns why not (no
    stage running, already answered, over the policy's limits), or None."""
    if is_closed(case) or case.stage == 0 or case.stage_due_at is None:
        return "no stage is running"
    if case.responded_at is not None:
        return f"stage {case.stage} is already answered"
    if days > procedure.max_extension_days:
        return f"at most {procedure.max_extension_days} working days at a time"
    used = len(extensions(session, case, case.stage))
    if used >= procedure.max_extensions:
        return f"stage {case.stage} has had {used} extension(s), the procedure's limit"
    old = case.stage_due_at
    case.stage_due_at = procedure.later_by(old, days)
    session.add(
        Extension(
            case_id=case.id,
            stage=case.stage,
            working_days=days,
            reason=reason,
            old_due_at=old,
            new_due_at=case.stage_due_at,
            at=at,
            actor=actor,
        )
    )
    detail = (
        f"stage {case.stage} by {days} working days to {case.stage_due_at.isoformat()}: {reason}"
    )
    add_event(session, case, at, "stage.extended", detail, actor=actor)
    return None


def extensions(session: Session, case: Case, stage: int | None = None) -> list[Extension]:
    query = select(Extension).where(Extension.case_id == case.id).order_by(Extension.id)
    if stage is not None:
        query = query.where(Extension.stage == stage)
    return list(session.scalars(query))


def add_remedy(
    session: Session, case: Case, kind: str, text: str, at: datetime, actor: str
) -> None:
    """Record what was done to put things right. Raises ValueError for an unknown kind."""
    if kind not in REMEDIES:
        raise ValueError(f"remedy must be one of {', '.join(REMEDIES)}, not {kind!r}")
    session.add(Remedy(case_id=case.id, kind=kind, text=text, at=at, actor=actor))
    add_event(session, case, at, "remedy", f"{kind}: {text}".strip(": "), actor=actor)


def remedies(session: Session, case: Case) -> list[Remedy]:
    return list(
        session.scalars(select(Remedy).where(Remedy.case_id == case.id).order_by(Remedy.id))
    )


def add_lesson(
    session: Session,
    case: Case,
    text: str,
    owner: str | None,
    due_at: datetime | None,
    at: datetime,
    actor: str,
) -> Lesson:
    """A lesson or action learnt from the case, chased in the owner's digest until done."""
    lesson = Lesson(
        case_id=case.id, text=text, owner=owner, due_at=due_at, created_at=at, actor=actor
    )
    session.add(lesson)
    session.flush()  # its id is how staff name it (#done L-12)
    due = f", due {due_at.date().isoformat()}" if due_at else ""
    add_event(
        session,
        case,
        at,
        "lesson",
        f"L-{lesson.id} {text} (owner {owner or 'none'}{due})",
        actor=actor,
    )
    return lesson


def lesson_done(
    session: Session, case: Case, lesson_id: int, at: datetime, actor: str
) -> str | None:
    """Mark lesson `lesson_id` of this case done. Returns why not, or None."""
    lesson = session.get(Lesson, lesson_id)
    if lesson is None or lesson.case_id != case.id:
        return f"no lesson L-{lesson_id} on case {case.reference}"
    if lesson.done_at is None:
        lesson.done_at, lesson.done_by = at, actor
        add_event(session, case, at, "lesson.done", f"L-{lesson_id}", actor=actor)
    return None


def lessons(session: Session, case: Case) -> list[Lesson]:
    return list(
        session.scalars(select(Lesson).where(Lesson.case_id == case.id).order_by(Lesson.id))
    )


def open_lessons(session: Session, mailbox: str) -> list[tuple[Lesson, Case]]:
    """Lessons not done yet, of the mailbox's cases, oldest due first."""
    rows = session.execute(
        select(Lesson, Case)
        .join(Case, Lesson.case_id == Case.id)
        .where(Case.mailbox == mailbox, Lesson.done_at.is_(None))
        .order_by(Lesson.due_at, Lesson.id)
    )
    return [(lesson, case) for lesson, case in rows]


def rights(procedure: Procedure, stage: int) -> str:
    """What a response at `stage` tells the complainant of their rights: the stage's own
    words, else the next stage and how long they have to ask for it, else the final rights."""
    current = procedure.stage(stage)
    if current is not None and current.rights:
        return current.rights
    following = procedure.stage(stage + 1)
    if following is not None:
        window = f" within {following.request_within}" if following.request_within else ""
        return (
            f"If you are not satisfied with this response, you can ask for {following.name}"
            f"{window} by replying to this email and saying why."
        )
    return procedure.final_rights

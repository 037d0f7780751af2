"""What each staff command checks and does: the functions behind daemon.casework.commands.

`check_*` functions are pure: the argument in, what is wrong with it (or None) out.
Apply functions act on the case in the caller's transaction and return why they could not
(the staff member is told), or None. Every change writes a case event with its actor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from classifiers.types import LABELS
from daemon.casework.desk import Desk, queue_mail
from daemon.casework.relabel import retriage
from models import cases, lifecycle, procedure, restrictions
from models.schema import Case

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXTEND = re.compile(r"^(\d{1,3})\s+(\S.*)$")
_LESSON = re.compile(
    r"^(?P<text>.*?)(?:\s+owner\s+(?P<owner>\S+))?(?:\s+due\s+(?P<due>\d{4}-\d{2}-\d{2}))?$"
)
_LESSON_ID = re.compile(r"^L-?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Acting:
    """A staff member acting on a case: what every command's apply function is given."""

    session: Session
    desk: Desk
    case: Case
    staff: str
    now: datetime

    def event(self, kind: str, detail: str) -> None:
        cases.add_event(self.session, self.case, self.now, kind, detail, actor=self.staff)


def no_argument(argument: str) -> str | None:
    return None if not argument else "takes nothing after it: put your text on the next line"


def nothing(acting: Acting, argument: str) -> str | None:
    return None


def _outcome_and_summary(argument: str) -> tuple[str | None, str]:
    word, _, summary = argument.partition(" ")
    return (None if word in ("", "resolved") else word.lower()), summary.strip()


def check_close(argument: str) -> str | None:
    outcome, _ = _outcome_and_summary(argument)
    if outcome is None or outcome in procedure.OUTCOMES:
        return None
    return f"give an outcome: {', '.join(procedure.OUTCOMES)} (then a summary if you like)"


def close(acting: Acting, argument: str) -> str | None:
    outcome, summary = _outcome_and_summary(argument)
    procedure.close_with_outcome(
        acting.session, acting.case, acting.now, outcome, summary, acting.staff
    )
    return None


def check_label(argument: str) -> str | None:
    return None if argument in LABELS else f"not one of {', '.join(LABELS)}"


def label(acting: Acting, argument: str) -> str | None:
    retriage(
        acting.session,
        acting.desk,
        acting.case,
        argument,
        source="email-command",
        actor=acting.staff,
        now=acting.now,
    )
    return None


def reopen(acting: Acting, argument: str) -> str | None:
    lifecycle.reopen(acting.session, acting.case, acting.now, actor=acting.staff)
    return None


def check_stage(argument: str) -> str | None:
    return None if argument.isdigit() and int(argument) >= 1 else "give a stage number"


def stage(acting: Acting, argument: str) -> str | None:
    case = acting.case
    if int(argument) != case.stage + 1:
        return f"the case is at stage {case.stage}; the next stage is {case.stage + 1}"
    return lifecycle.escalate(
        acting.session,
        case,
        acting.now,
        acting.desk.procedure,
        actor=acting.staff,
        by_complainant=False,
    )


def check_assign(argument: str) -> str | None:
    return None if _ADDRESS.match(argument) else "give an email address"


def assign(acting: Acting, argument: str) -> str | None:
    acting.case.assigned_to = argument.lower()
    acting.event("assigned", argument.lower())
    return None


def early(acting: Acting, argument: str) -> str | None:
    return lifecycle.start_early(
        acting.session, acting.case, acting.desk.procedure, acting.now, acting.staff
    )


def accept(acting: Acting, argument: str) -> str | None:
    return lifecycle.accept(
        acting.session, acting.case, acting.desk.procedure, acting.now, acting.staff
    )


def check_extend(argument: str) -> str | None:
    if _EXTEND.match(argument):
        return None
    return "give working days and a reason, e.g. #extend 5 we are waiting for the ward's notes"


def extend(acting: Acting, argument: str) -> str | None:
    """Move the stage's deadline, and tell the complainant why and the new date."""
    match = _EXTEND.match(argument)
    assert match is not None
    days, reason = int(match.group(1)), match.group(2)
    desk, case = acting.desk, acting.case
    problem = procedure.extend(
        acting.session, case, desk.procedure, days, reason, acting.now, acting.staff
    )
    if problem:
        return problem
    notice = desk.letter(
        "extension",
        case=case,
        recipient=desk.complainant_address(case),
        context={
            "stage_name": desk.procedure.stage_name(case.stage),
            "reason": reason,
            "due": desk.mailbox.letterhead.local_time(case.stage_due_at),
        },
        now=acting.now,
        auto_submitted="auto-generated",
    )
    queue_mail(acting.session, desk.mailbox, case, notice, acting.now)
    return None


def check_remedy(argument: str) -> str | None:
    kind, _, _ = argument.partition(" ")
    return None if kind in procedure.REMEDIES else f"give one of {', '.join(procedure.REMEDIES)}"


def remedy(acting: Acting, argument: str) -> str | None:
    kind, _, text = argument.partition(" ")
    procedure.add_remedy(acting.session, acting.case, kind, text.strip(), acting.now, acting.staff)
    return None


def _lesson_parts(argument: str) -> tuple[str, str | None, date | None] | str:
    match = _LESSON.match(argument)
    if match is None or not match.group("text").strip():
        return "give the lesson, then optionally: owner ADDRESS due YYYY-MM-DD"
    owner = match.group("owner")
    if owner and not _ADDRESS.match(owner):
        return f"owner {owner}: give an email address"
    due = match.group("due")
    try:
        day = date.fromisoformat(due) if due else None
    except ValueError:
        return f"due {due}: give a date like 2026-12-24"
    return match.group("text").strip(), owner.lower() if owner else None, day


def check_lesson(argument: str) -> str | None:
    parts = _lesson_parts(argument)
    return parts if isinstance(parts, str) else None


def lesson(acting: Acting, argument: str) -> str | None:
    parts = _lesson_parts(argument)
    assert not isinstance(parts, str)
    text, owner, day = parts
    calendar = acting.desk.calendar
    due_at = datetime.combine(day, calendar.closes, tzinfo=calendar.zone) if day else None
    procedure.add_lesson(acting.session, acting.case, text, owner, due_at, acting.now, acting.staff)
    return None


def check_waive(argument: str) -> str | None:
    what, _, reason = argument.partition(" ")
    if what == "time-limit" and reason.strip():
        return None
    return "say what and why, e.g. #waive time-limit she only learnt of it last month"


def waive(acting: Acting, argument: str) -> str | None:
    case = acting.case
    if "time_limit" not in case.flag_names:
        return "the case is not flagged time_limit"
    case.flags = ",".join(f for f in case.flag_names if f != "time_limit")
    acting.event("time_limit.waived", argument.partition(" ")[2].strip())
    return None


_RESTRICT = re.compile(r"^(?:until\s+(?P<until>\d{4}-\d{2}-\d{2})\s+)?(?P<reason>\S.*)$")


def check_restrict(argument: str) -> str | None:
    match = _RESTRICT.match(argument)
    if match is None:
        return "give the reason, e.g. #restrict until 2027-03-01 six identical complaints a day"
    until = match.group("until")
    try:
        if until:
            date.fromisoformat(until)
    except ValueError:
        return f"until {until}: give a date like 2027-03-01"
    return None


def restrict(acting: Acting, argument: str) -> str | None:
    """Restrict the complainant's contact until the review date (given, or the mailbox's
    `restriction_review_days` from now): their repeats are recorded, not acknowledged."""
    match = _RESTRICT.match(argument)
    assert match is not None
    calendar, mailbox = acting.desk.calendar, acting.desk.mailbox
    if match.group("until"):
        day = date.fromisoformat(match.group("until"))
        review_at = datetime.combine(day, calendar.opens, tzinfo=calendar.zone)
    else:
        review_at = acting.now + timedelta(days=mailbox.restriction_review_days)
    if not acting.case.complainant and not acting.case.pseudonym:
        return "the case has no complainant to restrict"
    restrictions.restrict(
        acting.session, acting.case, match.group("reason"), review_at, acting.now, acting.staff
    )
    return None


def unrestrict(acting: Acting, argument: str) -> str | None:
    if not restrictions.lift(acting.session, acting.case, acting.now, acting.staff):
        return "the complainant's contact is not restricted"
    return None


def check_done(argument: str) -> str | None:
    return None if _LESSON_ID.match(argument) else "give the lesson's number, e.g. #done L-12"


def done(acting: Acting, argument: str) -> str | None:
    match = _LESSON_ID.match(argument)
    assert match is not None
    return procedure.lesson_done(
        acting.session, acting.case, int(match.group(1)), acting.now, acting.staff
    )

"""Reminders: what each open case has due, a daily digest per route and overdue notices.

A case's running deadlines are its unsent acknowledgement (`ack_due_at`) and its
unanswered stage (`stage_due_at`). On each working day, from `reminders.at` local time,
every route gets one digest of its deadlines due within `due_within_working_days` or
already passed, and the manager one notice per overdue deadline. Each mail is queued in
the outbox under a unique `once_key`, so running again (after a restart, or every minute)
queues nothing new: "digest:<mailbox>:<route>:<local date>", "overdue:<case>:<stage|ack>".
Digests name staff routes and case references, never complainants' addresses.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from daemon.casework.desk import Desk, queue_staff_mail
from daemon.casework.workdays import WorkingCalendar
from daemon.config import MailboxConfig
from models import cases, outbox, procedure, restrictions
from models.cases import OPEN_STATUSES
from models.lifecycle import Procedure
from models.schema import Case

log = structlog.get_logger("candour.reminders")

_ONCE_KEY_MAX = 200  # Outbox.once_key's column length
_LOCAL_FORMAT = "%a %d %b %Y %H:%M"


@dataclass(frozen=True)
class Deadline:
    """One running time limit of an open case, as it stands at a given moment."""

    case_id: int
    reference: str
    label: str
    status: str
    route: str | None
    assigned_to: str | None
    stage: int
    stage_name: str
    what: str  # "acknowledgement" | "stage" | "referral" | "early" | "outcome" | "lesson"
    due_at: datetime  # UTC
    working_days_left: int  # 0 on its last day; negative: working days overdue
    overdue: bool
    lesson: str = ""  # "L-12 the lesson" for what == "lesson"

    @property
    def key_part(self) -> str:
        """The once_key part naming what is overdue: the stage number, "ack" or "referral"."""
        if self.what == "lesson":
            return self.lesson.split(" ", 1)[0]
        return {"acknowledgement": "ack"}.get(
            self.what, self.what if self.what != "stage" else str(self.stage)
        )

    @property
    def description(self) -> str:
        if self.what == "acknowledgement":
            return "acknowledgement"
        if self.what in _DESCRIPTIONS:
            return _DESCRIPTIONS[self.what]
        if self.what == "lesson":
            return f"lesson {self.lesson} (#done {self.lesson.split(' ', 1)[0]})"
        plain = f"stage {self.stage} response"
        named = self.stage_name and self.stage_name != f"stage {self.stage}"
        return f"{plain} ({self.stage_name})" if named else plain

    @property
    def standing(self) -> str:
        """'2 working days left', 'overdue by 1 working day', 'overdue (today)'."""
        days = abs(self.working_days_left)
        unit = "working day" if days == 1 else "working days"
        if not self.overdue:
            return f"{days} {unit} left"
        return f"overdue by {days} {unit}" if days else "overdue (today)"


_DESCRIPTIONS = {
    "referral": "referral to confirm (#close referred, or #label complaint)",
    "early": "early resolution (#close resolved-early, or #accept for stage 1)",
    "outcome": "outcome to record (#close upheld, partly-upheld or not-upheld)",
}


def _deadline(
    case: Case,
    procedure: Procedure,
    calendar: WorkingCalendar,
    now: datetime,
    what: str,
    due_at: datetime,
    route: str | None = None,
    lesson: str = "",
) -> Deadline:
    overdue = now >= due_at
    days = calendar.working_days_between(now, due_at)
    return Deadline(
        case_id=case.id,
        reference=case.reference,
        label=case.label,
        status=case.status,
        route=route or case.route,
        assigned_to=case.assigned_to,
        stage=case.stage,
        stage_name=procedure.stage_name(case.stage),
        what=what,
        due_at=due_at,
        # An hours-based limit can fall after closing time: never "-1 left".
        working_days_left=min(days, 0) if overdue else max(days, 0),
        overdue=overdue,
        lesson=lesson,
    )


def procedure_deadlines(session: Session, desk: Desk, now: datetime) -> list[Deadline]:
    """What the procedure still asks of staff besides the open cases' deadlines: lessons
    not done (in their owner's digest) and outcomes not recorded on closed complaints."""
    found = []
    for lesson, case in procedure.open_lessons(session, desk.mailbox.name):
        due = lesson.due_at or lesson.created_at
        text = f"L-{lesson.id} {lesson.text}"
        found.append(
            _deadline(case, desk.procedure, desk.calendar, now, "lesson", due, lesson.owner, text)
        )
    for case in cases.closed_without_outcome(session, desk.mailbox.name):
        due = case.closed_at or now
        found.append(_deadline(case, desk.procedure, desk.calendar, now, "outcome", due))
    return found


def running_deadlines(
    case: Case, procedure: Procedure, calendar: WorkingCalendar, now: datetime
) -> list[Deadline]:
    """The case's unmet deadlines at `now`: an owed acknowledgement, an unanswered stage."""
    if case.status not in OPEN_STATUSES:
        return []
    found: list[tuple[str, datetime]] = []
    if case.acknowledged_at is None and case.no_ack_reason is None and case.ack_due_at:
        found.append(("acknowledgement", case.ack_due_at))
    if case.status == "referral_pending" and case.referral_due_at is not None:
        found.append(("referral", case.referral_due_at))
    if case.status == "early_resolution" and case.early_due_at is not None:
        found.append(("early", case.early_due_at))
    if case.stage > 0 and case.stage_due_at is not None and case.responded_at is None:
        found.append(("stage", case.stage_due_at))
    deadlines = [_deadline(case, procedure, calendar, now, what, due) for what, due in found]
    return deadlines


def reminder_time_reached(mailbox: MailboxConfig, calendar: WorkingCalendar, now: datetime) -> bool:
    """True when reminders are on and `now` is a working day at or after `reminders.at`."""
    local = now.astimezone(calendar.zone)
    return (
        mailbox.reminders.enabled
        and calendar.is_working_day(local.date())
        and local.time() >= time.fromisoformat(mailbox.reminders.at)
    )


def queue_reminders(session: Session, desk: Desk, now: datetime) -> list[str]:
    """Queue today's digests and any new overdue notices; returns the once_keys queued.

    Returns [] outside reminder time, and leaves out what an earlier run already queued.
    Raises TemplateProblem when digest.txt or overdue.txt cannot be rendered.
    """
    mailbox, calendar = desk.mailbox, desk.calendar
    if not reminder_time_reached(mailbox, calendar, now):
        return []
    horizon = mailbox.reminders.due_within_working_days
    found = {case.id: case for case in cases.open_cases(session, mailbox.name)}
    every = [d for c in found.values() for d in running_deadlines(c, desk.procedure, calendar, now)]
    every += procedure_deadlines(session, desk, now)
    found.update({c.id: c for c in cases.closed_without_outcome(session, mailbox.name)})
    found.update({case.id: case for _, case in procedure.open_lessons(session, mailbox.name)})
    listed = sorted(
        (d for d in every if d.overdue or d.working_days_left <= horizon),
        key=lambda d: (d.due_at, d.case_id),
    )
    queued = _digests(session, desk, listed, now)
    manager = mailbox.reminders.manager
    for deadline in (d for d in listed if d.overdue and manager):
        key = _once_key("overdue", str(deadline.case_id), deadline.key_part)
        context = {"route": deadline.route or "not routed", **_item(deadline, calendar)}
        if _queue_once(session, desk, "overdue", "overdue_notice", str(manager), context, key, now):
            queued.append(key)
            cases.add_event(
                session, found[deadline.case_id], now, "overdue.notified", deadline.description
            )
            log.info("reminders.overdue_queued", mailbox=mailbox.name, case=deadline.reference)
    return queued


def _digests(session: Session, desk: Desk, listed: list[Deadline], now: datetime) -> list[str]:
    """One digest per route of its listed deadlines, once a day; returns the keys queued."""
    mailbox, calendar = desk.mailbox, desk.calendar
    by_route: dict[str, list[Deadline]] = defaultdict(list)
    for deadline in listed:
        if deadline.route:
            by_route[deadline.route].append(deadline)
    today = now.astimezone(calendar.zone)
    review = len(cases.list_cases(session, mailbox.name, OPEN_STATUSES, needs_review=True))
    queued: list[str] = []
    for route, deadlines in sorted(by_route.items()):
        key = _once_key("digest", mailbox.name, route, today.date().isoformat())
        items = [_item(d, calendar) for d in deadlines]
        context = {
            "review": review if route == mailbox.routes.review else 0,
            "date": today.strftime("%A %d %B %Y"),
            "due_within": mailbox.reminders.due_within_working_days,
            "overdue": [i for i in items if i["overdue"]],
            "due_soon": [i for i in items if not i["overdue"]],
        }
        if _queue_once(session, desk, "digest", "digest", route, context, key, now):
            queued.append(key)
            log.info(
                "reminders.digest_queued",
                mailbox=mailbox.name,
                cases=len({d.case_id for d in deadlines}),
                overdue=sum(d.overdue for d in deadlines),
            )
    return queued


def _once_key(kind: str, *parts: str) -> str:
    """kind:part:part..., hashed past the column's length (a long route address)."""
    key = ":".join((kind, *parts))
    if len(key) <= _ONCE_KEY_MAX:
        return key
    return f"{kind}:{hashlib.sha256(key.encode()).hexdigest()}"


def _queue_once(
    session: Session,
    desk: Desk,
    template: str,
    kind: str,
    recipient: str,
    context: dict[str, Any],
    key: str,
    now: datetime,
) -> bool:
    """Render and queue a reminder under `key`, unless it was queued before; False then.

    The check first: the scheduler asks every minute, all day long. The unique once_key,
    not the check, is what guarantees once: two workers may both find a key missing, and
    the second insert fails here, in its savepoint, alone.
    """
    if outbox.once_key_queued(session, key):
        return False
    context = {"mailbox": desk.mailbox.name, **context}
    try:
        with session.begin_nested():
            queue_staff_mail(
                session,
                desk,
                template,
                case=None,
                kind=kind,
                recipient=recipient,
                context=context,
                now=now,
                once_key=key,
            )
    except IntegrityError:
        return False
    return True


def _item(deadline: Deadline, calendar: WorkingCalendar) -> dict[str, Any]:
    return {
        "reference": deadline.reference,
        "label": deadline.label,
        "status": deadline.status,
        "stage": deadline.stage,
        "stage_name": deadline.stage_name,
        "deadline": deadline.description,
        "due": deadline.due_at.astimezone(calendar.zone).strftime(_LOCAL_FORMAT),
        "working_days_left": deadline.working_days_left,
        "overdue": deadline.overdue,
        "standing": deadline.standing,
        "assigned_to": deadline.assigned_to or "",
    }


def review_restrictions(session: Session, desk: Desk, now: datetime) -> list[str]:
    """Restrictions at their review date: each lapses, and the manager (else the review
    route) is told so, once; returns the once_keys queued."""
    mailbox = desk.mailbox
    to = mailbox.reminders.manager or mailbox.routes.review or mailbox.routes.complaint
    queued = []
    for restriction in restrictions.due_for_review(session, mailbox.name, now):
        case = session.get(Case, restriction.case_id)
        restriction.lifted_at = now
        if case is None:
            continue
        case.flags = ",".join(f for f in case.flag_names if f != "restricted")
        cases.add_event(session, case, now, "contact.restriction_lapsed", restriction.reason)
        key = _once_key("restriction", str(restriction.id))
        context = {
            "reference": case.reference,
            "reason": restriction.reason,
            "since": restriction.created_at.astimezone(desk.calendar.zone).strftime(_LOCAL_FORMAT),
        }
        if to and _queue_once(
            session, desk, "restriction_review", "restriction_review", to, context, key, now
        ):
            queued.append(key)
    return queued

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
from models import cases, outbox
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
    what: str  # "acknowledgement" | "stage" | "referral"
    due_at: datetime  # UTC
    working_days_left: int  # 0 on its last day; negative: working days overdue
    overdue: bool

    @property
    def key_part(self) -> str:
        """The once_key part naming what is overdue: the stage number, "ack" or "referral"."""
        return {"acknowledgement": "ack", "referral": "referral"}.get(self.what, str(self.stage))

    @property
    def description(self) -> str:
        if self.what == "acknowledgement":
            return "acknowledgement"
        if self.what == "referral":
            return "referral to confirm (#close referred, or #label complaint)"
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
    if case.stage > 0 and case.stage_due_at is not None and case.responded_at is None:
        found.append(("stage", case.stage_due_at))
    deadlines = []
    for what, due_at in found:
        overdue = now >= due_at
        days = calendar.working_days_between(now, due_at)
        deadlines.append(
            Deadline(
                case_id=case.id,
                reference=case.reference,
                label=case.label,
                status=case.status,
                route=case.route,
                assigned_to=case.assigned_to,
                stage=case.stage,
                stage_name=procedure.stage_name(case.stage),
                what=what,
                due_at=due_at,
                # An hours-based limit can fall after closing time: never "-1 left".
                working_days_left=min(days, 0) if overdue else max(days, 0),
                overdue=overdue,
            )
        )
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
    listed = sorted(
        (
            deadline
            for case in found.values()
            for deadline in running_deadlines(case, desk.procedure, calendar, now)
            if deadline.overdue or deadline.working_days_left <= horizon
        ),
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

"""A data subject's records (UK GDPR, issue 22), in the caller's session: finding them,
reading them for a subject-access export, erasing them, and the audit trail of who did it.

A subject is an address, or `pseudonym:NAME` in an anonymous community. Their cases are
the ones they complained on or represent someone on; their messages and mail are those of
those cases plus any other message from or mail to the address. Erasure keeps what the
reports count (label, dates, deadlines, stages, outcome, flags) and removes everything
that says who or what: message bytes, subjects, addresses, names, free text.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from models.cases import OPEN_STATUSES
from models.schema import (
    Audit,
    Case,
    CaseEvent,
    Correction,
    Extension,
    Message,
    Outbox,
    Remedy,
    Restriction,
)

ERASED = "[erased]"
# Events whose detail is lifecycle bookkeeping (what the reports read), not personal.
KEPT_EVENTS = ("stage.started", "stage.escalated", "stage.responded", "stage.extended")


@dataclass
class Subject:
    """What a data subject's identifier finds."""

    cases: list[Case]
    messages: list[Message]
    mail: list[Outbox]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def open_cases(self) -> list[str]:
        return [c.reference for c in self.cases if c.status in OPEN_STATUSES]


def _is_pseudonym(who: str) -> bool:
    return who.startswith("pseudonym:")


def find(session: Session, who: str) -> Subject:
    """The cases, messages and outgoing mail of `who` (an address or pseudonym:NAME)."""
    who = who.strip().lower() if not _is_pseudonym(who) else who.strip()
    if _is_pseudonym(who):
        condition = Case.pseudonym == who.removeprefix("pseudonym:")
    else:
        condition = or_(Case.complainant == who, Case.representative == who)
    found = list(session.scalars(select(Case).where(condition).order_by(Case.id)))
    ids = [c.id for c in found]
    messages: ColumnElement[bool] = Message.case_id.in_(ids)
    mail: ColumnElement[bool] = Outbox.case_id.in_(ids)
    if not _is_pseudonym(who):
        messages = or_(messages, Message.sender == who)
        mail = or_(mail, Outbox.recipient == who)
    return Subject(
        found,
        list(session.scalars(select(Message).where(messages).order_by(Message.id))),
        list(session.scalars(select(Outbox).where(mail).order_by(Outbox.id))),
    )


def events(session: Session, case: Case) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at)
        )
    )


def erase(session: Session, subject: Subject) -> dict[str, int]:
    """Remove the subject's personal data, keeping the figures; returns what was erased."""
    ids = [c.id for c in subject.cases]
    for case in subject.cases:
        case.complainant = ""
        case.subject = ERASED
        case.pseudonym = None
        case.representative = case.representative_name = None
        case.outcome_summary = None
    for message in subject.messages:
        message.raw, message.subject, message.sender, message.reason = b"", ERASED, "", None
    for mail in subject.mail:
        mail.raw, mail.recipient, mail.last_error = b"", "", None
    erased_events = 0
    for event in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids))):
        kept = event.detail.partition(": ")[0] if event.kind == "stage.extended" else None
        if event.kind == "stage.extended":
            event.detail = f"{kept}: {ERASED}"  # the dates stay, the reason goes
        elif event.kind not in KEPT_EVENTS:
            event.detail = ERASED
            erased_events += 1
    session.execute(update(Extension).where(Extension.case_id.in_(ids)).values(reason=ERASED))
    session.execute(update(Remedy).where(Remedy.case_id.in_(ids)).values(text=ERASED))
    session.execute(
        update(Restriction)
        .where(Restriction.case_id.in_(ids))
        .values(complainant="", reason=ERASED)
    )
    corrections = list(session.scalars(select(Correction.id).where(Correction.case_id.in_(ids))))
    session.execute(delete(Correction).where(Correction.id.in_(corrections)))
    return {
        "cases": len(subject.cases),
        "messages": len(subject.messages),
        "mail": len(subject.mail),
        "events": erased_events,
        "corrections": len(corrections),
    }


def audit(session: Session, at: datetime, action: str, detail: str) -> None:
    """Record who (the operating-system user) did `action`; `detail` names no subject."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    session.add(Audit(at=at, os_user=user[:64], action=action, detail=detail))


def closed_before(session: Session, mailbox: str, label: str, moment: datetime) -> list[Case]:
    """The mailbox's `label` cases closed before `moment` whose content is not purged yet."""
    query = select(Case).where(
        Case.mailbox == mailbox,
        Case.label == label,
        Case.closed_at.is_not(None),
        Case.closed_at < moment,
        Case.subject != ERASED,
    )
    return list(session.scalars(query.order_by(Case.id)))


def of_cases(session: Session, cases: list[Case]) -> Subject:
    """The records of `cases`: their messages and mail (for retention)."""
    ids = [c.id for c in cases]
    return Subject(
        cases,
        list(session.scalars(select(Message).where(Message.case_id.in_(ids)))),
        list(session.scalars(select(Outbox).where(Outbox.case_id.in_(ids)))),
    )

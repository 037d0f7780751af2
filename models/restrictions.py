"""Restrictions of persistent or unacceptable contact, and repeat contact, in the caller's
session. A restriction applies to a complainant (their address, or `pseudonym:NAME`) in one
mailbox until its review date; every change is a case event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.cases import OPEN_STATUSES, add_event
from models.schema import Case, Restriction


def who(case: Case) -> str:
    """How a restriction names the case's complainant."""
    return f"pseudonym:{case.pseudonym}" if case.pseudonym else case.complainant


def restrict(
    session: Session, case: Case, reason: str, review_at: datetime, at: datetime, actor: str
) -> None:
    """Restrict the case's complainant until `review_at` (a renewal replaces the last)."""
    lift(session, case, at, actor, quietly=True)
    session.add(
        Restriction(
            mailbox=case.mailbox,
            complainant=who(case),
            case_id=case.id,
            reason=reason,
            review_at=review_at,
            created_at=at,
            actor=actor,
        )
    )
    case.flags = ",".join(dict.fromkeys([*case.flag_names, "restricted"]))
    detail = f"until {review_at.date().isoformat()}: {reason}"
    add_event(session, case, at, "contact.restricted", detail, actor=actor)


def lift(session: Session, case: Case, at: datetime, actor: str, quietly: bool = False) -> bool:
    """End the complainant's restriction, if any; returns whether there was one."""
    active = session.scalars(
        select(Restriction).where(
            Restriction.mailbox == case.mailbox,
            Restriction.complainant == who(case),
            Restriction.lifted_at.is_(None),
        )
    ).all()
    for restriction in active:
        restriction.lifted_at = at
    if active and not quietly:
        case.flags = ",".join(f for f in case.flag_names if f != "restricted")
        add_event(session, case, at, "contact.unrestricted", "", actor=actor)
    return bool(active)


def restricted(session: Session, mailbox: str) -> frozenset[str]:
    """The complainants whose contact is restricted now (loaded once per batch)."""
    return frozenset(
        session.scalars(
            select(Restriction.complainant).where(
                Restriction.mailbox == mailbox, Restriction.lifted_at.is_(None)
            )
        )
    )


def open_case_about(session: Session, mailbox: str, complainant: str, subject: str) -> Case | None:
    """The complainant's latest open case with this (normalised) subject: where a restricted
    sender's repeat is recorded instead of opening a case."""
    for case in session.scalars(
        select(Case)
        .where(
            Case.mailbox == mailbox,
            Case.complainant == complainant,
            Case.status.in_(OPEN_STATUSES),
        )
        .order_by(Case.id.desc())
    ):
        if same_subject(case.subject, subject):
            return case
    return None


def same_subject(one: str, other: str) -> bool:
    def plain(subject: str) -> str:
        words = subject.lower().replace("re:", " ").replace("fwd:", " ").replace("fw:", " ")
        return " ".join(w for w in words.split() if not w.startswith("["))

    return plain(one) == plain(other)


def due_for_review(session: Session, mailbox: str, now: datetime) -> list[Restriction]:
    return list(
        session.scalars(
            select(Restriction).where(
                Restriction.mailbox == mailbox,
                Restriction.lifted_at.is_(None),
                Restriction.review_at <= now,
            )
        )
    )


def cases_opened_since(
    session: Session, mailbox: str, complainants: Sequence[str], since: datetime
) -> dict[str, int]:
    """Cases each complainant opened since `since`, in one query (none: absent)."""
    if not complainants:
        return {}
    rows = session.execute(
        select(Case.complainant, func.count(Case.id))
        .where(
            Case.mailbox == mailbox,
            Case.complainant.in_(sorted(set(complainants))),
            Case.received_at >= since,
        )
        .group_by(Case.complainant)
    )
    return {str(address): int(count) for address, count in rows}

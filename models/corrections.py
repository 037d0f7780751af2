"""Staff corrections of a case's label: recorded for audit and for retraining."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.cases import add_event
from models.schema import Case, Correction, Message


def relabel(
    session: Session,
    case: Case,
    new_label: str,
    *,
    source: str,
    actor: str,
    at: datetime,
    message_id: int | None = None,
) -> bool:
    """Give `case` a new label chosen by staff; returns False when it already had it."""
    if new_label == case.label:
        return False
    session.add(
        Correction(
            case_id=case.id,
            message_id=message_id,
            old_label=case.label,
            new_label=new_label,
            source=source,
            at=at,
        )
    )
    add_event(
        session, case, at, "label.changed", f"{case.label} -> {new_label} ({source})", actor=actor
    )
    case.label = new_label
    case.needs_review = False
    return True


def relabel_by_message_id(
    session: Session, mailbox: str, message_id: str, new_label: str, at: datetime
) -> str | None:
    """Relabel the case a moved message belongs to; returns its reference, or None."""
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
    if case is None:
        return None
    relabel(
        session,
        case,
        new_label,
        source="imap-folder",
        actor="staff (IMAP folder)",
        at=at,
        message_id=row.id,
    )
    return case.reference

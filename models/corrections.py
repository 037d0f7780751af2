"""Staff corrections of a case's label: recorded for audit and for retraining."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models.cases import add_event
from models.schema import Case, Correction


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

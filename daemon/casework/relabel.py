"""A relabel is a full re-triage: what a case would have had under its new label.

Whether staff relabel by `#label` or by moving the message into a label folder, the
case gets, in the caller's transaction:
- the correction, recorded for audit and for retraining (models.corrections);
- its route: a copy to the new label's route saying who relabelled it and from what;
- its stage clock started (counted from the original receipt) or stopped
  (models.lifecycle.on_relabelled);
- for a complainant who was only signposted away and whose case is now a complaint, the
  acknowledgement they should have had (`acknowledgement_relabelled.txt`, which an
  organisation can reword like any template);
- case events for each of these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from daemon.casework.desk import Desk, queue_mail, queue_staff_mail
from models import cases, lifecycle
from models.corrections import relabel
from models.schema import Case


def retriage(
    session: Session,
    desk: Desk,
    case: Case,
    new_label: str,
    *,
    source: str,
    actor: str,
    now: datetime,
    message_id: int | None = None,
) -> bool:
    """Relabel `case` and re-triage it; False when it already had the label."""
    old_label = case.label
    if not relabel(
        session, case, new_label, source=source, actor=actor, at=now, message_id=message_id
    ):
        return False
    lifecycle.on_relabelled(session, case, desk.procedure, now, actor)
    route = desk.mailbox.routes.for_label(new_label)
    if route and route != case.route:
        case.route = route
        cases.add_event(session, case, now, "routed", f"{route} (relabelled)", actor=actor)
        context = {
            "old_label": old_label,
            "label": new_label,
            "relabelled_by": actor,
            "status": case.status,
            "subject": case.subject,
            "stage_due": desk.mailbox.letterhead.local_time(case.stage_due_at)
            if case.stage_due_at
            else "",
        }
        queue_staff_mail(
            session, desk, "relabel_copy", case=case, recipient=route, context=context, now=now
        )
    if new_label == "complaint" and case.automatic_reply == "signpost":
        _acknowledge_after_signpost(session, desk, case, now)
    return True


def _acknowledge_after_signpost(session: Session, desk: Desk, case: Case, now: datetime) -> None:
    """The acknowledgement a signposted complainant should have had, sent once."""
    reply = desk.letter(
        "acknowledgement_relabelled",
        case=case,
        kind="acknowledgement",
        recipient=desk.complainant_address(case),
        context={
            "name": case.pseudonym or "Sir or Madam",
            "original_subject": case.subject or "(no subject)",
            "received": desk.mailbox.letterhead.local_time(case.received_at),
            "stage_due": desk.mailbox.letterhead.local_time(case.stage_due_at),
        },
        now=now,
    )
    queue_mail(session, desk.mailbox, case, reply, now, once_key=f"ack-relabel:{case.reference}")
    case.automatic_reply = "acknowledgement"


def relabel_by_message_id(
    session: Session, desk: Desk, message_id: str, new_label: str, now: datetime
) -> str | None:
    """Re-triage the case a message moved into a label folder belongs to; its reference,
    or None when the message is not on a case (or the case had the label already)."""
    found = cases.case_of_message(session, desk.mailbox.name, message_id)
    if found is None:
        return None
    case, row_id = found
    changed = retriage(
        session,
        desk,
        case,
        new_label,
        source="imap-folder",
        actor="staff (IMAP folder)",
        now=now,
        message_id=row_id,
    )
    return case.reference if changed else None

"""How the commands show a case: the fields `cases list --json`, `cases show --json` and
`review --json` print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.schema import Case


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def case_summary(case: Case) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "mailbox": case.mailbox,
        "channel": case.channel,
        "label": case.label,
        "confidence": round(case.confidence, 3),
        "needs_review": case.needs_review,
        "status": case.status,
        "created": iso(case.created_at),
        "received": iso(case.received_at),
        "acknowledged_at": iso(case.acknowledged_at),
        "ack_due_at": iso(case.ack_due_at),
        "no_ack_reason": case.no_ack_reason,
        "ack_breached": case.ack_breached,
        "automatic_reply": case.automatic_reply,
        "referral_due_at": iso(case.referral_due_at),
        "flags": case.flag_names,
        "route": case.route,
        "assigned_to": case.assigned_to,
        "pseudonym": case.pseudonym,
        "representative": case.representative,
        "representative_authority": case.representative_authority,
        "stage": case.stage,
        "stage_due_at": iso(case.stage_due_at),
        "responded_at": iso(case.responded_at),
        "request_due_at": iso(case.request_due_at),
        "closed_at": iso(case.closed_at),
        "close_reason": case.close_reason,
        "outcome": case.outcome,
        "outcome_summary": case.outcome_summary,
        "handler": case.assigned_to or case.route,
        "early_due_at": iso(case.early_due_at),
    }


def case_record(session: Session, case: Case) -> dict[str, Any]:
    """The summary plus what the procedure recorded: extensions, remedies, lessons."""
    from models import procedure

    return {
        **case_summary(case),
        "extensions": [
            {
                "stage": e.stage,
                "working_days": e.working_days,
                "reason": e.reason,
                "from": iso(e.old_due_at),
                "to": iso(e.new_due_at),
                "at": iso(e.at),
                "by": e.actor,
            }
            for e in procedure.extensions(session, case)
        ],
        "remedies": [
            {"kind": r.kind, "text": r.text, "at": iso(r.at), "by": r.actor}
            for r in procedure.remedies(session, case)
        ],
        "lessons": [
            {
                "id": f"L-{lesson.id}",
                "text": lesson.text,
                "owner": lesson.owner,
                "due": iso(lesson.due_at),
                "done": iso(lesson.done_at),
            }
            for lesson in procedure.lessons(session, case)
        ],
    }

"""How the commands show a case: the fields `cases list --json` and `review --json` print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.schema import Case


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def case_summary(case: Case) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "mailbox": case.mailbox,
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
        "stage": case.stage,
        "stage_due_at": iso(case.stage_due_at),
        "responded_at": iso(case.responded_at),
        "request_due_at": iso(case.request_due_at),
        "closed_at": iso(case.closed_at),
        "close_reason": case.close_reason,
    }

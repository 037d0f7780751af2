"""Opening a case: apply an intake decision in the caller's transaction.

The new case with its reference, deadlines and history; its stage clock (models.lifecycle);
the one automatic reply to the sender, or the reason it was withheld; the staff copies to
the route (and the safeguarding lead when flagged). What to do was decided by
daemon.triage.intake; this module only does it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from classifiers.types import Classification
from daemon.casework.desk import Desk, Incoming, queue_mail, queue_staff_mail
from daemon.mail.parse import ParsedMessage, attachment_files
from daemon.mail.values import Outcome, RawMessage, Result
from daemon.triage.intake import IntakeDecision
from models import cases, lifecycle
from models.schema import Case
from replies import compose
from replies.forwarding import forwardable


def open_case(
    session: Session,
    desk: Desk,
    incoming: Incoming,
    classification: Classification,
    decision: IntakeDecision,
    now: datetime,
    replies_today: dict[str, int],
    letter: compose.FileAttachment | None = None,
) -> Result:
    """Open a case for `incoming` as `decision` says; `replies_today` (loaded once per
    batch) counts the automatic reply queued here; `letter`, an acknowledgement to post,
    goes to staff with their copy."""
    raw, parsed, mailbox = incoming.raw, incoming.parsed, desk.mailbox
    case = Case(
        reference=cases.next_reference(session, mailbox.reference_prefix, raw.received_at.year),
        mailbox=mailbox.name,
        status="new",
        label=decision.label,
        confidence=classification.confidence,
        needs_review=decision.needs_review,
        flags=",".join(decision.flags),
        model_version=classification.model_version,
        complainant=decision.complainant,
        pseudonym=decision.pseudonym,
        subject=parsed.subject,
        received_at=raw.received_at,
        created_at=now,
        ack_due_at=desk.calendar.due(raw.received_at, desk.ack_limit),
        route=decision.route.primary,
    )
    cases.add_case(session, case)
    desk.record(session, incoming, Outcome.CREATED, case, None, now)
    cases.add_event(session, case, now, "received", f"uid {raw.uid}", actor="complainant")
    _record_classification(session, case, classification, decision, now)
    if decision.stale_since is not None:
        months = mailbox.policy.time_limit_months
        named = decision.stale_since.isoformat()
        detail = f"latest event named {named}, over {months} months before receipt"
        cases.add_event(session, case, now, "time_limit.flagged", detail)
    if decision.staged:
        lifecycle.on_opened(session, case, desk.procedure, now)
    else:
        how = mailbox.non_service_users
        detail = f"not in the service-user directory: {how}, no stage (#accept to investigate)"
        cases.add_event(session, case, now, "non_service_user", detail)
    language = classification.language
    _automatic_reply(session, desk, case, parsed, decision, language, now, replies_today)
    _staff_copies(session, desk, case, raw, parsed, classification, decision, now, letter)
    withheld = None if decision.reply.send else decision.reply.reason
    return Result(raw.uid, Outcome.CREATED, case.reference, withheld)


def _record_classification(
    session: Session,
    case: Case,
    classification: Classification,
    decision: IntakeDecision,
    now: datetime,
) -> None:
    """Why the case has its label: the model's reading, and the gate's when it overrode it."""
    reasons = " ".join(classification.reasons)
    label, confidence = classification.label, classification.confidence
    detail = f"{label} {confidence:.2f} {case.model_version} {reasons}".strip()
    cases.add_event(session, case, now, "classified", detail)
    if decision.screened.reasons:
        why = " ".join(decision.screened.reasons)
        detail = f"handled as {case.label}, not {label} on the model's word: {why}"
        cases.add_event(session, case, now, "screened", detail)


def _automatic_reply(
    session: Session,
    desk: Desk,
    case: Case,
    parsed: ParsedMessage,
    decision: IntakeDecision,
    language: str | None,
    now: datetime,
    replies_today: dict[str, int],
) -> None:
    """Queue the one automatic reply to the sender, or record why it was withheld."""
    if not decision.reply.send:
        case.no_ack_reason = decision.reply.reason
        cases.add_event(session, case, now, "reply.withheld", decision.reply.reason)
        return
    reply = compose.automatic_reply(
        _in_their_language(desk, decision.reply_template, language),
        letterhead=desk.mailbox.letterhead,
        templates=desk.templates,
        original=compose.Answering(
            parsed.message_id, parsed.references, parsed.subject, parsed.sender_name
        ),
        recipient=case.complainant,
        reference=case.reference,
        received_at=case.received_at,
        now=now,
        name=decision.pseudonym,
    )
    queue_mail(session, desk.mailbox, case, reply, now, once_key=f"ack:{case.reference}")
    replies_today[case.complainant] = replies_today.get(case.complainant, 0) + 1
    case.automatic_reply = reply.kind
    if reply.kind == "signpost":
        limit = desk.mailbox.referral_confirm_within
        case.referral_due_at = desk.procedure.due(case.received_at, limit)


def _in_their_language(desk: Desk, template: str, language: str | None) -> str:
    """`<template>.<language>` when the sender wrote in one of the mailbox's
    `reply_languages` other than English and that template exists, else `template`."""
    if language is None or language == "en" or language not in desk.mailbox.reply_languages:
        return template
    translated = f"{template}.{language}"
    return translated if desk.templates.exists(translated) else template


def _forwarded(
    session: Session, desk: Desk, case: Case, raw: RawMessage, parsed: ParsedMessage, now: datetime
) -> tuple[list[compose.FileAttachment], str]:
    """The attachments staff may receive (replies.forwarding: programs, macro documents and
    oversized files withheld, HTML sanitised) and the line that lists them; the withheld
    ones and why go in the case history too."""
    if desk.mailbox.pseudonymous:
        count = len(parsed.attachments)
        return [], f"{count} withheld (pseudonymous mailbox; see the case record)" if count else ""
    forwarding = forwardable(attachment_files(raw.raw), desk.mailbox.attachments)
    if forwarding.withheld:
        withheld = "; ".join(f"{w.filename}: {w.reason}" for w in forwarding.withheld)
        cases.add_event(session, case, now, "attachments.withheld", withheld)
    names = forwarding.summary() or ", ".join(a.filename for a in parsed.attachments)
    return list(forwarding.kept), names


def _staff_copies(
    session: Session,
    desk: Desk,
    case: Case,
    raw: RawMessage,
    parsed: ParsedMessage,
    classification: Classification,
    decision: IntakeDecision,
    now: datetime,
    letter: compose.FileAttachment | None = None,
) -> None:
    """The route's copy, and a copy to each route the case's aspects call for: the sender's
    words, label, deadlines and a reply address that brings answers back to the case."""
    route = decision.route
    if not route.recipients:
        return
    detail = f"{', '.join(route.recipients)} ({', '.join(route.reasons)})"
    cases.add_event(session, case, now, "routed", detail)
    mailbox = desk.mailbox
    attachments, names = _forwarded(session, desk, case, raw, parsed, now)
    local = mailbox.letterhead.local_time
    context = {
        "label": case.label,
        "needs_review": case.needs_review,
        "confidence": f"{classification.confidence:.2f}",
        "flags": case.flags.replace(",", ", "),
        "sender_line": desk.sender_line(case, parsed),
        "subject": desk.subject_for_staff(parsed),
        "received": local(case.received_at),
        "ack_due": local(case.ack_due_at),
        "stage_name": desk.procedure.stage_name(case.stage).capitalize(),
        "stage_due": local(case.stage_due_at) if case.stage_due_at else "",
        "reasons": ", ".join(route.reasons),
        "attachments": names,
        "show_staff": mailbox.show_staff_identity,
        "text": desk.words_for_staff(parsed),
    }
    if letter is not None:
        attachments.append(letter)
        context["attachments"] = ", ".join(
            x for x in (names, f"{letter.filename}: the acknowledgement to print and post") if x
        )
    for recipient in route.recipients:
        queue_staff_mail(
            session,
            desk,
            "staff_copy",
            case=case,
            recipient=recipient,
            context=context,
            now=now,
            attachments=attachments,
            once_key=f"staffcopy:{case.reference}:{recipient}",
        )

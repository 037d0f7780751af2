"""Intake: open a case for a new message, route it, and queue its one automatic reply
and the staff copies, all in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from classifiers.types import Classification
from daemon.casework.desk import Desk, Incoming, queue_mail
from daemon.casework.pseudonyms import find_username
from daemon.casework.routing import reply_kind, route_for
from daemon.mail.parse import ParsedMessage, attachment_files
from daemon.mail.values import Outcome, RawMessage, Result
from models import cases, lifecycle
from models.schema import Case
from replies import compose
from replies.policy import automatic_reply_decision


def reply_address(parsed: ParsedMessage, own: frozenset[str]) -> str:
    """Where replies to this sender go: Reply-To when it is someone else, else From."""
    if parsed.reply_to and parsed.reply_to not in own:
        return parsed.reply_to
    return parsed.sender


def pseudonym_of(desk: Desk, parsed: ParsedMessage) -> str | None:
    """The member's username: from the registry, else from the message itself."""
    registered = desk.registry.get(parsed.sender)
    return registered or find_username(parsed.text, desk.mailbox.pseudonym_pattern)


def open_case(
    session: Session,
    desk: Desk,
    incoming: Incoming,
    classification: Classification,
    now: datetime,
    replies_today: dict[str, int],
) -> Result:
    """Open a case for `incoming`, queue its automatic reply and staff copies.

    `replies_today` counts automatic replies per recipient in the last 24 hours (loaded
    once per batch); it is updated here when a reply is queued.
    """
    raw, parsed = incoming.raw, incoming.parsed
    mailbox = desk.mailbox
    received = raw.received_at
    pseudonym = pseudonym_of(desk, parsed) if mailbox.pseudonymous else None
    no_pseudonym = mailbox.pseudonymous and pseudonym is None
    flags = [*classification.flags, *(["no-pseudonym"] if no_pseudonym else [])]
    route = route_for(classification, mailbox.routes, no_pseudonym=no_pseudonym)
    case = Case(
        reference=cases.next_reference(session, mailbox.reference_prefix, received.year),
        mailbox=mailbox.name,
        status="new",
        label=classification.label,
        confidence=classification.confidence,
        needs_review=classification.needs_review or no_pseudonym,
        flags=",".join(flags),
        model_version=classification.model_version,
        complainant=reply_address(parsed, mailbox.own_addresses)[:320],
        pseudonym=pseudonym,
        subject=parsed.subject,
        received_at=received,
        created_at=now,
        ack_due_at=desk.calendar.due(received, desk.ack_limit),
        route=route.primary,
    )
    cases.add_case(session, case)
    desk.record(session, incoming, Outcome.CREATED, case, None, now)
    cases.add_event(session, case, now, "received", f"uid {raw.uid}", actor="complainant")
    cases.add_event(
        session,
        case,
        now,
        "classified",
        f"{classification.label} {classification.confidence:.2f} {classification.model_version} "
        f"{' '.join(classification.reasons)}".strip(),
    )
    lifecycle.on_opened(session, case, mailbox, desk.calendar, now)

    # The one automatic reply to the sender.
    decision = automatic_reply_decision(
        automatic=None,
        is_new_case=True,
        recipient=case.complainant,
        own_addresses=mailbox.own_addresses,
        replies_to_recipient_today=replies_today.get(case.complainant, 0),
        max_per_day=mailbox.max_replies_per_sender_per_day,
        age=now - received,
        max_age=timedelta(days=mailbox.acknowledge_max_age_days),
    )
    if decision.send:
        reply = compose.automatic_reply(
            reply_kind(classification),
            mailbox=mailbox,
            templates=desk.templates,
            original=parsed,
            recipient=case.complainant,
            reference=case.reference,
            received_at=received,
            now=now,
            name=pseudonym,
        )
        queue_mail(session, mailbox, case, reply, now, once_key=f"ack:{case.reference}")
        replies_today[case.complainant] = replies_today.get(case.complainant, 0) + 1
    else:
        case.no_ack_reason = decision.reason
        cases.add_event(session, case, now, "reply.withheld", decision.reason)

    # Staff copies: the route, and the safeguarding lead as well when flagged.
    if route.recipients:
        cases.add_event(
            session,
            case,
            now,
            "routed",
            f"{', '.join(route.recipients)} ({', '.join(route.reasons)})",
        )
    for recipient in route.recipients:
        queue_mail(
            session,
            mailbox,
            case,
            staff_copy(desk, case, raw, parsed, classification, recipient, route.reasons, now),
            now,
            once_key=f"staffcopy:{case.reference}:{recipient}",
        )
    return Result(
        raw.uid, Outcome.CREATED, case.reference, None if decision.send else decision.reason
    )


def staff_copy(
    desk: Desk,
    case: Case,
    raw: RawMessage,
    parsed: ParsedMessage,
    classification: Classification,
    recipient: str,
    reasons: tuple[str, ...],
    now: datetime,
) -> compose.OutgoingMail:
    """What the route receives: the sender's words, label, deadlines and a reply address."""
    mailbox = desk.mailbox
    files = [] if mailbox.pseudonymous else attachment_files(raw.raw)
    names = ", ".join(a.filename for a in parsed.attachments)
    if mailbox.pseudonymous and names:
        names = f"{len(parsed.attachments)} withheld (pseudonymous mailbox; see the case record)"
    stage_name = mailbox.policy.stages[case.stage - 1].name if case.stage else ""
    return desk.staff_mail(
        "staff_copy",
        case=case,
        recipient=recipient,
        context={
            "label": case.label,
            "needs_review": case.needs_review,
            "confidence": f"{classification.confidence:.2f}",
            "flags": case.flags.replace(",", ", "),
            "sender_line": desk.sender_line(case, parsed),
            "subject": desk.subject_for_staff(parsed),
            "received": compose.local_time(mailbox, case.received_at),
            "ack_due": compose.local_time(mailbox, case.ack_due_at),
            "stage_name": stage_name.capitalize(),
            "stage_due": compose.local_time(mailbox, case.stage_due_at)
            if case.stage_due_at
            else "",
            "reasons": ", ".join(reasons),
            "attachments": names,
            "show_staff": mailbox.show_staff_identity,
            "text": desk.words_for_staff(parsed),
        },
        now=now,
        attachments=[compose.FileAttachment(n, t, d) for n, t, d in files],
    )

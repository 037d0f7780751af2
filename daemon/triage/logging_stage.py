"""Opening a complaint staff logged from another channel (daemon.triage.other_channels):
the staff member's message becomes the complainant's, received when they say, and the case
opens as any other, with its channel recorded and, without an email address, an
acknowledgement letter (PDF) for staff to post."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from daemon.casework.correspondence import staff_text
from daemon.casework.desk import Desk, Incoming, queue_mail
from daemon.mail.values import Outcome, Result
from daemon.triage import intake
from daemon.triage.opening import open_case
from daemon.triage.other_channels import HELP, Logged, read_logged
from daemon.triage.prepare import UNCLASSIFIED, Prepared
from models import cases
from replies import compose
from replies.letters import letter_pdf


def open_logged(
    session: Session,
    desk: Desk,
    uidvalidity: int,
    item: Prepared,
    now: datetime,
    replies_today: dict[str, int],
) -> Result:
    """Open the complaint a staff member's message to the new-case address logs, or answer
    them with what is wrong with it."""
    parsed = item.parsed
    assert parsed is not None
    logged = read_logged(staff_text(parsed), desk.calendar.zone)
    if isinstance(logged, list):
        return _refuse(session, desk, uidvalidity, item, logged, now)
    as_made = replace(
        parsed,
        sender=logged.address,
        sender_name=logged.name,
        reply_to=None,
        text=logged.text,
        subject=_subject(parsed.subject, logged),
    )
    raw = replace(item.raw, received_at=logged.received or item.raw.received_at)
    incoming = Incoming(uidvalidity, raw, item.dedupe_key, as_made)
    classification = item.classification or UNCLASSIFIED
    decision = intake.decide(
        as_made,
        classification,
        desk.mailbox,
        settings=desk.screening,
        registry=desk.registry,
        replies_today=replies_today,
        age=now - item.raw.received_at,  # logged just now: a late log still gets an answer
        received=raw.received_at,
        service_users=desk.service_users,
        latest_event=item.latest_event,
    )
    letter = None
    if not logged.address:
        flags = tuple(f for f in decision.flags if f != "anonymous")
        decision = replace(decision, flags=(*flags, "by_post"))
        letter = _letter(desk, logged, now)
    result = open_case(
        session, desk, incoming, classification, decision, now, replies_today, letter
    )
    case = cases.case_by_reference(session, str(result.reference))
    if case is not None:
        case.channel = logged.channel
        detail = f"{logged.channel} complaint from {logged.name or logged.address}"
        cases.add_event(session, case, now, "logged", detail, actor=parsed.sender)
    return result


def _subject(subject: str, logged: Logged) -> str:
    plain = subject.strip() or "Complaint"
    return plain if logged.channel in plain.lower() else f"{plain} ({logged.channel})"


def _letter(desk: Desk, logged: Logged, now: datetime) -> compose.FileAttachment:
    """The acknowledgement, as a letter to post."""
    subject, body = desk.templates.render(
        "acknowledgement",
        {
            "reference": "given on the enclosed case record",
            "organisation": desk.mailbox.organisation,
            "mailbox_address": desk.mailbox.address,
            "signpost": desk.mailbox.signpost,
            "name": logged.name or "Sir or Madam",
            "original_subject": "your complaint",
            "received": desk.mailbox.letterhead.local_time(logged.received or now),
        },
    )
    pdf = letter_pdf(desk.mailbox.letterhead, logged.name, logged.postal, subject, body, now)
    return compose.FileAttachment("acknowledgement-letter.pdf", "application/pdf", pdf)


def _refuse(
    session: Session,
    desk: Desk,
    uidvalidity: int,
    item: Prepared,
    problems: list[str],
    now: datetime,
) -> Result:
    parsed = item.parsed
    assert parsed is not None
    incoming = Incoming(uidvalidity, item.raw, item.dedupe_key, parsed)
    desk.record(session, incoming, Outcome.STAFF, None, "; ".join(problems), now)
    error = desk.letter(
        "logging_error",
        case=None,
        recipient=parsed.sender,
        context={"errors": problems, "help": HELP},
        now=now,
        in_reply_to=parsed.message_id,
    )
    queue_mail(session, desk.mailbox, None, error, now)
    return Result(item.raw.uid, Outcome.STAFF, None, f"rejected: {'; '.join(problems)}")

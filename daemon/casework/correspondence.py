"""Correspondence on an existing case: complainants' follow-ups, staff replies and notes.

A staff reply (a staff sender writing to the case's signed reply address) is stripped of
quoted history and signature, its commands applied, and what remains relayed to the
complainant from the mailbox address. Staff mail that reached the case any other way is
recorded as an internal note and never relayed. Everyone else's mail is recorded on the
case and forwarded to whoever handles it; when the safety net fires on it (a disclosure
can come in the third message as well as the first), the case is flagged and the
safeguarding lead gets the follow-up too, as on every follow-up of a flagged case.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from classifiers.types import Classification
from daemon.casework import representatives
from daemon.casework.commands import HELP, StaffReply, apply_commands, parse_staff_reply
from daemon.casework.desk import Desk, Incoming, queue_mail, queue_staff_mail
from daemon.casework.escalation import asks_for_escalation
from daemon.casework.pseudonyms import without_signature
from daemon.casework.routing import Role, raises_concern, sender_role
from daemon.casework.staff_actions import Acting
from daemon.mail.parse import ParsedMessage
from daemon.mail.values import Outcome, Result
from models import cases, lifecycle, procedure
from models.schema import Case

# Our own staff copies say "----- X wrote -----" above the sender's words: cut there too,
# in case a mail client quotes in a way the reply parser does not recognise.
# Read line by line: a pattern free to start anywhere in a run of ">" lines rescans it.
_OUR_QUOTE = re.compile(
    r"^[> \t]*(-----\s.*\swrote\s-----|Case [A-Z]{2,6}-\d{4}-\d{5}[:(])", re.MULTILINE
)


def staff_text(parsed: ParsedMessage) -> str:
    """Only what the staff member wrote: no quoted history, no staff copy, no signature."""
    text = without_signature(parsed.text)
    match = _OUR_QUOTE.search(text)
    if match:
        lines = text[: match.start()].split("\n")
        while lines and not lines[-1].strip("> \t\r"):
            lines.pop()  # the empty quoted lines above our quote are part of it
        text = "\n".join(lines)
    return text.strip()


def continue_case(
    session: Session,
    desk: Desk,
    incoming: Incoming,
    automatic: str | None,
    case: Case,
    via_case_address: bool,
    now: datetime,
    classification: Classification | None = None,
) -> Result:
    """Record `incoming` on `case` and do what its sender's role calls for.

    `classification` is the preparer's reading of the message (its safety net matters
    here, not its label); None when there is none."""
    parsed, uid = incoming.parsed, incoming.raw.uid
    if automatic is not None:
        desk.record(session, incoming, Outcome.AUTOMATIC, case, automatic, now)
        cases.add_event(session, case, now, "automatic.received", automatic, actor="system")
        return Result(uid, Outcome.AUTOMATIC, case.reference, automatic)
    role = sender_role(
        sender=parsed.sender,
        is_staff=desk.mailbox.is_staff(parsed.sender),
        complainant=case.complainant,
        via_case_address=via_case_address,
    )
    if role == Role.STAFF_REPLY:
        return _staff_reply(session, desk, incoming, case, now)
    if role == Role.STAFF_MESSAGE:
        reason = "staff mail not sent to the case address: kept as a note"
        desk.record(session, incoming, Outcome.STAFF, case, reason, now)
        cases.add_event(session, case, now, "note", staff_text(parsed), actor=parsed.sender)
        why = "it did not come through the case's reply address, so it was kept as a note."
        _tell_staff(session, desk, case, parsed, why, [], now)
        return Result(uid, Outcome.STAFF, case.reference, "note")
    return _follow_up(session, desk, incoming, case, role, now, classification)


def _flag_safeguarding(
    session: Session, case: Case, classification: Classification, now: datetime, uid: int
) -> None:
    case.flags = ",".join([*case.flag_names, "safeguarding"])
    reasons = " ".join(classification.reasons) or f"label:{classification.label}"
    cases.add_event(session, case, now, "safeguarding.flagged", f"uid {uid}: {reasons}")


def _follow_up(
    session: Session,
    desk: Desk,
    incoming: Incoming,
    case: Case,
    role: Role,
    now: datetime,
    classification: Classification | None,
) -> Result:
    mailbox, parsed = desk.mailbox, incoming.parsed
    from_complainant = role == Role.COMPLAINANT
    reason = None if from_complainant else "not from the complainant"
    desk.record(session, incoming, Outcome.FOLLOWUP, case, reason, now)
    actor = "complainant" if from_complainant else "other"
    cases.add_event(session, case, now, "followup.received", f"uid {incoming.raw.uid}", actor=actor)
    note = "" if from_complainant else "NOTE: this is not from the case's complainant."
    overdue = (
        case.stage > 0
        and case.responded_at is None
        and case.stage_due_at is not None
        and now > case.stage_due_at
        and not lifecycle.is_closed(case)
    )
    answered_or_late = case.status == "responded" or overdue
    if from_complainant and answered_or_late and asks_for_escalation(parsed.text):
        problem = lifecycle.escalate(
            session, case, now, desk.procedure, actor="complainant", by_complainant=True
        )
        due = mailbox.letterhead.local_time(case.stage_due_at)
        note = problem or f"The complainant asks for the next stage: now {case.stage}, due {due}."
    flagged = "safeguarding" in case.flag_names
    if raises_concern(classification) and not flagged:
        _flag_safeguarding(session, case, classification, now, incoming.raw.uid)
        flagged = True
        alert = "SAFEGUARDING: the safety net flagged this message; the case is now flagged."
        note = f"{alert}\n{note}".strip()
    handler = case.assigned_to or case.route
    lead = mailbox.routes.safeguarding if flagged else None
    if from_complainant:
        sender_line = desk.sender_line(case, parsed)
    else:
        sender_line = "someone else" if mailbox.pseudonymous else parsed.sender
    context = {
        "label": case.label,
        "status": case.status,
        "subject": desk.subject_for_staff(parsed),
        "sender_line": sender_line,
        "note": "\n".join(x for x in (note, representatives.staff_note(case)) if x),
        "received": mailbox.letterhead.local_time(incoming.raw.received_at),
        "text": desk.words_for_staff(parsed),
    }
    for recipient in dict.fromkeys(r for r in (handler, lead) if r):
        queue_staff_mail(
            session, desk, "followup_copy", case=case, recipient=recipient, context=context, now=now
        )
    return Result(incoming.raw.uid, Outcome.FOLLOWUP, case.reference, None)


def _staff_reply(
    session: Session, desk: Desk, incoming: Incoming, case: Case, now: datetime
) -> Result:
    mailbox, parsed, uid = desk.mailbox, incoming.parsed, incoming.raw.uid
    reply = parse_staff_reply(staff_text(parsed))
    staff = parsed.sender
    errors = [*reply.errors, *_same_handler(session, desk, case, reply, staff, now)]
    desk.record(session, incoming, Outcome.STAFF, case, "; ".join(errors) or None, now)
    if errors:
        problems = "; ".join(errors)
        cases.add_event(session, case, now, "staff.reply_rejected", problems, actor=staff)
        error = desk.letter(
            "staff_error",
            case=case,
            recipient=staff,
            context={"errors": errors, "help": HELP},
            now=now,
            in_reply_to=parsed.message_id,
        )
        queue_mail(session, mailbox, case, error, now)
        return Result(uid, Outcome.STAFF, case.reference, f"rejected: {problems}")
    refused = apply_commands(Acting(session, desk, case, staff, now), reply)
    done = [f"#{c.name} {c.argument}".strip() for c in reply.commands]
    if reply.relay:
        held = _relay(session, desk, case, reply.text, parsed, now, rights=not reply.interim)
        if not reply.interim:
            lifecycle.on_staff_response(session, case, now, desk.procedure, staff)
        if refused or held:
            why = _relay_problem(case, held, bool(refused))
            _tell_staff(session, desk, case, parsed, why, done, now, refused, relayed=True)
        return Result(uid, Outcome.STAFF, case.reference, "relayed")
    if reply.is_note and reply.text:
        cases.add_event(session, case, now, "note", reply.text, actor=staff)
        why = "it is an internal note (#note)."
    elif done:
        why = "it held commands and no text to send."
    else:
        cases.add_event(session, case, now, "staff.reply_empty", "", actor=staff)
        why = "it held no text of yours above the quoted mail."
    _tell_staff(session, desk, case, parsed, why, done, now, refused)
    return Result(uid, Outcome.STAFF, case.reference, "note" if reply.is_note else "commands")


def _relay_problem(case: Case, held: bool, refused: bool) -> str:
    problems = ["not every command could be done"] if refused else []
    if held:
        problems.append(
            f"the representative ({representatives.describe(case)}) was sent a request for "
            "their authority instead (#representative authority=received once it comes)"
        )
    return "but " + "; and ".join(problems) + "."


def _same_handler(
    session: Session, desk: Desk, case: Case, reply: StaffReply, staff: str, now: datetime
) -> list[str]:
    """A response at stage N from whoever answered stage N-1: held (an error) or, by default,
    relayed with a `stage.same_handler` event, as the mailbox's procedure says."""
    if not (reply.relay and not reply.interim and case.stage >= 2 and case.last_responder == staff):
        return []
    said = f"{staff} answered stage {case.stage - 1}; the procedure asks someone else to answer"
    if desk.procedure.same_handler == "hold":
        return [f"{said} stage {case.stage} ({desk.procedure.stage_name(case.stage)})"]
    cases.add_event(session, case, now, "stage.same_handler", said, actor=staff)
    return []


def _tell_staff(
    session: Session,
    desk: Desk,
    case: Case,
    parsed: ParsedMessage,
    why: str,
    done: list[str],
    now: datetime,
    refused: list[str] | None = None,
    relayed: bool = False,
) -> None:
    """Answer a member of staff whose message was not relayed (or not wholly done), saying why."""
    receipt = desk.letter(
        "staff_receipt",
        case=case,
        recipient=parsed.sender,
        context={"why": why, "done": done, "refused": refused or [], "relayed": relayed},
        now=now,
        in_reply_to=parsed.message_id,
    )
    queue_mail(session, desk.mailbox, case, receipt, now)


def _relay(
    session: Session,
    desk: Desk,
    case: Case,
    text: str,
    parsed: ParsedMessage,
    now: datetime,
    rights: bool,
) -> bool:
    """Send the staff member's words to the complainant, and to their representative, if
    any, threaded to the complainant's last message; a stage's response (`rights`) ends with
    what the complainant may do next. A representative without recorded authority gets a
    letter saying what is needed instead (daemon.casework.representatives). Returns
    whether anyone was sent a holding letter instead of the words."""
    mailbox = desk.mailbox
    last = cases.last_from(session, case, case.complainant)
    staff_name = parsed.sender_name or parsed.sender
    context = {
        "subject": re_subject(case.subject),
        "text": text,
        "signature": staff_name if mailbox.show_staff_identity else "Complaints team",
        "rights": procedure.rights(desk.procedure, case.stage) if rights and case.stage else "",
        "name": case.representative_name or "Sir or Madam",
    }
    withheld = False
    targets = (desk.complainant_address(case), case.representative)
    for recipient in dict.fromkeys(t for t in targets if t):
        held = representatives.withholds(case, recipient)
        relay = desk.letter(
            "representative_pending" if held else "relay",
            case=case,
            recipient=recipient,
            context=context,
            now=now,
            in_reply_to=last,
            references=(last,) if last else (),
            auto_submitted="no",
        )
        queue_mail(session, mailbox, case, relay, now)
        withheld = withheld or held
    cases.add_event(session, case, now, "relay", text, actor=parsed.sender)
    if withheld:
        detail = f"{representatives.describe(case)}: sent what is needed, not the reply"
        cases.add_event(session, case, now, "relay.withheld", detail, actor=parsed.sender)
    return withheld


def re_subject(subject: str) -> str:
    """The original subject without Re:/Fwd: prefixes or our reference tag."""
    subject = re.sub(r"\s*\[[A-Z]{2,6}-\d{4}-\d{5}\]\s*", " ", subject or "")
    subject = re.sub(r"^\s*((re|fwd?|aw|sv|tr)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return subject.strip() or "your message"

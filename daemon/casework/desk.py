"""What a mailbox's triage keeps at hand, and the shared steps of recording and sending.

A Desk is built once per mailbox: its configuration, templates, working calendar, the
secret that signs case reply addresses and the pseudonym registry. The intake and
correspondence stages both record messages and queue mail through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from typing_extensions import Unpack

from classifiers.config import ClassifierConfig
from daemon.casework.deadlines import acknowledgement_limit, calendar_for, procedure_for
from daemon.casework.directory import load_service_users
from daemon.casework.pseudonyms import load_registry, scrub
from daemon.casework.workdays import TimeLimit, WorkingCalendar
from daemon.config import MailboxConfig
from daemon.mail.parse import ParsedMessage
from daemon.mail.values import Outcome, RawMessage
from models import bulk, outbox
from models.cases import add_event, note_thread
from models.lifecycle import Procedure
from models.schema import Case, Message
from replies.addresses import case_address
from replies.compose import FileAttachment, Headers, OutgoingMail, from_template
from replies.templates import Templates


@dataclass(frozen=True)
class Incoming:
    """A parsed message on its way into the database, with its IMAP identity."""

    uidvalidity: int
    raw: RawMessage
    dedupe_key: str
    parsed: ParsedMessage


@dataclass(frozen=True)
class Desk:
    mailbox: MailboxConfig
    templates: Templates
    calendar: WorkingCalendar
    ack_limit: TimeLimit
    secret: bytes
    registry: dict[str, str]
    procedure: Procedure
    screening: ClassifierConfig  # what the model may decide alone (daemon.triage.gate)
    service_users: frozenset[str] | None = None  # None: no directory, everyone is served

    @classmethod
    def for_mailbox(
        cls,
        mailbox: MailboxConfig,
        templates: Templates,
        secret: bytes,
        calendar: WorkingCalendar | None = None,
        screening: ClassifierConfig | None = None,
    ) -> Desk:
        """Raises RegistryError or DirectoryError (ConfigErrors) when the pseudonym registry
        or the service-user directory cannot be read."""
        registry = load_registry(mailbox.pseudonym_registry) if mailbox.pseudonym_registry else {}
        served = load_service_users(mailbox.service_users) if mailbox.service_users else None
        calendar = calendar or calendar_for(mailbox)
        ack_limit = acknowledgement_limit(mailbox)
        procedure = procedure_for(mailbox, calendar)
        return cls(
            mailbox,
            templates,
            calendar,
            ack_limit,
            secret,
            registry,
            procedure,
            screening or ClassifierConfig(),
            served,
        )

    def case_address(self, reference: str) -> str:
        return case_address(self.mailbox.address, reference, self.secret)

    def complainant_address(self, case: Case) -> str:
        """Where mail to the complainant goes: the registered address of a pseudonym."""
        if case.pseudonym:
            for address, username in self.registry.items():
                if username == case.pseudonym:
                    return address
        return case.complainant

    def sender_line(self, case: Case, parsed: ParsedMessage) -> str:
        """How staff see who wrote: never the address in a pseudonymous mailbox."""
        if self.mailbox.pseudonymous:
            return f"member {case.pseudonym}" if case.pseudonym else "a member (username not found)"
        return f"{parsed.sender_name} <{parsed.sender}>" if parsed.sender_name else parsed.sender

    def words_for_staff(self, parsed: ParsedMessage) -> str:
        """The sender's words as staff may see them."""
        if self.mailbox.pseudonymous:
            return scrub(parsed.text, address=parsed.sender, display_name=parsed.sender_name)
        return parsed.text

    def record(
        self,
        session: Session,
        incoming: Incoming,
        outcome: Outcome,
        case: Case | None,
        reason: str | None,
        now: datetime,
    ) -> None:
        """Store the message (raw bytes included) with what became of it."""
        record_message(
            session,
            self.mailbox,
            incoming.uidvalidity,
            incoming.raw,
            incoming.dedupe_key,
            incoming.parsed,
            outcome,
            case,
            reason,
            now,
        )

    def letter(
        self,
        template: str,
        *,
        case: Case | None,
        recipient: str,
        context: dict[str, Any],
        now: datetime,
        kind: str | None = None,
        **headers: Unpack[Headers],
    ) -> OutgoingMail:
        """Mail from the mailbox rendered from `template`: the one way Candour writes mail
        (`kind` defaults to the template's name). Raises TemplateProblem."""
        kind = kind or template
        return from_template(
            template,
            kind=kind,
            letterhead=self.mailbox.letterhead,
            templates=self.templates,
            recipient=recipient,
            reference=case.reference if case is not None else kind,
            context=context,
            now=now,
            **headers,
        )

    def to_staff(self, case: Case | None, attachments: Sequence[FileAttachment] = ()) -> Headers:
        """How mail to staff presents itself: from "Candour for ...", automatic, and
        answered to `case`'s signed address (replies come back to it), or to the mailbox
        for mail about several cases (digests, notices)."""
        return {
            "reply_to": self.case_address(case.reference) if case is not None else None,
            "auto_submitted": "auto-generated",
            "display_name": f"Candour for {self.mailbox.organisation}",
            "attachments": attachments,
        }

    def subject_for_staff(self, parsed: ParsedMessage) -> str:
        if self.mailbox.pseudonymous:
            return scrub(parsed.subject, address=parsed.sender, display_name=parsed.sender_name)
        return parsed.subject or "(no subject)"


def record_message(
    session: Session,
    mailbox: MailboxConfig,
    uidvalidity: int,
    raw: RawMessage,
    dedupe_key: str,
    parsed: ParsedMessage | None,
    outcome: Outcome,
    case: Case | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Store an incoming message, raw bytes included, with what became of it."""
    message_id = parsed.message_id[:400] if parsed and parsed.message_id else None
    values = {
        "mailbox": mailbox.name,
        "uidvalidity": uidvalidity,
        "uid": raw.uid,
        "dedupe_key": dedupe_key,
        "message_id": message_id,
        # Hashed by the preparer when it parsed the message (off the daemon's threads).
        "content_sha256": (parsed and parsed.content_sha256) or raw.sha256,
        "case_id": None,
        "outcome": outcome.value,
        "reason": reason,
        "sender": parsed.sender[:320] if parsed else "",
        "subject": parsed.subject if parsed else "",
        "received_at": raw.received_at,
        "recorded_at": now,
        "raw": raw.raw,
    }
    bulk.add(session, Message, values, case)
    note_thread(session, message_id, case)


def queue_mail(
    session: Session,
    mailbox: MailboxConfig,
    case: Case | None,
    mail: OutgoingMail,
    now: datetime,
    once_key: str | None = None,
) -> None:
    """Put `mail` in the outbox for `case` and note it in the case history (`case` None:
    mail about no one case, which a reply can never thread into)."""
    outbox.queue(session, mailbox=mailbox.name, case=case, mail=mail, now=now, once_key=once_key)
    if case is not None:
        staff_bound = mail.kind in {
            "staff_copy",
            "followup_copy",
            "staff_error",
            "staff_receipt",
            "relabel_copy",
        }
        detail = mail.recipient if staff_bound else ""
        add_event(session, case, now, f"{mail.kind}.queued", detail)


def queue_staff_mail(
    session: Session,
    desk: Desk,
    template: str,
    *,
    case: Case | None,
    recipient: str,
    context: dict[str, Any],
    now: datetime,
    kind: str | None = None,
    attachments: Sequence[FileAttachment] = (),
    once_key: str | None = None,
) -> None:
    """Render a mail to staff about `case`, or several (None), and queue it."""
    mail = desk.letter(
        template,
        case=case,
        recipient=recipient,
        context=context,
        now=now,
        kind=kind,
        **desk.to_staff(case, attachments),
    )
    queue_mail(session, desk.mailbox, case, mail, now, once_key=once_key)

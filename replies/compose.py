"""Composing outgoing mail: headers that thread, identify us, and stop loops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from daemon.config import MailboxConfig
from daemon.parse import ParsedMessage
from replies.templates import Templates


@dataclass(frozen=True)
class OutgoingMail:
    """Final bytes of one message to send, with what the outbox records about it."""

    kind: str
    message_id: str  # without angle brackets, as stored and as parse_message returns them
    envelope_from: str
    recipient: str
    subject: str
    raw: bytes


def new_message_id(mailbox: MailboxConfig, tag: str) -> str:
    return make_msgid(idstring=tag.lower(), domain=mailbox.domain).strip("<>")


def _from_header(mailbox: MailboxConfig) -> Address:
    local, domain = mailbox.address.split("@", 1)
    return Address(display_name=mailbox.organisation, username=local, domain=domain)


def build(
    *,
    kind: str,
    mailbox: MailboxConfig,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
    message_id: str,
    in_reply_to: ParsedMessage | None = None,
    automatic: bool = True,
) -> OutgoingMail:
    """Assemble a text/plain message from the mailbox to `recipient`."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _from_header(mailbox)
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to is not None and in_reply_to.message_id:
        msg["In-Reply-To"] = f"<{in_reply_to.message_id}>"
        chain = [*in_reply_to.references, in_reply_to.message_id]
        msg["References"] = " ".join(f"<{m}>" for m in chain[-20:])
    if automatic:
        # RFC 3834: marks this as an automatic reply so well-behaved responders stay quiet;
        # X-Auto-Response-Suppress asks Exchange/Outlook not to send out-of-office replies.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = mailbox.address
    msg.set_content(body, charset="utf-8")
    return OutgoingMail(
        kind=kind,
        message_id=message_id,
        envelope_from=mailbox.address,
        recipient=recipient,
        subject=subject,
        raw=msg.as_bytes(),
    )


def acknowledgement(
    *,
    mailbox: MailboxConfig,
    templates: Templates,
    original: ParsedMessage,
    recipient: str,
    reference: str,
    received_at: datetime,
    now: datetime,
) -> OutgoingMail:
    """The acknowledgement of a new case, rendered from the `acknowledgement` template."""
    zone = ZoneInfo(mailbox.timezone)
    subject, body = templates.render(
        "acknowledgement",
        {
            "reference": reference,
            "organisation": mailbox.organisation,
            "name": original.sender_name or "Sir or Madam",
            "original_subject": original.subject or "(no subject)",
            "received": received_at.astimezone(zone).strftime("%A %d %B %Y at %H:%M"),
        },
    )
    return build(
        kind="acknowledgement",
        mailbox=mailbox,
        recipient=recipient,
        subject=subject,
        body=body,
        now=now,
        message_id=new_message_id(mailbox, reference),
        in_reply_to=original,
    )

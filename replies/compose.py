"""Composing outgoing mail: headers that thread, identify us, and stop loops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

from replies.letterhead import Letterhead
from replies.templates import Templates

AutoSubmitted = Literal["auto-replied", "auto-generated", "no"]


class _Wire(Compat32):
    """compat32 with CRLF, folding at 78, and a fast path for headers that need neither.

    compat32 runs every header through email.header.Header to fold and encode it (~40 us
    each, most of the cost of a message). A value of printable ASCII that fits on one
    line comes out of that unchanged, so it is written as it is (tests/test_compose.py).
    """

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()  # no CR, LF or other characters that split lines
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


_WIRE = _Wire(linesep="\r\n", max_line_length=78)


def _body_charset(body: str) -> Charset:
    """7bit ASCII when it is plain ASCII with short lines, else UTF-8 quoted-printable."""
    if body.isascii() and all(len(line) < 990 for line in body.splitlines()):
        return Charset("us-ascii")
    charset = Charset("utf-8")
    charset.body_encoding = QP
    return charset


def _header(value: str) -> str:
    value = " ".join(value.split())
    return value if value.isascii() else Header(value, "utf-8").encode()


@dataclass(frozen=True)
class OutgoingMail:
    """Final bytes of one message to send, with what the outbox records about it."""

    kind: str
    message_id: str  # without angle brackets, as stored and as parse_message returns them
    envelope_from: str
    recipient: str
    subject: str
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class FileAttachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


def new_message_id(letterhead: Letterhead, tag: str) -> str:
    return make_msgid(idstring=tag.lower(), domain=letterhead.domain).strip("<>")


def _mime(body: str, attachments: Sequence[FileAttachment]) -> Message:
    """The text part, inside multipart/mixed with the attachments when there are any.

    The classic (compat32) MIME classes: several times faster than EmailMessage's header
    registry, which matters when a backlog of thousands is acknowledged at once.
    """
    text = MIMENonMultipart("text", "plain")
    text.set_payload(body, _body_charset(body))
    if not attachments:
        return text
    msg = MIMEMultipart("mixed")
    msg.attach(text)
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        part = MIMEBase(maintype or "application", subtype or "octet-stream")
        part.set_payload(attachment.data)
        encoders.encode_base64(part)
        part.add_header(
            "Content-Disposition", "attachment", filename=("utf-8", "", attachment.filename)
        )
        msg.attach(part)
    return msg


class Headers(TypedDict, total=False):
    """How a message threads and presents itself, beyond From, To, Subject and Date."""

    in_reply_to: str | None
    references: Sequence[str]
    reply_to: str | None
    auto_submitted: AutoSubmitted  # "no" for a person's words (a relayed staff reply)
    display_name: str | None  # default: the organisation
    attachments: Sequence[FileAttachment]


def build(
    *,
    kind: str,
    letterhead: Letterhead,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
    message_id: str,
    **headers: Unpack[Headers],
) -> OutgoingMail:
    """Assemble a message from the mailbox address to `recipient`."""
    msg = _mime(body, headers.get("attachments", ()))
    display_name = headers.get("display_name") or letterhead.organisation
    msg["From"] = formataddr((display_name, letterhead.address), charset="utf-8")
    msg["To"] = recipient
    if reply_to := headers.get("reply_to"):
        msg["Reply-To"] = reply_to
    msg["Subject"] = _header(subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to := headers.get("in_reply_to"):
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references := headers.get("references", ()):
        msg["References"] = " ".join(f"<{m}>" for m in list(references)[-20:])
    auto_submitted = headers.get("auto_submitted", "auto-replied")
    if auto_submitted != "no":
        # RFC 3834: marks this as automatic so well-behaved responders stay quiet;
        # X-Auto-Response-Suppress asks Exchange/Outlook not to send out-of-office replies.
        msg["Auto-Submitted"] = auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = letterhead.address
    raw = msg.as_bytes(policy=_WIRE)
    return OutgoingMail(kind, message_id, letterhead.address, recipient, subject, raw)


def from_template(
    template: str,
    *,
    kind: str,
    letterhead: Letterhead,
    templates: Templates,
    recipient: str,
    reference: str,
    context: dict[str, Any],
    now: datetime,
    **headers: Unpack[Headers],
) -> OutgoingMail:
    """Render `template` and build the message. Raises TemplateProblem."""
    base = {
        "reference": reference,
        "organisation": letterhead.organisation,
        "mailbox_address": letterhead.address,
        "signpost": letterhead.signpost,
    }
    subject, body = templates.render(template, {**base, **context})
    return build(
        kind=kind,
        letterhead=letterhead,
        recipient=recipient,
        subject=subject,
        body=body,
        now=now,
        message_id=new_message_id(letterhead, reference),
        **headers,
    )


@dataclass(frozen=True)
class Answering:
    """The message an automatic reply answers: its threading headers, subject and sender."""

    message_id: str | None
    references: tuple[str, ...]
    subject: str
    sender_name: str

    @property
    def in_reply_to(self) -> str | None:
        return self.message_id

    @property
    def thread(self) -> tuple[str, ...]:
        """References for the answer: the original's, then the original itself."""
        return (*self.references, self.message_id) if self.message_id else ()


def automatic_reply(
    template: str,
    *,
    letterhead: Letterhead,
    templates: Templates,
    original: Answering,
    recipient: str,
    reference: str,
    received_at: datetime,
    now: datetime,
    name: str | None = None,
) -> OutgoingMail:
    """The one automatic reply to a new sender: acknowledgement, thanks or signposting."""
    kind = "signpost" if template.startswith("signpost_") else template
    return from_template(
        template,
        kind=kind,
        letterhead=letterhead,
        templates=templates,
        recipient=recipient,
        reference=reference,
        context={
            "name": name or original.sender_name or "Sir or Madam",
            "original_subject": original.subject or "(no subject)",
            "received": letterhead.local_time(received_at),
        },
        now=now,
        in_reply_to=original.in_reply_to,
        references=original.thread,
    )

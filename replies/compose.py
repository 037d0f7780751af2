"""Composing outgoing mail: headers that thread, identify us, and stop loops."""

from __future__ import annotations

import re
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

from replies.addresses import is_plain_address
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


def _one_line(value: str) -> str:
    """`value` as one line of printable text: every control character (CR, LF, NUL...)
    and run of blanks becomes a single space."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def _header(value: str) -> str:
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


# A Message-ID we write back: printable ASCII, no blanks or angle brackets (RFC 5322 3.6.4).
_MSGID = re.compile(r"[!-;=?-~]{1,250}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _message_ids(ids: Sequence[str | None]) -> list[str]:
    """The ids among `ids` that can be written in a header as they are; others are left out."""
    return [m for m in ids if m and _MSGID.fullmatch(m)]


def _address(value: str, what: str) -> str:
    """`value` when it is one plain address. Raises ValueError: Candour never writes a
    header from anything else (a name, a list, text that came decoded from a stranger)."""
    if not is_plain_address(value):
        raise ValueError(f"{what} is not one plain address; refusing to write the message")
    return value


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
        ctype = attachment.content_type.lower()
        ctype = ctype if _CONTENT_TYPE.fullmatch(ctype) else "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        part = MIMEBase(maintype, subtype)
        part.set_payload(attachment.data)
        encoders.encode_base64(part)
        filename = _one_line(attachment.filename) or "attachment"
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
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
    """Assemble a message from the mailbox address to `recipient`. Every header written
    from outside values is made safe here: addresses must be plain (else ValueError), the
    subject and display name become one line, message ids that are not ids are dropped."""
    msg = _mime(body, headers.get("attachments", ()))
    display_name = _one_line(headers.get("display_name") or letterhead.organisation)
    msg["From"] = formataddr((display_name, letterhead.address), charset="utf-8")
    msg["To"] = _address(recipient, "the recipient")
    if reply_to := headers.get("reply_to"):
        msg["Reply-To"] = _address(reply_to, "Reply-To")
    msg["Subject"] = _header(subject)
    msg["Date"] = format_datetime(now)
    [own_id] = _message_ids([message_id]) or [""]
    if not own_id:
        raise ValueError("the message's own Message-ID is not a valid id")
    msg["Message-ID"] = f"<{own_id}>"
    if in_reply_to := _message_ids([headers.get("in_reply_to")]):
        msg["In-Reply-To"] = f"<{in_reply_to[0]}>"
    if references := _message_ids(list(headers.get("references", ()))[-20:]):
        msg["References"] = " ".join(f"<{m}>" for m in references)
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

"""Parse stage: raw RFC 5322 bytes -> a frozen ParsedMessage, tolerating damaged mail.

mail-parser does the decoding (charsets, encoded words, MIME). Anything it cannot make
sense of is retried with the standard library's lenient compat32 parser; only when both
fail is a ParseError raised, and the caller quarantines the message.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.utils
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from html import unescape
from typing import Any

import mailparser

from replies.addresses import is_plain_address

# mail-parser warns about every MIME part it does not decode itself; that is not news.
logging.getLogger("mailparser").setLevel(logging.ERROR)

# A Message-ID as Candour keeps and writes it back (In-Reply-To, References): printable
# ASCII without blanks or angle brackets, of a sane length. Anything else is not an id.
HEADER_LIMIT = 16 * 1024  # bytes of one header field that are read (cap_headers)
_MSGID = re.compile(r"<([!-;=?-~]{1,250})>")
_BARE_MSGID = re.compile(r"[!-;=?-~]{1,250}")
# An RFC 2047 encoded word, and a run of them (decoded together: the blanks between go).
_ENCODED_WORDS = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*")
_PLACEHOLDER = re.compile(r"ENCODEDWORD(\d+)X")
# No "<" inside a tag: an unclosed "<a <a <a ..." is then scanned once, not once a "<".
_TAGS = re.compile(r"<[^<>]+>")
_BLOCK_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)
_BLANKS = re.compile(r"\n{3,}")


class ParseError(Exception):
    """The bytes cannot be read as an email at all; the message is quarantined."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    """What later stages need from one email, decoded and normalised."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: str  # lower-cased address from From ("" when there is none)
    sender_name: str
    reply_to: str | None
    recipients: tuple[str, ...]  # To and Cc addresses, lower-cased
    subject: str
    date: datetime | None
    text: str
    headers: dict[str, tuple[str, ...]] = field(repr=False)  # lower-cased names
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    content_sha256: str = ""

    def header(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    def first_header(self, name: str) -> str | None:
        values = self.header(name)
        return values[0] if values else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this message says it answers, nearest first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)


def message_ids(value: str | None) -> tuple[str, ...]:
    """The Message-IDs in a header value, without angle brackets, in order."""
    if not value:
        return ()
    found = _MSGID.findall(value)
    bare = value.strip().strip("<>")
    if not found and _BARE_MSGID.fullmatch(bare):
        found = [bare]  # a bare id without brackets (broken clients)
    # An id is never an encoded word: one we cannot decode could hide a line break that a
    # reader decoding our In-Reply-To would see as a header (found by the fuzz suite).
    return tuple(m for m in found if "=?" not in m)


def _decode(value: Any) -> str:
    """A header value as one line of text: encoded words decoded, ISO-2022-JP read, blanks
    collapsed and control characters gone (a decoded CR LF can never start a header)."""
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:
        with contextlib.suppress(ValueError, LookupError, UnicodeError, HeaderParseError):
            text = str(make_header(decode_header(text)))
    text = _iso_2022(text)
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _addresses(values: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """(display name, address) of each plain address in the raw header `values`.

    Addresses are read from the header as it came, with every encoded word set aside:
    only the display name is decoded, so nothing an encoded word holds ("Victim\r\nTo:
    victim2@evil.example") can become an address or a header.
    """
    words: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        words.append(match.group(0))
        return f"ENCODEDWORD{len(words) - 1}X"

    def restore(match: re.Match[str]) -> str:
        number = int(match.group(1))  # a sender may write the placeholder's shape himself
        return words[number] if number < len(words) else match.group(0)

    raw = [_ENCODED_WORDS.sub(set_aside, " ".join(str(v).split())) for v in values]
    found = []
    for name, addr in email.utils.getaddresses(raw):
        address = addr.strip().lower()
        if is_plain_address(address) and not _PLACEHOLDER.search(address):
            found.append((_decode(_PLACEHOLDER.sub(restore, name)), address))
    return tuple(found)


def _headers(msg: email.message.Message) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.items():
        out.setdefault(name.lower(), []).append(_decode(value))
    return {k: tuple(v) for k, v in out.items()}


def _date(msg: email.message.Message) -> datetime | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _without_blocks(html: str) -> str:
    """`html` without <script> and <style> elements, in one pass.

    An element never closed is left as it is (its text is then read like any other).
    """
    lowered = html.lower()
    kept: list[str] = []
    position = 0
    unclosed: set[str] = set()
    for opening in _BLOCK_OPEN.finditer(html):
        kind = opening.group(1).lower()
        if opening.start() < position or kind in unclosed:
            continue
        closing = lowered.find(f"</{kind}", opening.end())
        if closing < 0:
            unclosed.add(kind)  # no later one can close either: never search again
            continue
        end = html.find(">", closing)
        kept.append(html[position : opening.start()])
        kept.append(" ")
        position = len(html) if end < 0 else end + 1
    kept.append(html[position:])
    return "".join(kept)


def html_to_text(html: str) -> str:
    """An HTML body as a reader sees it: paragraphs, lists, tables and links laid out by
    inscriptis (on lxml). Where lxml loses words (an unclosed <script> swallowing the rest,
    nesting deeper than it reads), the plain tag strip is used instead: no word is lost."""
    plain = _tags_stripped(html)
    try:
        laid_out = _laid_out(html)
    except Exception:  # noqa: BLE001 - any markup lxml refuses is read the plain way
        return plain
    return laid_out if len(laid_out.split()) >= 0.9 * len(plain.split()) else plain


def _laid_out(html: str) -> str:
    from inscriptis import get_text  # lxml: imported where mail is parsed, not at start-up
    from inscriptis.model.config import ParserConfig

    text = get_text(html, ParserConfig(display_links=True))
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _tags_stripped(html: str) -> str:
    """A plain reading: <script> and <style> dropped, tags removed, entities decoded."""
    text = _without_blocks(html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", text)
    text = _TAGS.sub(" ", text)
    text = unescape(text)
    text = "\n".join(" ".join(line.split()) for line in text.splitlines())
    return _BLANKS.sub("\n\n", text).strip()


def _stdlib_text(msg: email.message.Message) -> tuple[str, tuple[Attachment, ...]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        ctype = part.get_content_type()
        if filename or part.get_content_disposition() == "attachment":
            attachments.append(Attachment(_decode(filename or "unnamed"), ctype, len(data)))
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, errors="replace")
        except LookupError:
            text = data.decode("utf-8", errors="replace")
        (html if ctype == "text/html" else plain if ctype.startswith("text/") else []).append(text)
    body = "\n".join(plain) if plain else html_to_text("\n".join(html))
    return body, tuple(attachments)


def _build(
    msg: email.message.Message,
    raw: bytes,
    text: str,
    subject: str,
    attachments: tuple[Attachment, ...],
    defects: tuple[str, ...],
) -> ParsedMessage:
    headers = _headers(msg)
    senders = _addresses(msg.get_all("from", []))
    reply_to = _addresses(msg.get_all("reply-to", []))
    recipients = _addresses([*msg.get_all("to", []), *msg.get_all("cc", [])])
    mids = message_ids(headers.get("message-id", (None,))[0])
    return ParsedMessage(
        message_id=mids[0] if mids else None,
        in_reply_to=message_ids(" ".join(headers.get("in-reply-to", ()))),
        references=message_ids(" ".join(headers.get("references", ()))),
        sender=senders[0][1] if senders else "",
        sender_name=senders[0][0] if senders else "",
        reply_to=reply_to[0][1] if reply_to else None,
        recipients=tuple(addr for _, addr in recipients),
        subject=subject,
        date=_date(msg),
        text=_iso_2022(text).replace("\r\n", "\n").strip(),
        headers=headers,
        attachments=attachments,
        defects=defects,
        content_sha256=hashlib.sha256(raw).hexdigest(),
    )


# A run of ISO-2022-JP (7-bit, escape-coded Japanese) that the declared charset did not
# decode: the charset parameter on a folded line a parser missed, a raw 8-bit header, or
# designations plain ISO-2022-JP lacks (half-width katakana ESC ( I, JIS X 0212 ESC $ ( D).
_ISO_2022 = re.compile(r"\x1b[$(.][\x00-\x7f]*")
# The broadest first; a run none of them reads whole is read by the last with replacements.
_ISO_2022_CODECS = ("iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext")


def _iso_2022(text: str) -> str:
    return _ISO_2022.sub(_iso_2022_run, text) if "\x1b" in text else text


def _iso_2022_run(match: re.Match[str]) -> str:
    run = match.group(0).encode("ascii")
    for codec in _ISO_2022_CODECS:
        with contextlib.suppress(UnicodeDecodeError):
            return run.decode(codec)
    return run.decode(_ISO_2022_CODECS[-1], "replace")


def _tnef(msg: email.message.Message) -> tuple[str, tuple[Attachment, ...]]:
    """The body and attachments inside an Outlook winmail.dat (TNEF), read with tnefparse."""
    from tnefparse import TNEF

    texts: list[str] = []
    found: list[Attachment] = []
    for part in msg.walk():
        name = (part.get_filename() or "").lower()
        if part.get_content_type() != "application/ms-tnef" and name != "winmail.dat":
            continue
        payload = part.get_payload(decode=True)
        try:
            tnef = TNEF(payload if isinstance(payload, bytes) else b"")
        except Exception:  # noqa: BLE001, S112 - an unreadable winmail.dat stays an attachment
            continue
        body = tnef.body or ""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        if not text.strip() and getattr(tnef, "htmlbody", None):
            text = html_to_text(str(tnef.htmlbody))
        texts.append(text)
        for attachment in tnef.attachments:
            data = attachment.data or b""
            filename = attachment.long_filename() or attachment.name or "unnamed"
            found.append(Attachment(_decode(filename), "application/octet-stream", len(data)))
    return "\n".join(t for t in texts if t.strip()), tuple(found)


def cap_headers(raw: bytes, limit: int = HEADER_LIMIT) -> bytes:
    """`raw` with every header field cut to `limit` bytes (whole folded lines dropped past
    it, one over-long line cut). The stdlib's decode_header takes time growing with the
    square of a header's encoded words (a 400 KB Subject: 2.7 s), and mail-parser decodes
    every header: no honest header is this long. Mail without such a header is returned as
    it is, after one search for the end of the headers."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    head = raw if end < 0 else raw[:end]
    if len(head) <= limit:
        return raw
    out: list[bytes] = []
    field = 0  # bytes of the current field so far
    for line in head.splitlines(keepends=True):
        field = field + len(line) if line[:1] in (b" ", b"\t") else len(line)
        if field <= limit:
            out.append(line)
        elif field - len(line) < limit and line[:1] not in (b" ", b"\t"):
            out.append(line[:limit].rstrip(b"\r\n") + b"\r\n")  # one line over the limit
    return b"".join(out) + (b"" if end < 0 else raw[end:])


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode `raw` into a ParsedMessage. Raises ParseError when it is not mail at all."""
    if not raw.strip():
        raise ParseError("empty message")
    # Some Windows tools write a UTF-8 byte-order mark before the headers, hiding them all.
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    kept, raw = raw, cap_headers(raw)
    try:
        parsed = mailparser.parse_from_bytes(raw)
        msg = parsed.message
        text = "\n".join(parsed.text_plain) if parsed.text_plain else ""
        if not text.strip() and parsed.text_html:
            text = html_to_text("\n".join(parsed.text_html))
        attachments = tuple(
            Attachment(
                _decode(a.get("filename") or "unnamed"),
                str(a.get("mail_content_type") or "application/octet-stream"),
                len(a.get("payload") or ""),
            )
            for a in parsed.attachments
        )
        defects = tuple(sorted({str(d) for d in parsed.defects_categories}))
        if any(a.filename.lower() == "winmail.dat" for a in attachments):
            inside, unpacked = _tnef(msg)
            if inside.strip() and " ".join(inside.split())[:200] not in " ".join(text.split()):
                text = "\n".join(t for t in (text, inside) if t.strip())
            attachments = (*attachments, *unpacked)
        return _build(msg, kept, text, _decode(parsed.subject), attachments, defects)
    except Exception as first:  # noqa: BLE001 - any mail-parser failure falls back to stdlib
        try:
            msg = email.message_from_bytes(raw)
            text, attachments = _stdlib_text(msg)
            defects = (f"mail-parser: {type(first).__name__}",)
            return _build(msg, kept, text, _decode(msg.get("Subject")), attachments, defects)
        except Exception as second:
            raise ParseError(f"{type(first).__name__}: {first}; then {second}") from second


def attachment_files(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) of each attachment, for staff copies; never raises.
    Archives are not opened: replies.forwarding decides what staff may receive."""
    try:
        msg = email.message_from_bytes(raw.removeprefix(b"\xef\xbb\xbf"))
        out: list[tuple[str, str, bytes]] = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            if not filename and part.get_content_disposition() != "attachment":
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            out.append((_decode(filename or "attachment"), part.get_content_type(), data))
        return out
    except Exception:  # noqa: BLE001 - attachments are a convenience; the raw message is kept
        return []

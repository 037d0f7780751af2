"""Hypothesis strategies that damage real messages the ways real mailboxes deliver them.

A `Mutant` is a seed message (committed seeds, plus the shared corpus when present) after
one to three mutations, each a pure function of the message and what hypothesis drew:
headers (duplicated, missing, over-long, folded badly, NULs, 8-bit, encoded words hiding
CR/LF, bogus dates, odd senders), MIME (boundaries missing, mismatched, unterminated,
nested up to 1000 deep), charsets (unknown, lying, ISO-2022-JP, UTF-16 without a BOM),
transfer encodings (broken base64 and quoted-printable) and lengths (huge lines, huge
headers). `scale` bounds the bytes any one mutation adds, so the short run stays quick.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "tests" / "mail" / "fuzz" / "seeds"
CORPUS = Path(os.environ.get("CANDOUR_CORPUS", REPO.parent / "shared" / "corpus"))
INJECTED = "Bcc: victim@attacker.example"


@dataclass(frozen=True)
class Message:
    """A message cut where mutations work: header lines (folds kept), the body, line ends."""

    head: tuple[bytes, ...]
    body: bytes
    eol: bytes = b"\r\n"

    @classmethod
    def read(cls, raw: bytes) -> Message:
        eol = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
        head, _, body = raw.partition(eol + eol)
        return cls(tuple(head.split(eol)), body, eol)

    def joined(self) -> bytes:
        return self.eol.join(self.head) + self.eol + self.eol + self.body

    def index(self, name: str) -> int | None:
        """The line where header `name` starts (its first occurrence), or None."""
        prefix = name.lower().encode() + b":"
        for i, line in enumerate(self.head):
            if line.lower().startswith(prefix):
                return i
        return None

    def without(self, name: str) -> Message:
        """Every `name` header removed, with its continuation lines."""
        kept: list[bytes] = []
        dropping = False
        prefix = name.lower().encode() + b":"
        for line in self.head:
            if line[:1] in (b" ", b"\t") and dropping:
                continue
            dropping = line.lower().startswith(prefix)
            if not dropping:
                kept.append(line)
        return replace(self, head=tuple(kept))

    def setting(self, name: str, value: bytes) -> Message:
        """`name` set to `value` (raw bytes, may hold anything), in the first one's place."""
        at = self.index(name)
        rest = self.without(name).head
        at = len(rest) if at is None else min(at, len(rest))
        line = name.encode() + b": " + value
        return replace(self, head=(*rest[:at], line, *rest[at:]))

    def value(self, name: str) -> bytes:
        at = self.index(name)
        return b"" if at is None else self.head[at].split(b":", 1)[1].strip()


@dataclass(frozen=True)
class Mutant:
    """A damaged message and how it was made (for reports and reproducers)."""

    seed: str
    steps: tuple[str, ...]
    raw: bytes = field(repr=False)


Mutation = Callable[[Message], Message]
HEADERS: tuple[str, ...] = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To")
HEADERS += ("In-Reply-To", "References", "Content-Type", "Content-Transfer-Encoding")
HEADERS += ("MIME-Version",)
TEXT = "I want to complain — the appointment was cancelled twice. 予約が二回取り消されました. "


@cache
def seeds() -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of every seed: the committed ones, then the corpus's, in name order."""
    found = [(f"seeds/{p.name}", p.read_bytes()) for p in sorted(SEEDS.glob("*.eml"))]
    public = CORPUS / "public"
    if public.is_dir():
        for path in sorted(p for p in public.rglob("*") if p.is_file()):
            if path.suffix.lower() not in {".md", ".tsv"} and path.name != "LICENSE":
                found.append((str(path.relative_to(CORPUS)), path.read_bytes()))
    return tuple(found)


# Header mutations ---------------------------------------------------------------------


def duplicated(name: str, other: bytes) -> Mutation:
    def mutate(m: Message) -> Message:
        return replace(m, head=(*m.head, name.encode() + b": " + other))

    return mutate


def missing(name: str) -> Mutation:
    return lambda m: m.without(name)


def over_long(name: str, unit: bytes, size: int) -> Mutation:
    return lambda m: m.setting(name, (unit * (size // max(1, len(unit)) + 1))[:size])


def badly_folded(name: str, how: int) -> Mutation:
    """A fold that is not one: a continuation without white space, white space only,
    a bare CR or LF inside the value, the first header line a continuation."""

    def mutate(m: Message) -> Message:
        value = m.value(name) or b"value"
        half = len(value) // 2
        broken = (
            value[:half] + m.eol + value[half:],  # continuation with no leading space
            value + m.eol + b"   " + m.eol + b"\t",  # white-space-only continuation lines
            value[:half] + b"\r" + value[half:],  # bare CR
            value[:half] + b"\n" + value[half:],  # bare LF in a CRLF message
        )
        if how == len(broken):
            return replace(m, head=(b"  folded: first", *m.head))
        return m.setting(name, broken[how])

    return mutate


def with_bytes(name: str, junk: bytes, where: float) -> Mutation:
    """NULs, control characters or 8-bit bytes put inside a header's value."""

    def mutate(m: Message) -> Message:
        value = m.value(name) or b"x@example.net"
        at = int(len(value) * where)
        return m.setting(name, value[:at] + junk + value[at:])

    return mutate


def encoded_word(text: str, charset: str, b_encoding: bool) -> bytes:
    """An RFC 2047 encoded word for `text`: the way a line break hides from a header parser."""
    data = text.encode(charset if charset != "x-unknown" else "utf-8", "replace")
    if b_encoding:
        return f"=?{charset}?b?{base64.b64encode(data).decode()}?=".encode()
    quoted = "".join(chr(b) if chr(b).isalnum() else f"={b:02X}" for b in data)
    return f"=?{charset}?q?{quoted}?=".encode()


def injected(name: str, shape: int, charset: str, b_encoding: bool) -> Mutation:
    """A header whose decoded value carries CR/LF and a header after it."""
    payloads = (f"Hello\r\n{INJECTED}", f"x\n{INJECTED}\n", f"x\r{INJECTED}", "a\r\n\r\nbody")
    word = encoded_word(payloads[shape % len(payloads)], charset, b_encoding)
    values = {
        "From": word + b" <jane@example.net>",
        "Reply-To": word + b" <jane@example.net>",
        "To": word + b" <complaints@example.org>",
    }
    return lambda m: m.setting(name, values.get(name, word))


BOGUS_DATES = (
    b"",
    b"yesterday",
    b"Mon, 32 Foo 99999 99:99:99 +9999",
    b"Tue, 1 Jan 0000 00:00:00 +0000",
    b"Fri, 31 Dec 9999 23:59:60 +1400",
    b"Thu, 01 Jan 1970 00:00:00 -2400",
    b"1234567890",
    b"Sat, 29 Feb 2025 12:00:00 GMT",
    b"\x00\x00",
    b"Mon, 2 Mar 2026 10:00:00 +0000 (GMT) Mon, 2 Mar 2026",
)


def bogus_date(which: int) -> Mutation:
    return lambda m: m.setting("Date", BOGUS_DATES[which])


ODD_SENDERS = (
    b"<>",
    b"a@b@c.example",
    b'"jane\\"\r\n Bcc: x@y.example"@example.net',
    b"=?utf-8?q?jane=40example=2Enet?= <j@example.net>",
    b"jane@example.net, john@example.net",
    b"undisclosed-recipients:;",
    b"jane@example.net (Jane\r\n Citizen)",
    b"\xc3\xbcser@ex\xc3\xa4mple.net",
    b'"Jane Citizen"@example.net',
    b"Jane <jane@example.net",
    b"<jane@example.net> <john@example.net>",
    b"jane@[127.0.0.1]",
    b"complaints@example.org",
    b"Jane <jane@example.net>\x00<evil@example.net>",
    b"=?utf-8?b?amFuZUBleGFtcGxlLm5ldA0KQmNjOiB2aWN0aW1AYXR0YWNrZXIuZXhhbXBsZQ==?=",
)


def odd_sender(name: str, which: int) -> Mutation:
    return lambda m: m.setting(name, ODD_SENDERS[which])


# MIME mutations ------------------------------------------------------------------------


def _boundary(m: Message) -> bytes | None:
    match = re.search(rb'boundary="?([^";\r\n]+)"?', m.value("Content-Type"), re.IGNORECASE)
    return match.group(1) if match else None


def boundary_removed(m: Message) -> Message:
    content_type = re.sub(rb';?\s*boundary="?[^";]*"?', b"", m.value("Content-Type"), flags=re.I)
    return m.setting("Content-Type", content_type or b"multipart/mixed")


def boundary_mismatched(other: bytes) -> Mutation:
    def mutate(m: Message) -> Message:
        found = _boundary(m)
        if found is None:
            return m.setting("Content-Type", b'multipart/mixed; boundary="' + other + b'"')
        return m.setting("Content-Type", m.value("Content-Type").replace(found, other))

    return mutate


def unterminated(m: Message) -> Message:
    found = _boundary(m)
    if found is None:
        return replace(m, body=m.body + m.eol + b"--never-closed" + m.eol)
    return replace(m, body=m.body.replace(b"--" + found + b"--", b""))


def nested(depth: int) -> Mutation:
    """The body wrapped in `depth` levels of multipart/mixed, each with its own boundary."""

    def mutate(m: Message) -> Message:
        eol, inner_type = m.eol, m.value("Content-Type") or b"text/plain"
        opening = b"".join(
            b"--b%d%sContent-Type: multipart/mixed; boundary=b%d%s%s" % (i, eol, i + 1, eol, eol)
            for i in range(depth)
        )
        inner = b"--b%d%sContent-Type: %s%s%s%s%s" % (
            depth, eol, inner_type, eol, eol, m.body, eol,
        )  # fmt: skip
        closing = b"".join(b"--b%d--%s" % (i, eol) for i in reversed(range(depth + 1)))
        head = m.without("Content-Transfer-Encoding")
        return replace(
            head.setting("Content-Type", b"multipart/mixed; boundary=b0"),
            body=opening + inner + closing,
        )

    return mutate


# Charsets and transfer encodings ---------------------------------------------------------

CHARSETS: tuple[tuple[str, str, bool], ...] = (
    # (declared charset, how the bytes are really encoded, BOM stripped)
    ("x-unknown-charset", "utf-8", False),
    ("utf-8", "cp1252", False),  # lying: Windows bytes called UTF-8
    ("us-ascii", "utf-8", False),  # lying: 8-bit called ASCII
    ("iso-8859-1", "utf-8", False),
    ("iso-2022-jp", "iso2022_jp", False),
    ("utf-8", "iso2022_jp", False),  # ISO-2022-JP undeclared
    ("utf-16", "utf-16-le", True),  # UTF-16 with no BOM
    ("utf-16", "utf-16-be", True),
    ("utf-16le", "utf-16-le", False),
    ("utf-7", "utf-7", False),
    ("", "utf-8", False),  # charset= with nothing
)


def recharset(which: int, repeat: int) -> Mutation:
    declared, real, _ = CHARSETS[which]

    def mutate(m: Message) -> Message:
        data = (TEXT * repeat).encode(real, "replace")
        content_type = b'text/plain; charset="' + declared.encode() + b'"'
        head = m.without("Content-Transfer-Encoding").setting("Content-Type", content_type)
        return replace(head, body=data)

    return mutate


BROKEN_BASE64 = (
    b"SGVsbG8gd29ybGQ",  # no padding
    b"SGVsbG8===",  # too much
    b"!!!not base64 at all!!!",
    b"SGVs\x00bG8g",
    b"=",
    b"SGVsbG8gd29ybGQ=\r\n====\r\nSGVsbG8=",
)
BROKEN_QP = (b"=ZZ=", b"soft break at the end =", b"=0", b"=00=0A=0D", b"=\r\n=\r\n=", b"=e2=80")


def broken_transfer(base64_kind: bool, which: int, repeat: int) -> Mutation:
    def mutate(m: Message) -> Message:
        pieces = BROKEN_BASE64 if base64_kind else BROKEN_QP
        body = (pieces[which % len(pieces)] + m.eol) * repeat
        encoding = b"base64" if base64_kind else b"quoted-printable"
        head = m.setting("Content-Type", b"text/plain; charset=utf-8")
        return replace(head.setting("Content-Transfer-Encoding", encoding), body=body)

    return mutate


# Lengths --------------------------------------------------------------------------------


def huge_line(unit: bytes, size: int) -> Mutation:
    return lambda m: replace(m, body=m.body + (unit * (size // len(unit) + 1))[:size])


def many_headers(count: int) -> Mutation:
    def mutate(m: Message) -> Message:
        extra = tuple(b"X-Fuzz-%d: %s" % (i, b"v" * (i % 50)) for i in range(count))
        return replace(m, head=(*m.head, *extra))

    return mutate


def spliced(at: float, junk: bytes, cut: bool) -> Mutation:
    """Bytes dropped in anywhere, or the message cut short there."""

    def mutate(m: Message) -> Message:
        raw = m.joined()
        index = int(len(raw) * at)
        return Message.read(raw[:index] if cut else raw[:index] + junk + raw[index:])

    return mutate

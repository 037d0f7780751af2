"""A seeded generator of realistic complaints-inbox mail, as raw RFC 5322 bytes.

The same seed gives the same bytes on every run and every machine, and a shorter corpus
is a prefix of a longer one, so figures for 1,000 and 10,000 messages are comparable.
The mix: complaints, feedback, out-of-scope requests, follow-ups threaded to earlier
messages by In-Reply-To/References, out-of-office replies and bounces; some messages
carry an HTML alternative or a small attachment. Messages are built as text (not with
email.message, which is ~20x slower) so that 100,000 of them take seconds.
"""

from __future__ import annotations

import base64
import quopri
import random
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from bench import corpus_text as text
from bench.outlook import DISCLAIMERS, outlook_html

MAILBOX_ADDRESS = "complaints@example.org"
BASE_DATE = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
KINDS = ("complaint", "feedback", "out_of_scope", "followup", "out_of_office", "bounce")
WEIGHTS = (45, 12, 13, 15, 9, 6)


@dataclass(frozen=True)
class BenchMail:
    """One generated message; `acknowledgement_expected` is what triage should decide."""

    kind: str
    message_id: str
    sender: str
    raw: bytes

    @property
    def acknowledgement_expected(self) -> bool:
        return self.kind in {"complaint", "feedback", "out_of_scope"}


@dataclass(frozen=True)
class _Thread:
    message_id: str
    name: str
    from_header: str
    address: str
    subject: str
    quoted: str


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _header_text(value: str) -> str:
    """An RFC 2047 encoded word when `value` is not plain ASCII."""
    if value.isascii():
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode()).decode() + "?="


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _qp(body: str) -> str:
    encoded = quopri.encodestring(body.replace("\r\n", "\n").encode()).decode()
    return encoded.replace("\n", "\r\n")


class Corpus:
    """Yields BenchMail values forever; `take(n)` for a finite backlog."""

    def __init__(
        self, seed: int = 20260105, to: str = MAILBOX_ADDRESS, realistic: bool = False
    ) -> None:
        self.rng = random.Random(seed)
        # Every message written as Outlook sends it (bench/outlook.py): multipart/alternative
        # with Word's HTML part, a signature and a disclaimer, 3-15 KB.
        self.realistic = realistic
        self.to = to
        self.count = 0
        self.when = BASE_DATE
        self._threads: deque[_Thread] = deque(maxlen=500)
        self._senders: deque[tuple[str, str]] = deque(maxlen=2000)

    def take(self, n: int) -> Iterator[BenchMail]:
        for _ in range(n):
            yield self.next()

    # -- pieces -------------------------------------------------------------------------

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            service=rng.choice(text.SERVICES),
            place=rng.choice(text.PLACES),
            staff=rng.choice(text.STAFF),
            day=rng.choice(text.DAYS),
            weeks=rng.randint(2, 9),
            ref=f"CMP-2025-{rng.randint(1, 99999):05d}",
        )

    def _sentences(self, pool: tuple[str, ...], low: int, high: int) -> list[str]:
        picked = self.rng.sample(pool, min(len(pool), self.rng.randint(low, high)))
        return [self._fill(s) for s in picked]

    def _paragraphs(self, sentences: list[str]) -> str:
        out, rng = [], self.rng
        while sentences:
            take = rng.randint(2, 4)
            out.append(" ".join(sentences[:take]))
            sentences = sentences[take:]
        return "\n\n".join(out)

    def _person(self) -> tuple[str, str, str]:
        """(display name, address, From header) of a new or, sometimes, a returning sender."""
        rng = self.rng
        if self._senders and rng.random() < 0.04:
            name, address = rng.choice(self._senders)
        else:
            name = f"{rng.choice(text.FIRST_NAMES)} {rng.choice(text.LAST_NAMES)}"
            first, last = (_ascii(part) for part in name.split(" ", 1))
            address = f"{first}.{last}.{self.count}@{rng.choice(text.DOMAINS)}"
            self._senders.append((name, address))
        return name, address, f'"{_header_text(name)}" <{address}>'

    def _signature(self, name: str) -> str:
        rng = self.rng
        return rng.choice(text.SIGNATURES).format(
            name=name, street=rng.choice(text.STREETS), num=f"{rng.randint(0, 999):03d}"
        )

    def _headers(self, from_header: str, address: str, subject: str, mid: str) -> list[str]:
        rng = self.rng
        domain = address.rsplit("@", 1)[1]
        date = format_datetime(self.when)
        signature = base64.b64encode(rng.randbytes(256)).decode()
        folded = "\r\n\t ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        hop = rng.randint(2, 250)
        return [
            f"Return-Path: <{address}>",
            f"Received: from mail-{hop}.{domain} (mail-{hop}.{domain} [198.51.100.{hop}])\r\n"
            f"\tby mx.example.org (Postfix) with ESMTPS id {rng.randbytes(6).hex().upper()}\r\n"
            f"\tfor <{self.to}>; {date}",
            f"Received: from [10.{hop}.{rng.randint(0, 255)}.{rng.randint(1, 254)}]\r\n"
            f"\tby mail-{hop}.{domain} with ESMTPSA id {rng.randbytes(8).hex()}; {date}",
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s1;\r\n"
            f"\th=from:to:subject:date:message-id:mime-version;\r\n"
            f"\tbh={base64.b64encode(rng.randbytes(32)).decode()};\r\n\tb={folded}",
            f"From: {from_header}",
            f"To: Complaints <{self.to}>",
            f"Subject: {_header_text(subject)}",
            f"Date: {date}",
            f"Message-ID: <{mid}>",
            "MIME-Version: 1.0",
            f"X-Mailer: {rng.choice(text.MAILERS)}",
        ]

    def _body_parts(self, body: str, boundary: str) -> tuple[str, str]:
        """(Content-Type header and encoding lines, MIME body) with optional HTML/attachment."""
        rng = self.rng
        plain = (
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _qp(body)
        )
        if self.realistic:
            disclaimer = rng.choice(DISCLAIMERS)
            plain = plain + _qp(f"\n{disclaimer}\n")
        if self.realistic or rng.random() < 0.3:
            paragraphs = "".join(f"<p>{p}</p>\r\n" for p in body.split("\n\n"))
            html = (
                '<html><head><meta charset="utf-8"><style>p{font-family:Calibri,sans-serif;'
                "font-size:11pt}</style></head><body>\r\n" + paragraphs + "</body></html>"
            )
            if self.realistic:
                html = outlook_html(body, disclaimer, rng)
            alt = f"alt-{boundary}"
            plain = (
                f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
                f"--{alt}\r\n{plain}\r\n--{alt}\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                f"{_qp(html)}\r\n--{alt}--"
            )
        if rng.random() >= 0.08:
            head, _, rest = plain.partition("\r\n\r\n")
            return head, rest
        kind, ext = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg")))
        name = f"{rng.choice(('letter', 'photo', 'receipt', 'scan', 'IMG_'))}{rng.randint(1, 999)}"
        attachment = _b64_lines(rng.randbytes(rng.randint(1000, 3000)))
        mixed = (
            f"--{boundary}\r\n{plain}\r\n--{boundary}\r\n"
            f'Content-Type: {kind}; name="{name}.{ext}"\r\n'
            f'Content-Disposition: attachment; filename="{name}.{ext}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--{boundary}--"
        )
        return f'Content-Type: multipart/mixed; boundary="{boundary}"', mixed

    # -- one message per kind -----------------------------------------------------------

    def _person_mail(self, kind: str) -> tuple[str, str, str, str, str]:
        """(From header, address, Message-ID, subject, body) of a message a person wrote."""
        rng = self.rng
        name, address, from_header = self._person()
        if kind == "complaint":
            subject = self._fill(rng.choice(text.COMPLAINT_SUBJECTS))
            sentences = [
                self._fill(rng.choice(text.COMPLAINT_OPENINGS)),
                *self._sentences(text.COMPLAINT_INCIDENTS, 5, 16),
                *self._sentences(text.COMPLAINT_IMPACTS, 1, 4),
                *self._sentences(text.COMPLAINT_REQUESTS, 1, 3),
            ]
        elif kind == "feedback":
            subject = self._fill(rng.choice(text.FEEDBACK_SUBJECTS))
            sentences = self._sentences(text.FEEDBACK_SENTENCES, 4, 12)
        else:
            subjects, pool = text.OUT_OF_SCOPE[rng.choice(tuple(text.OUT_OF_SCOPE))]
            subject = rng.choice(subjects)
            sentences = [
                *self._sentences(pool, 2, 5),
                *self._sentences(text.FEEDBACK_SENTENCES, 0, 3),
            ]
        body = f"Dear Sir or Madam,\n\n{self._paragraphs(sentences)}\n\n{self._signature(name)}\n"
        mid = self._message_id(address)
        self._threads.append(_Thread(mid, name, from_header, address, subject, body[:900]))
        return from_header, address, mid, subject, body

    def _message_id(self, address: str) -> str:
        return f"{self.rng.randbytes(8).hex()}.{self.count}@{address.rsplit('@', 1)[1]}"

    def next(self) -> BenchMail:
        """The next message of the stream."""
        rng = self.rng
        self.count += 1
        self.when += timedelta(seconds=rng.randint(5, 120))
        kind = rng.choices(KINDS, WEIGHTS)[0]
        if kind == "followup" and not self._threads:
            kind = "complaint"
        boundary = f"----=_Part_{rng.randbytes(8).hex()}"
        extra: list[str] = []
        if kind == "followup":
            thread = rng.choice(self._threads)
            address, from_header = thread.address, thread.from_header
            mid = self._message_id(address)
            subject = f"Re: {thread.subject}"
            quoted = "\n".join(f"> {line}" for line in thread.quoted.splitlines())
            body = (
                f"{self._paragraphs(self._sentences(text.FOLLOWUP_SENTENCES, 2, 6))}\n\n"
                f"{self._signature(thread.name)}\n\n"
                f"On {format_datetime(self.when - timedelta(days=2))}, {thread.name} wrote:\n"
                f"{quoted}\n"
            )
            extra = [f"In-Reply-To: <{thread.message_id}>", f"References: <{thread.message_id}>"]
        elif kind in {"complaint", "feedback", "out_of_scope"}:
            from_header, address, mid, subject, body = self._person_mail(kind)
        elif kind == "out_of_office":
            _, address, from_header = self._person()
            mid = self._message_id(address)
            template_subject, body = rng.choice(text.OUT_OF_OFFICE)
            subject = template_subject.format(subject="Your complaint has been received")
            body = self._fill(body) + "\n"
            if rng.random() < 0.8:
                extra.append("Auto-Submitted: auto-replied")
            if rng.random() < 0.5:
                extra.append("X-Auto-Response-Suppress: All")
        else:
            return self._bounce()
        head = self._headers(from_header, address, subject, mid) + extra
        content_type, mime_body = self._body_parts(body, boundary)
        raw = "\r\n".join([*head, content_type, "", mime_body, ""])
        return BenchMail(kind, mid, address, raw.encode())

    def _bounce(self) -> BenchMail:
        rng = self.rng
        domain = rng.choice(text.DOMAINS)
        rcpt = f"{_ascii(rng.choice(text.FIRST_NAMES))}.{self.count}@{domain}"
        address = f"MAILER-DAEMON@mx.{domain}"
        mid = self._message_id(address)
        boundary = f"report-{rng.randbytes(6).hex()}"
        explanation = rng.choice(text.BOUNCE_TEXTS).format(domain=domain, rcpt=rcpt)
        head = self._headers(f"Mail Delivery System <{address}>", address, "", mid)
        head[0] = "Return-Path: <>"
        head[6] = "Subject: Undelivered Mail Returned to Sender"
        parts = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"{explanation.replace(chr(10), chr(13) + chr(10))}\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.{domain}\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\n"
            f"Action: failed\r\nStatus: 5.1.1\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"From: Complaints <{self.to}>\r\nTo: {rcpt}\r\nSubject: Your complaint\r\n"
            f"--{boundary}--\r\n"
        )
        content_type = (
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
        )
        raw = "\r\n".join([*head, content_type, "", parts])
        return BenchMail("bounce", mid, address.lower(), raw.encode())

"""The benchmark's lean SMTP sink receives exactly what the tests' aiosmtpd sink receives."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator

import aiosmtplib
import pytest

from bench.sink import LeanSink
from tests.mailstack import Received, SmtpSink

MESSAGES: list[tuple[str, list[str], bytes]] = [
    ("a@example.org", ["b@example.org"], b"Subject: one\r\n\r\nHello.\r\n"),
    # Lines that start with a dot are dot-stuffed on the wire and must come back as sent.
    (
        "a@example.org",
        ["b@example.org", "c@example.org"],
        b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..two\r\nend\r\n",
    ),
    ("", ["bounce@example.org"], b"Subject: null sender\r\n\r\nx\r\n"),
    ("a@example.org", ["b@example.org"], "Subject: caf\u00e9\r\n\r\n\u00e9t\u00e9\r\n".encode()),
    # ~500 KB of dot-led lines: arrives in many reads, with the end marker split across two.
    ("a@example.org", ["b@example.org"], b"Subject: big\r\n\r\n" + b".xxxxxxxx\r\n" * 50_000),
]


async def _send_all(port: int) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
    await client.connect()
    for sender, recipients, raw in MESSAGES:
        await client.mail(sender)
        for recipient in recipients:
            await client.rcpt(recipient)
        await client.data(raw)
    await client.mail("a@example.org")
    await client.rset()  # an abandoned transaction delivers nothing
    await client.quit()


def _received(sink: LeanSink | SmtpSink) -> list[tuple[str, list[str], bytes]]:
    def one(item: Received) -> tuple[str, list[str], bytes]:
        return item.mail_from, item.rcpt_tos, item.data

    return [one(m) for m in sink.messages]


@pytest.fixture
def sinks() -> Iterator[tuple[LeanSink, SmtpSink]]:
    lean, reference = LeanSink().start(), SmtpSink().start()
    yield lean, reference
    lean.stop()
    reference.stop()


def test_lean_sink_receives_what_aiosmtpd_receives(sinks: tuple[LeanSink, SmtpSink]) -> None:
    lean, reference = sinks
    asyncio.run(_send_all(lean.port))
    asyncio.run(_send_all(reference.port))
    reference.wait_for(lambda found: len(found) >= len(MESSAGES))
    assert lean.count == len(MESSAGES)
    assert _received(lean) == _received(reference)
    # The content is what the client meant, not what went over the wire.
    assert b"\r\n.leading dot\r\n.\r\n..two\r\n" in lean.messages[1].data


def test_lean_sink_refuses_out_of_order_commands(sinks: tuple[LeanSink, SmtpSink]) -> None:
    lean, _ = sinks
    with smtplib.SMTP("127.0.0.1", lean.port, timeout=10) as client:
        assert client.ehlo()[0] == 250
        assert client.docmd("RCPT", "TO:<b@example.org>")[0] == 503
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("VRFY", "b")[0] == 502
        assert client.noop()[0] == 250
    assert lean.count == 0

"""The outbox against real loopback SMTP peers that refuse, stall or hang up mid-DATA."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import select

from daemon.clock import SettableClock
from models import outbox
from models.database import Database
from models.schema import Outbox
from replies.compose import OutgoingMail
from replies.deliver import GATHER_SECONDS, OutboxSender, _GroupCommit, _Step
from replies.smtp import Mailer, SendResult, SmtpConfig
from tests.conftest import queue_reply
from tests.mailstack import free_port

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Answer:
    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.count = 0

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.count += 1
        return self.reply


@contextlib.contextmanager
def smtp_answering(reply: str) -> Iterator[tuple[int, Answer]]:
    handler = Answer(reply)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def smtp_hanging_up_during_data() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A peer that takes the whole message, then drops the connection without a reply."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 flaky ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 flaky\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                received.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.close()  # gone before the 250: did it deliver? nobody knows
                return
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, received


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.upgrade()
    return db


def _queue(db: Database, n: int = 1) -> list[int]:
    ids = []
    with db.transaction() as session:
        for i in range(n):
            queue_reply(
                session,
                recipient=f"p{i}@example.net",
                message_id=f"m{i}@example.org",
                now=NOW,
                raw=b"Subject: x\r\n\r\nhello\r\n",
            )
            session.flush()
            query = select(Outbox.id).where(Outbox.message_id == f"m{i}@example.org")
            ids.append(session.scalars(query).one())
    return ids


def _status(db: Database) -> list[tuple[str, int]]:
    with db.reader() as session:
        return [(r.status, r.attempts) for r in outbox.rows(session)]


def _sender(db: Database, port: int, clock: SettableClock) -> tuple[OutboxSender, Mailer]:
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=5), None)
    return OutboxSender(db, mailer, clock.now), mailer


async def test_delivered_mail_is_marked_sent_and_sent_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _queue(db, 3)
    clock = SettableClock(NOW)
    with smtp_answering("250 OK") as (port, handler):
        sender, mailer = _sender(db, port, clock)
        assert await sender.deliver_due() == 3
        assert await sender.deliver_due() == 0
        await mailer.close()
    assert handler.count == 3
    assert _status(db) == [("sent", 1)] * 3


async def test_permanent_refusal_fails_and_temporary_refusal_retries_later(tmp_path: Path) -> None:
    db = _db(tmp_path)
    clock = SettableClock(NOW)
    _queue(db)
    with smtp_answering("550 5.7.1 not here") as (port, _):
        sender, mailer = _sender(db, port, clock)
        await sender.deliver_due()
        await mailer.close()
    assert _status(db) == [("failed", 1)]

    db2 = _db(tmp_path / "two")
    _queue(db2)
    with smtp_answering("451 4.3.0 try later") as (port, handler):
        sender, mailer = _sender(db2, port, clock)
        await sender.deliver_due()
        assert _status(db2) == [("pending", 1)]
        assert await sender.deliver_due() == 0  # not due again yet
        clock.advance(timedelta(minutes=2))
        await sender.deliver_due()
        await mailer.close()
    assert handler.count == 2
    assert _status(db2) == [("pending", 2)]


async def test_no_server_is_transient(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _queue(db)
    sender, mailer = _sender(db, free_port(), SettableClock(NOW))
    await sender.deliver_due()
    await mailer.close()
    assert _status(db) == [("pending", 1)]


async def test_hang_up_during_data_is_in_doubt_and_never_resent(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _queue(db)
    clock = SettableClock(NOW)
    async with smtp_hanging_up_during_data() as (port, received):
        sender, mailer = _sender(db, port, clock)
        await sender.deliver_due()
        clock.advance(timedelta(days=1))
        assert await sender.deliver_due() == 0
        await mailer.close()
    assert len(received) == 1
    assert _status(db) == [("in_doubt", 1)]


def test_a_crash_mid_send_leaves_the_row_in_doubt_until_an_operator_retries(tmp_path: Path) -> None:
    db = _db(tmp_path)
    [row_id] = _queue(db)
    with db.transaction() as session:  # what a process killed during SMTP leaves behind
        [delivery] = outbox.claim_due(session, NOW, 10)
        assert outbox.start_sending(session, [delivery.id]) == {row_id}
    sender, _ = _sender(db, free_port(), SettableClock(NOW))
    assert sender.recover() == [row_id]
    assert _status(db) == [("in_doubt", 1)]
    with db.transaction() as session:
        assert outbox.retry(session, row_id, NOW)
    assert _status(db) == [("pending", 1)]


def test_a_starting_worker_leaves_a_live_workers_sends_alone(tmp_path: Path) -> None:
    """A second worker starting while the first is mid-send must not call its rows in
    doubt (an operator would retry them and send the mail twice)."""
    db = _db(tmp_path)
    live_id, dead_id, stale_id = _queue(db, 3)
    here = socket.gethostname()[:60]
    claims = {
        live_id: f"{here}:{os.getpid()}:1",  # this test process: alive
        dead_id: f"{here}:{_exited_pid()}:1",
        stale_id: "other-host:4242:1",  # another host, silent for 5 minutes
    }
    with db.transaction() as session:
        for row_id, worker in claims.items():  # claim_due takes the oldest: the ids in order
            [delivery] = outbox.claim_due(session, NOW, 1, worker)
            assert delivery.id == row_id
            outbox.start_sending(session, [delivery.id], worker)
        outbox.beat(session, claims[live_id], NOW)
        outbox.beat(session, claims[stale_id], NOW - timedelta(minutes=5))
    sender, _ = _sender(db, free_port(), SettableClock(NOW))
    assert sorted(sender.recover()) == [dead_id, stale_id]
    with db.reader() as session:
        left = {r.id: r.status for r in outbox.rows(session)}
    assert left == {live_id: "sending", dead_id: "in_doubt", stale_id: "in_doubt"}


def _exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_one_acknowledgement_per_case_is_enforced_by_the_database(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    db = _db(tmp_path)

    def queue_twice() -> None:
        with db.transaction() as session:
            for n in range(2):
                mail = OutgoingMail(
                    "acknowledgement",
                    f"x{n}@example.org",
                    "c@example.org",
                    "p@example.net",
                    "x",
                    b"x",
                )
                outbox.queue(session, mailbox="main", mail=mail, now=NOW, once_key="ack:1")
                session.flush()

    with pytest.raises(IntegrityError):
        queue_twice()


class Stalling:
    """Takes messages (recording each Message-ID), but from the `stall_at`-th DATA on never
    answers: the sender is caught with that message in flight."""

    def __init__(self, stall_at: int | None) -> None:
        self.stall_at = stall_at
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.message_ids.append(_message_id(content))
        if self.stall_at is not None and len(self.message_ids) >= self.stall_at:
            await asyncio.sleep(3600)
        return "250 2.0.0 Ok: queued as Q" + str(len(self.message_ids))


def _message_id(raw: bytes) -> str:
    from email import message_from_bytes

    return str(message_from_bytes(raw)["Message-ID"]).strip("<>")


_SEND_IN_A_CHILD = """
import asyncio, sys
from datetime import datetime
from models.database import Database
from replies.deliver import GATHER_SECONDS, OutboxSender, _GroupCommit, _Step
from replies.smtp import Mailer, SendResult, SmtpConfig
db, port, lanes, now = Database(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = SmtpConfig(host="127.0.0.1", port=port, security="none", connections=lanes)
sender = OutboxSender(db, Mailer(config, None), lambda: datetime.fromisoformat(now), lanes=lanes)
asyncio.run(sender.deliver_due())
"""


def _queue_mails(db: Database, n: int) -> None:
    with db.transaction() as session:
        for i in range(n):
            raw = f"Message-ID: <m{i}@example.org>\r\nSubject: x\r\n\r\nhello\r\n".encode()
            queue_reply(
                session,
                recipient=f"p{i}@example.net",
                message_id=f"m{i}@example.org",
                now=NOW,
                raw=raw,
            )


async def _deliver_to(handler: Stalling, db: Database) -> int:
    """Deliver what is due to an SMTP server run by `handler`; returns the rows claimed."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sender, mailer = _sender(db, port, SettableClock(NOW))
        claimed = await sender.deliver_due()
        await mailer.close()
    finally:
        controller.stop()
    return claimed


async def _kill_mid_batch(tmp_path: Path, lanes: int, stall_at: int) -> tuple[Database, Stalling]:
    """A worker sending a batch of 40 is killed -9 while the server sits on a DATA."""
    db = _db(tmp_path)
    _queue_mails(db, 40)
    handler = Stalling(stall_at)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    root = Path(__file__).resolve().parent.parent
    argv = [str(db.engine.url), str(port), str(lanes), NOW.isoformat()]
    child = subprocess.Popen([sys.executable, "-c", _SEND_IN_A_CHILD, *argv], cwd=root)
    try:
        for _ in range(600):
            if len(handler.message_ids) >= stall_at + lanes - 1 or child.poll() is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # let the other lanes reach their stalled DATA
        assert child.poll() is None, "the sender stopped before it could be killed"
        child.kill()
        child.wait()
    finally:
        controller.stop()
    return db, handler


@pytest.mark.parametrize("lanes", [1, 4])
async def test_a_kill_mid_batch_leaves_one_in_doubt_per_connection(
    tmp_path: Path, lanes: int
) -> None:
    """The rows whose DATA was in flight (one per connection) are in doubt; the rows
    delivered before the kill stay sent; the claimed rest go out once afterwards."""
    db, stalled = await _kill_mid_batch(tmp_path, lanes, stall_at=12)
    in_flight = set(stalled.message_ids[11:])
    assert 1 <= len(in_flight) <= lanes
    with db.reader() as session:
        before = {r.message_id: r.status for r in outbox.rows(session)}
    assert {m for m, s in before.items() if s == "sending"} == in_flight
    assert {m for m, s in before.items() if s == "sent"} == set(stalled.message_ids[:11])
    assert "claimed" in before.values()  # the rest of the batch, never handed to SMTP

    sender, _ = _sender(db, free_port(), SettableClock(NOW))
    doubtful = sender.recover()  # the child is gone (its pid is dead)
    with db.reader() as session:
        after_recovery = {r.message_id: r.status for r in outbox.rows(session)}
    assert len(doubtful) == len(in_flight)
    assert {m for m, s in after_recovery.items() if s == "in_doubt"} == in_flight
    assert "claimed" not in after_recovery.values()
    assert "sending" not in after_recovery.values()

    handler = Stalling(None)
    await _deliver_to(handler, db)
    with db.reader() as session:
        final = {r.message_id: r.status for r in outbox.rows(session)}
    assert {m for m, s in final.items() if s == "in_doubt"} == in_flight
    assert {m for m, s in final.items() if s != "in_doubt"} == set(final) - in_flight
    assert all(s == "sent" for m, s in final.items() if m not in in_flight)
    # Nothing twice: the in-doubt rows were not resent, every other row went exactly once.
    everything = stalled.message_ids + handler.message_ids
    assert len(everything) == len(set(everything)) == 40


async def test_the_servers_reply_is_kept_as_proof_of_delivery(tmp_path: Path) -> None:
    from models.schema import CaseEvent
    from tests.test_lifecycle import new_case

    db = _db(tmp_path)
    with db.transaction() as session:  # a case, whose history keeps the server's reply
        case = new_case(session)
        queue_reply(
            session,
            recipient="p@example.net",
            message_id="a@example.org",
            now=NOW,
            case_id=case.id,
            raw=b"Message-ID: <a@example.org>\r\n\r\nhi\r\n",
        )
    handler = Stalling(None)
    await _deliver_to(handler, db)
    with db.reader() as session:
        details = list(session.scalars(select(CaseEvent.detail)))
    assert "outbox 1: 250 2.0.0 Ok: queued as Q1" in details


@pytest.mark.postgres
async def test_a_database_connection_dropped_mid_batch_is_retried(pg_url: str) -> None:
    """pg_terminate_backend (what a PostgreSQL restart does) inside the transaction that
    records a verdict: the sender retries it on a fresh connection; every verdict is
    recorded, nothing is left claimed or sending, nothing is sent twice."""
    from sqlalchemy import event

    from faults.injectors import terminate_backends

    db = Database(pg_url)
    db.upgrade()
    _queue_mails(db, 6)
    handler = Stalling(None)
    dropped: list[int] = []

    def drop_once(conn: object, cursor: object, statement: str, *args: object) -> None:
        if len(handler.message_ids) >= 3 and not dropped and "SET status=" in statement:
            dropped.append(terminate_backends(pg_url.rsplit("/", 1)[1]))

    event.listen(db.engine, "before_cursor_execute", drop_once)
    assert await _deliver_to(handler, db) == 6
    assert dropped[0] >= 1
    assert sorted(handler.message_ids) == sorted(f"m{i}@example.org" for i in range(6))
    assert _status(db) == [("sent", 1)] * 6
    db.dispose()


def _delivery(row_id: int) -> outbox.Delivery:
    return outbox.Delivery(row_id, "main", "a@example.org", "b@example.org", b"", 1)


async def test_a_commit_gathers_the_lanes_still_in_smtp() -> None:
    groups: list[list[int]] = []

    def write(steps: list[_Step]) -> set[int]:
        groups.append([s.done[0].id for s in steps if s.done is not None])
        return set()

    commits = _GroupCommit(write)

    async def lane(row_id: int) -> None:
        commits.sending()
        await asyncio.sleep(0.0002 * row_id)  # SMTP answers a little apart
        await commits.submit(_Step((_delivery(row_id), SendResult("sent")), None))

    await asyncio.gather(*(lane(i) for i in range(1, 5)))
    assert groups == [[1, 2, 3, 4]]  # one transaction, not one a lane


async def test_a_lone_step_is_written_without_waiting() -> None:
    groups: list[int] = []

    def write(steps: list[_Step]) -> set[int]:
        groups.append(len(steps))
        return set()

    commits = _GroupCommit(write)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await commits.submit(_Step(None, _delivery(1))) is False  # not moved: not sent
    assert loop.time() - started < GATHER_SECONDS
    assert groups == [1]

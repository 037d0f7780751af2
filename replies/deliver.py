"""The outbox sender: claims due rows, hands them to SMTP, records each verdict."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy.orm import Session

from models import outbox
from models.database import Database, reconnecting
from replies.smtp import Mailer, SendResult

log = structlog.get_logger("candour.outbox")
T = TypeVar("T")

# A worker unseen for this long is gone: its rows in `sending` are called in doubt. Its
# outbox loop beats at least every `idle_seconds` (30 s) and after every batch.
GONE_AFTER = timedelta(seconds=120)
BEAT_SECONDS = 15.0  # how often the loop renews the heartbeat and looks for gone workers
GATHER_SECONDS = 0.003  # the longest a commit waits for lanes in SMTP (_GroupCommit)


def worker_id() -> str:
    """This process, as outbox claims and heartbeats name it: host:pid:start."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{int(time.time())}"


def is_gone(worker: str | None, seen: datetime | None, now: datetime, me: str) -> bool:
    """Whether the worker that claimed a row can no longer be sending it. Pure but for one
    `os.kill(pid, 0)` when the worker ran on this host."""
    if worker == me:
        return False
    if worker is None:
        return True  # claimed before claims were named: the old rule
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname()[:60] and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True  # it died on this host: no need to wait
        except PermissionError:
            pass  # alive, someone else's
    return seen is None or now - seen > GONE_AFTER


# Retry schedule for transient failures: 1 min, 5 min, 15 min, then hourly, for 2 days.
_RETRY_DELAYS = (60, 300, 900, 3600)
MAX_ATTEMPTS = 52


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=_RETRY_DELAYS[min(attempts, len(_RETRY_DELAYS)) - 1])


def _reconnecting(work: Callable[[], T]) -> T:
    """The outbox's transactions are idempotent (a claim repeated after an unseen commit
    only leaves rows that recover() releases): retried when the connection drops."""
    return reconnecting(work, "outbox.db_reconnect")


@dataclass(frozen=True)
class _Step:
    """What one lane asks of the database next: record the verdict of the row it just
    sent (if any) and move its next row (if any) to `sending`."""

    done: tuple[outbox.Delivery, SendResult] | None
    next: outbox.Delivery | None


class _GroupCommit:
    """The lanes' steps written together: whatever the lanes queue while one transaction is
    being written goes into the next one (SQLite has one writer, so a commit per lane per
    message would only queue up). The lane that finds nobody writing writes for all, after
    waiting up to GATHER_SECONDS for lanes still in SMTP to queue theirs: one transaction
    costs about as much for one step as for eight, so gathered steps cost the daemon less
    CPU (a 10,000-message backlog: 7.2 steps a commit, not 3.5; the outbox's writes
    took 2.5 CPU seconds, not 4.0)."""

    def __init__(self, write: Callable[[list[_Step]], set[int]]) -> None:
        self._write = write
        self._queued: list[tuple[_Step, asyncio.Future[bool]]] = []
        self._writing = False
        self._sending = 0  # lanes in an SMTP transaction, whose steps will come
        self._joined = asyncio.Event()

    def sending(self) -> None:
        """A lane starts an SMTP transaction: its next step is worth waiting for."""
        self._sending += 1

    async def submit(self, step: _Step) -> bool:
        """Returns once `step` is committed: whether its next row may be sent."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if step.done is not None:
            self._sending -= 1
        self._queued.append((step, future))
        self._joined.set()
        if not self._writing:
            self._writing = True
            try:
                while self._queued:
                    await self._gather()
                    group, self._queued = self._queued, []
                    try:
                        started = await asyncio.to_thread(self._write, [s for s, _ in group])
                    except BaseException:
                        # The writing lane raises; the others stop (their lanes end quietly
                        # and the task group reports this lane's error).
                        for _, waiting in group + self._queued:
                            if waiting is not future:
                                waiting.cancel()
                        self._queued = []
                        raise
                    for done, waiting in group:
                        waiting.set_result(done.next is None or done.next.id in started)
            finally:
                self._writing = False
        return await future

    async def _gather(self) -> None:
        """Wait until no lane is in SMTP any more, or GATHER_SECONDS have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GATHER_SECONDS
        while self._sending > 0 and (left := deadline - loop.time()) > 0:
            self._joined.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._joined.wait(), left)


@dataclass(frozen=True)
class Sent:
    """One message an SMTP server accepted, as `on_sent` hears of it (metrics time the
    acknowledgements from it; the worker appends the copy to Sent)."""

    mailbox: str
    outbox_id: int
    accepted_at: datetime  # when its verdict was recorded, just after SMTP accepted it


class OutboxSender:
    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        now: Callable[[], datetime],
        on_sent: Callable[[Sent], None] = lambda sent: None,
        batch: int = 64,
        worker: str | None = None,
        lanes: int = 4,
    ) -> None:
        """`lanes`: rows sent at once, one per SMTP connection (the mailer's `connections`),
        hence the most a crash can leave in doubt. `batch`: rows claimed at a time; mail
        given priority meanwhile (an acknowledgement of fresh mail during a backlog) waits
        at most for the rest of the batch in hand, so it is kept small."""
        self._db = db
        self._mailer = mailer
        self._now = now
        self._on_sent = on_sent
        self._batch = batch
        self._lanes = lanes
        self._busy = False
        self.worker = worker or worker_id()

    def recover(self) -> list[int]:
        """Rows a gone worker left mid-send become in-doubt (never resent blindly); rows it
        only claimed go back to pending; rows another live worker holds are left alone.
        This worker's own rows count as left behind when no delivery of its own is running
        (a database error cut one short). Run at start and by the loop, which also renews
        this worker's heartbeat. Returns the in-doubt ids."""
        gone, ids = _reconnecting(self._recover_once)
        for row_id in ids:
            log.warning("outbox.in_doubt", outbox_id=row_id, why="interrupted while sending")
        if len(gone) > len(ids):
            log.info("outbox.released", rows=len(gone) - len(ids), why="claimed, never sent")
        return ids

    def _recover_once(self) -> tuple[list[int], list[int]]:
        """The rows of gone workers (and this one's, when idle), and those made in doubt."""
        now = self._now()
        with self._db.transaction() as session:
            outbox.beat(session, self.worker, now)
            claims = outbox.claims(session)
            seen = outbox.last_seen(session, sorted({w for _, w in claims.values() if w}))
            gone = [
                row_id
                for row_id, (_, worker) in claims.items()
                if (worker == self.worker and not self._busy)
                or is_gone(worker, seen.get(worker or ""), now, self.worker)
            ]
            return gone, outbox.recover_interrupted(session, gone) if gone else []

    def _claim(self) -> list[outbox.Delivery]:
        def claim() -> list[outbox.Delivery]:
            now = self._now()
            with self._db.transaction() as session:
                outbox.beat(session, self.worker, now)
                return outbox.claim_due(session, now, self._batch, self.worker)

        return _reconnecting(claim)

    def _write(self, steps: list[_Step]) -> set[int]:
        """One transaction for the lanes' queued steps: verdicts recorded, next rows moved
        to `sending`; returns the rows moved."""

        def write() -> set[int]:
            now = self._now()
            with self._db.transaction() as session:
                self._record(session, [s.done for s in steps if s.done is not None], now)
                starting = [s.next.id for s in steps if s.next is not None]
                return outbox.start_sending(session, starting, self.worker)

        return _reconnecting(write)

    def _record(
        self, session: Session, verdicts: list[tuple[outbox.Delivery, SendResult]], now: datetime
    ) -> None:
        sent = [(d, r) for d, r in verdicts if r.verdict == "sent"]
        replies = {d.id: r.detail for d, r in sent if r.detail}
        outbox.mark_sent_many(session, [d.id for d, _ in sent], now, replies)
        for delivery, result in verdicts:
            if result.verdict == "sent":
                continue
            if result.verdict == "in_doubt":
                outbox.mark_in_doubt(session, delivery.id, result.detail)
            else:
                permanent = result.verdict == "refused" or delivery.attempts >= MAX_ATTEMPTS
                outbox.mark_retry(
                    session,
                    delivery.id,
                    now + retry_delay(delivery.attempts),
                    result.detail,
                    permanent=permanent,
                )

    def _report(self, delivery: outbox.Delivery, result: SendResult) -> None:
        event = {
            "sent": "outbox.sent",
            "transient": "outbox.retry",
            "refused": "outbox.failed",
            "in_doubt": "outbox.in_doubt",
        }[result.verdict]
        logger = log.info if result.verdict == "sent" else log.warning
        logger(
            event,
            outbox_id=delivery.id,
            mailbox=delivery.mailbox,
            attempt=delivery.attempts,
            detail=result.detail or None,
        )

    async def _lane(self, claimed: deque[outbox.Delivery], commits: _GroupCommit) -> None:
        """One SMTP connection's share of a batch: each row goes to `sending` in a commit
        just before its SMTP transaction, and its verdict is committed with the next row's
        move to `sending`, so a crash leaves at most this one row in doubt."""
        done: tuple[outbox.Delivery, SendResult] | None = None
        while True:
            delivery = claimed.popleft() if claimed else None
            go = await commits.submit(_Step(done, delivery))
            if done is not None:
                self._report(*done)
                if done[1].verdict == "sent":
                    self._on_sent(Sent(done[0].mailbox, done[0].id, self._now()))
            if delivery is None:
                return
            if not go:  # taken back by another worker's recovery: not ours to send
                done = None
                continue
            commits.sending()
            result = await self._mailer.send(
                delivery.envelope_from, delivery.recipient, delivery.raw
            )
            done = (delivery, result)

    async def deliver_due(self) -> int:
        """Send everything due now over `lanes` connections; returns how many rows were
        claimed. Rows claimed but not reached when this stops (an error, a cancelled drain)
        go back to pending."""
        total = 0
        self._busy = True
        claimed: deque[outbox.Delivery] = deque()
        try:
            while batch := await asyncio.to_thread(self._claim):
                total += len(batch)
                claimed.extend(batch)
                commits = _GroupCommit(self._write)
                async with asyncio.TaskGroup() as lanes:  # one fails: the others stop too
                    for _ in range(self._lanes):
                        lanes.create_task(self._lane(claimed, commits))
        finally:
            self._busy = False
            if claimed:
                left = [d.id for d in claimed]
                claimed.clear()
                await asyncio.shield(asyncio.to_thread(self._release, left))
        return total

    def _release(self, ids: list[int]) -> None:
        def release() -> None:
            with self._db.transaction() as session:
                outbox.release(session, ids)

        _reconnecting(release)

    async def run(
        self, wake: asyncio.Event, stop: asyncio.Event, idle_seconds: float = 30.0
    ) -> None:
        """Deliver whenever woken (new mail queued) and at least every `idle_seconds`."""
        checked = 0.0
        while not stop.is_set():
            wake.clear()
            try:
                if time.monotonic() - checked >= BEAT_SECONDS:
                    await asyncio.to_thread(self.recover)  # heartbeat, gone workers' rows
                    checked = time.monotonic()
                await self.deliver_due()
            except Exception:
                log.exception("outbox.error")
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

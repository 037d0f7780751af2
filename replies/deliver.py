"""The outbox sender: claims due rows, hands them to SMTP, records each verdict."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from models import outbox
from models.database import Database
from replies.smtp import Mailer, SendResult

log = structlog.get_logger("candour.outbox")

# A worker unseen for this long is gone: its rows in `sending` are called in doubt. Its
# outbox loop beats at least every `idle_seconds` (30 s) and after every batch.
GONE_AFTER = timedelta(seconds=120)
BEAT_SECONDS = 15.0  # how often the loop renews the heartbeat and looks for gone workers


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


class OutboxSender:
    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        now: Callable[[], datetime],
        on_sent: Callable[[str], None] = lambda mailbox: None,
        batch: int = 256,
        worker: str | None = None,
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._now = now
        self._on_sent = on_sent
        self._batch = batch
        self.worker = worker or worker_id()

    def recover(self) -> list[int]:
        """Rows a gone worker left mid-send become in-doubt (never resent blindly); rows
        another live worker is sending are left alone. Run at start and by the loop, which
        also renews this worker's heartbeat."""
        now = self._now()
        with self._db.transaction() as session:
            outbox.beat(session, self.worker, now)
            claims = outbox.sending_claims(session)
            seen = outbox.last_seen(session, sorted({w for w in claims.values() if w}))
            gone = [
                row_id
                for row_id, worker in claims.items()
                if is_gone(worker, seen.get(worker or ""), now, self.worker)
            ]
            ids = outbox.recover_interrupted(session, gone) if gone else []
        for row_id in ids:
            log.warning("outbox.in_doubt", outbox_id=row_id, why="interrupted while sending")
        return ids

    def _claim(self) -> list[outbox.Delivery]:
        with self._db.transaction() as session:
            return outbox.claim_due(session, self._now(), self._batch, self.worker)

    def _record_and_claim(
        self, verdicts: list[tuple[outbox.Delivery, SendResult]]
    ) -> list[outbox.Delivery]:
        """Record a batch of verdicts and claim the next batch, in one transaction.

        One commit per batch, not one per message, and not two per batch: while the
        watcher records a backlog, every write transaction may wait for the database's
        write lock (SQLite has one), so the outbox keeps up by asking for it once.
        """
        now = self._now()
        with self._db.transaction() as session:
            self._record(session, verdicts, now)
            outbox.beat(session, self.worker, now)
            return outbox.claim_due(session, now, self._batch, self.worker)

    def _record(
        self, session: Session, verdicts: list[tuple[outbox.Delivery, SendResult]], now: datetime
    ) -> None:
        outbox.mark_sent_many(session, [d.id for d, r in verdicts if r.verdict == "sent"], now)
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

    async def _send(self, delivery: outbox.Delivery) -> tuple[outbox.Delivery, SendResult]:
        return delivery, await self._mailer.send(
            delivery.envelope_from, delivery.recipient, delivery.raw
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

    async def deliver_due(self) -> int:
        """Send everything due now; returns how many rows were attempted."""
        total = 0
        deliveries = await asyncio.to_thread(self._claim)
        while deliveries:
            total += len(deliveries)
            verdicts = await asyncio.gather(*(self._send(d) for d in deliveries))
            deliveries = await asyncio.to_thread(self._record_and_claim, list(verdicts))
            for delivery, result in verdicts:
                self._report(delivery, result)
            for mailbox in {d.mailbox for d, r in verdicts if r.verdict == "sent"}:
                self._on_sent(mailbox)
        return total

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

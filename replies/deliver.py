"""The outbox sender: claims due rows, hands them to SMTP, records each verdict."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from models import outbox
from models.database import Database
from replies.smtp import Mailer, SendResult

log = structlog.get_logger("candour.outbox")

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
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._now = now
        self._on_sent = on_sent
        self._batch = batch

    def recover(self) -> list[int]:
        """At start: rows a crash left mid-send become in-doubt (never resent blindly)."""
        with self._db.transaction() as session:
            ids = outbox.recover_interrupted(session)
        for row_id in ids:
            log.warning("outbox.in_doubt", outbox_id=row_id, why="interrupted while sending")
        return ids

    def _claim(self) -> list[outbox.Delivery]:
        with self._db.transaction() as session:
            return outbox.claim_due(session, self._now(), self._batch)

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
            return outbox.claim_due(session, now, self._batch)

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
        while not stop.is_set():
            wake.clear()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox.error")
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

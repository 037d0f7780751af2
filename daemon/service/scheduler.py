"""The scheduler: every minute, each periodic job for every mailbox.

The jobs are one table, `JOBS`, run in order for each mailbox in one transaction per
mailbox. A job takes the mailbox's desk and the time, does its work in the session and
returns how many things it did; a job that queues mail wakes the outbox when it did any.
Jobs must be idempotent (ticks repeat, the daemon may restart at any moment, and several
workers may tick at once): the reminders use the outbox's unique once_keys, the late
acknowledgements a flag set once. A mailbox that fails is logged and skipped; the others
go on. A new periodic job (reports, retention) is a function and one row here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from daemon.casework import retention
from daemon.casework.desk import Desk
from daemon.casework.reminders import queue_reminders, review_restrictions
from daemon.clock import Clock
from daemon.config import Config
from daemon.reports import board
from daemon.service.secrets import reply_secret
from models.database import Database, reconnecting
from models.lifecycle import close_unopposed_referrals, record_late_acknowledgements
from replies.templates import TemplateProblem, Templates

log = structlog.get_logger("candour.scheduler")


@dataclass(frozen=True)
class Job:
    """A periodic job: `run(session, desk, now)` returns how many things it did."""

    name: str
    run: Callable[[Session, Desk, datetime], int]
    queues_mail: bool


def _late_acknowledgements(session: Session, desk: Desk, now: datetime) -> int:
    return record_late_acknowledgements(session, desk.mailbox.name, now)


def _reminders(session: Session, desk: Desk, now: datetime) -> int:
    return len(queue_reminders(session, desk, now))


def _unopposed_referrals(session: Session, desk: Desk, now: datetime) -> int:
    """Close referrals nobody objected to in time, where the mailbox allows it."""
    if not desk.mailbox.referral_auto_close:
        return 0
    return close_unopposed_referrals(session, desk.mailbox.name, now)


def _restriction_reviews(session: Session, desk: Desk, now: datetime) -> int:
    """At a restriction's review date: the manager is told and the restriction lapses
    (staff renew it with #restrict)."""
    return len(review_restrictions(session, desk, now))


def _board_report(session: Session, desk: Desk, now: datetime) -> int:
    """After each month or quarter, the board's report (once per period and recipient)."""
    return board.send_due(session, desk, now)


def _retention(session: Session, desk: Desk, now: datetime) -> int:
    """Purge the content of cases kept past their label's retention period."""
    return sum(retention.purge(session, desk.mailbox, now).values())


JOBS: tuple[Job, ...] = (
    Job("late_acknowledgements", _late_acknowledgements, queues_mail=False),
    Job("unopposed_referrals", _unopposed_referrals, queues_mail=False),
    Job("restriction_reviews", _restriction_reviews, queues_mail=True),
    Job("reminders", _reminders, queues_mail=True),
    Job("board_report", _board_report, queues_mail=True),
    Job("retention", _retention, queues_mail=False),
)


def desks_for(config: Config, secret: bytes | None = None) -> list[Desk]:
    """A desk per configured mailbox (the secret read or made as the worker does)."""
    key = secret if secret is not None else reply_secret(config)
    return [
        Desk.for_mailbox(m, Templates(m.templates_dir), key, screening=config.classifier)
        for m in config.mailbox
    ]


def _run_jobs(db: Database, desk: Desk, now: datetime) -> dict[str, int]:
    """Every job for one mailbox in one transaction, again on a fresh connection when the
    database dropped this one (the jobs are idempotent)."""

    def run() -> dict[str, int]:
        with db.transaction() as session:
            return {job.name: job.run(session, desk, now) for job in JOBS}

    return reconnecting(run, "reminders.db_reconnect", mailbox=desk.mailbox.name)


def _tick(db: Database, desks: Sequence[Desk], clock: Clock) -> int:
    """One pass of every job over every mailbox; returns how many mails were queued."""
    queued = 0
    for desk in desks:
        now = clock.now()
        try:
            done = _run_jobs(db, desk, now)
        except TemplateProblem as exc:
            log.error("reminders.template_error", mailbox=desk.mailbox.name, error=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one mailbox's fault must not stop the rest
            # The type only: database errors quote parameters, which may hold addresses.
            log.error("reminders.failed", mailbox=desk.mailbox.name, error=type(exc).__name__)
            continue
        if any(done.values()):
            log.info("reminders.run", mailbox=desk.mailbox.name, **done)
        queued += sum(done[job.name] for job in JOBS if job.queues_mail)
    return queued


def run_reminders_once(db: Database, config: Config, clock: Clock) -> int:
    """Run every job for every mailbox, now. Returns how many mails were queued (0 when
    all were queued before)."""
    return _tick(db, desks_for(config), clock)


async def run_scheduler(
    db: Database,
    config: Config,
    clock: Clock,
    wake_outbox: Callable[[], None],
    stop: asyncio.Event,
    interval: float = 60.0,
) -> None:
    """Tick every `interval` seconds until `stop` is set; wakes the outbox after queuing."""
    desks = desks_for(config)
    log.info("scheduler.started", interval=interval, jobs=[job.name for job in JOBS])
    while not stop.is_set():
        queued = await asyncio.to_thread(_tick, db, desks, clock)
        if queued:
            wake_outbox()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("scheduler.stopped")

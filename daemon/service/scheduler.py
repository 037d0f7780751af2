"""The scheduler: every minute, watch acknowledgement deadlines and queue due reminders.

Each tick is one transaction per mailbox: late acknowledgements are flagged as breaches
and `queue_reminders` queues what is due (idempotent through the outbox's once_keys, so
ticks may repeat and the daemon may restart at any moment). A mailbox that fails is
logged and skipped; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from daemon.casework.deadlines import calendar_for
from daemon.casework.reminders import queue_reminders
from daemon.casework.workdays import WorkingCalendar
from daemon.clock import Clock
from daemon.config import Config, MailboxConfig
from models.database import Database
from models.lifecycle import record_late_acknowledgements
from replies.templates import TemplateProblem, Templates

log = structlog.get_logger("candour.scheduler")


@dataclass(frozen=True)
class _MailboxTools:
    mailbox: MailboxConfig
    calendar: WorkingCalendar
    templates: Templates


def _tools(config: Config) -> list[_MailboxTools]:
    return [_MailboxTools(m, calendar_for(m), Templates(m.templates_dir)) for m in config.mailbox]


def _tick(db: Database, tools: list[_MailboxTools], clock: Clock) -> int:
    """One pass over every mailbox; returns how many reminders were queued."""
    queued = 0
    for tool in tools:
        now = clock.now()
        try:
            with db.transaction() as session:
                late = record_late_acknowledgements(session, tool.mailbox.name, now)
                keys = queue_reminders(session, tool.mailbox, tool.calendar, tool.templates, now)
        except TemplateProblem as exc:
            log.error("reminders.template_error", mailbox=tool.mailbox.name, error=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one mailbox's fault must not stop the rest
            # The type only: database errors quote parameters, which may hold addresses.
            log.error("reminders.failed", mailbox=tool.mailbox.name, error=type(exc).__name__)
            continue
        if late or keys:
            log.info("reminders.run", mailbox=tool.mailbox.name, late_acks=late, queued=len(keys))
        queued += len(keys)
    return queued


def run_reminders_once(db: Database, config: Config, clock: Clock) -> int:
    """Flag late acknowledgements and queue due reminders for every mailbox, now.

    Returns how many reminder mails were queued (0 when all were queued before).
    """
    return _tick(db, _tools(config), clock)


async def run_scheduler(
    db: Database,
    config: Config,
    clock: Clock,
    wake_outbox: Callable[[], None],
    stop: asyncio.Event,
    interval: float = 60.0,
) -> None:
    """Tick every `interval` seconds until `stop` is set; wakes the outbox after queuing."""
    tools = _tools(config)
    log.info("scheduler.started", interval=interval)
    while not stop.is_set():
        queued = await asyncio.to_thread(_tick, db, tools, clock)
        if queued:
            wake_outbox()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("scheduler.stopped")

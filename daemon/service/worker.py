"""The worker: wires configuration to watchers, pipeline and outbox, and runs them.

`run_forever` watches every mailbox in its own thread, delivers the outbox on the event
loop, and on SIGTERM/SIGINT stops intake, lets in-flight work finish and drains the
outbox to a deadline. `run_once` processes what is waiting, delivers, and returns:
for cron users and tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from classifiers.types import Classifier
from daemon.clock import Clock, SystemClock
from daemon.config import Config
from daemon.mailbox.imap import ImapError, ImapPermanent
from daemon.mailbox.preparer import make_preparer
from daemon.mailbox.watcher import MailboxWatcher
from daemon.service.leases import LeaseKeeper, Watching
from daemon.service.metrics import Metrics, serve_metrics
from daemon.service.notify import Heartbeat, Supervisor, beating_clock, outbox_waiting
from daemon.service.reload import Reloader
from daemon.service.scheduler import run_reminders_once, run_scheduler
from daemon.service.secrets import reply_secret
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import Preparer
from models.database import Database
from replies.deliver import OutboxSender, Sent
from replies.smtp import Mailer

log = structlog.get_logger("candour.worker")

EXIT_OK = 0
EXIT_MAILBOX_FAILED = 75  # EX_TEMPFAIL: try again later
EXIT_NO_HEALTHY_MAILBOX = 78  # EX_CONFIG: a human must act
DRAIN_SECONDS = 20.0


def exit_status(mailboxes: int, failed: int, needs_human: int) -> int:
    """The exit status of a run: the same rule for `run --once` and the daemon. 78 when no
    mailbox is usable and a human must act (every failure permanent: a wrong password, a
    missing folder), 75 when any mailbox failed otherwise (try again later), else 0."""
    if mailboxes and needs_human == mailboxes:
        return EXIT_NO_HEALTHY_MAILBOX
    return EXIT_MAILBOX_FAILED if failed else EXIT_OK


@dataclass
class Worker:
    config: Config
    db: Database
    watchers: list[MailboxWatcher]
    smtp_password: str | None
    clock: Clock
    preparer: Preparer
    metrics: Metrics | None = None  # served while run_forever runs, when configured

    @classmethod
    def build(
        cls,
        config: Config,
        clock: Clock | None = None,
        classifier: Classifier | None = None,
        preparer: Preparer | None = None,
    ) -> Worker:
        """Open the database (upgrading its schema) and prepare one watcher per mailbox.

        `preparer`, when given, is already started (the CLI starts it before importing
        this module); it is closed here if the worker cannot be built.
        Raises ConfigError (unreadable secrets) or DatabaseError.
        """
        clock = clock or SystemClock()
        if preparer is None:
            preparer = make_preparer(config, classifier)  # the child loads while we go on
        try:
            db = Database(config.database.url)
            db.upgrade()
            secret = reply_secret(config, db)
        except BaseException:
            preparer.close()
            raise
        watchers = []
        for mailbox in config.mailbox:
            triage = Triage(
                mailbox, db, preparer, clock, secret=secret, screening=config.classifier
            )
            password = mailbox.imap.password() or ""
            watchers.append(MailboxWatcher(triage, password, batch_size=config.daemon.batch_size))
        return cls(config, db, watchers, config.smtp.password(), clock, preparer)

    def _sender(self, mailer: Mailer, now: Callable[[], datetime] | None = None) -> OutboxSender:
        by_name = {w.mailbox.name: w for w in self.watchers}

        def sent(mail: Sent) -> None:
            watcher = by_name.get(mail.mailbox)
            if watcher is not None:
                watcher.wake.set()  # append the copy to Sent on the watcher's thread
            if self.metrics is not None:
                self.metrics.sent(mail)

        return OutboxSender(
            self.db, mailer, now or self.clock.now, on_sent=sent, lanes=self.config.smtp.connections
        )

    def _serve_metrics(self) -> None:
        """Serve metrics when `[metrics]` asks; an address in use is logged, not fatal."""
        settings = self.config.metrics
        if not settings.enabled:
            return
        names = [w.mailbox.name for w in self.watchers]
        try:
            self.metrics = serve_metrics(settings, self.db, names, self.config.daemon.state_dir)
        except OSError as exc:
            log.error("metrics.unavailable", listen=settings.listen, error=str(exc))
            return
        for watcher in self.watchers:
            watcher.observer = self.metrics
        log.info("metrics.serving", listen=settings.listen)

    def _release(self) -> None:
        """Let go of what run_forever holds: the preparer's children, the metrics port,
        the database connections."""
        self.preparer.close()
        if self.metrics is not None:
            self.metrics.close()
        self.db.dispose()

    async def run_once(self) -> int:
        """Process everything waiting in every mailbox, deliver the outbox, then return."""
        mailer = Mailer(self.config.smtp, self.smtp_password)
        sender = self._sender(mailer)
        sender.recover()
        failed = needs_human = 0
        # On PostgreSQL only the mailboxes whose lease this run gets: not those another
        # worker is watching, nor those a `run --once` beside it is processing.
        keeper = LeaseKeeper(self.db, sender.worker, [w.mailbox.name for w in self.watchers])
        processing = asyncio.Event()
        renewing = asyncio.create_task(keeper.run(processing, take=False))
        try:
            for watcher in self.watchers:
                if not await asyncio.to_thread(keeper.take, watcher.mailbox.name):
                    log.info("mailbox.skipped", mailbox=watcher.mailbox.name, why="leased")
                    continue
                try:
                    count = await asyncio.to_thread(watcher.sync_once)
                    log.info("mailbox.synced", mailbox=watcher.mailbox.name, messages=count)
                except ImapError as exc:
                    failed += 1
                    needs_human += isinstance(exc, ImapPermanent)
                    event = (
                        "imap.needs_attention"
                        if isinstance(exc, ImapPermanent)
                        else "imap.unavailable"
                    )
                    log.error(event, mailbox=watcher.mailbox.name, error=str(exc))
            await asyncio.to_thread(run_reminders_once, self.db, self.config, self.clock)
            await sender.deliver_due()
            for watcher in self.watchers:
                if watcher.imap.connected:
                    try:
                        await asyncio.to_thread(watcher.append_sent_copies)
                    except ImapError as exc:
                        log.warning(
                            "imap.sent_copy_failed", mailbox=watcher.mailbox.name, error=str(exc)
                        )
        finally:
            await mailer.close()
            for watcher in self.watchers:
                watcher.imap.close()
            processing.set()
            await renewing
            await asyncio.to_thread(keeper.release_all)
            self.preparer.close()
        return exit_status(len(self.watchers), failed, needs_human)

    async def run_forever(self, config_path: Path | None = None) -> int:
        """Watch all mailboxes until SIGTERM or SIGINT; returns the exit status. SIGHUP
        reloads `config_path` (daemon.service.reload); systemd is told how things stand
        (daemon.service.notify)."""
        loop = asyncio.get_running_loop()
        stop, wake, reload = asyncio.Event(), asyncio.Event(), asyncio.Event()
        delivery_beat = Heartbeat()
        supervisor = Supervisor.from_environ(self.watchers, delivery_beat)
        supervisor.handle_signals(loop, stop, reload)
        self._serve_metrics()
        mailer = Mailer(self.config.smtp, self.smtp_password)
        sender = self._sender(mailer, beating_clock(delivery_beat, self.clock.now))
        sender.recover()

        def queued() -> None:
            loop.call_soon_threadsafe(wake.set)

        for watcher in self.watchers:
            watcher.on_queued = queued
        # The keeper starts a watcher's thread when this worker gets its mailbox's lease
        # (all of them on SQLite) and stops it when the lease goes to another worker.
        watching = Watching(self.watchers)
        names = [w.mailbox.name for w in self.watchers]
        keeper = LeaseKeeper(self.db, sender.worker, names, watching)
        await asyncio.to_thread(keeper.tick)
        leasing = asyncio.create_task(keeper.run(stop))
        delivery = asyncio.create_task(sender.run(wake, stop, supervisor.delivery_idle_seconds))
        reminders = asyncio.create_task(
            run_scheduler(self.db, self.config, self.clock, lambda: wake.set(), stop)
        )
        log.info("daemon.started", mailboxes=[w.mailbox.name for w in self.watchers])
        reloader = Reloader(
            config_path, self.config, self.db, self.clock, self.watchers, self.preparer
        )
        status = EXIT_OK
        try:
            status = await self._supervise(stop, reload, supervisor, reloader)
        finally:
            log.info("daemon.stopping")
            await leasing
            await asyncio.to_thread(watching.stop_all, DRAIN_SECONDS)
            # Watchers ended: another worker may take the mailboxes now, not in LEASE.
            await asyncio.to_thread(keeper.release_all)
            await delivery
            await reminders
            try:
                await asyncio.wait_for(sender.deliver_due(), timeout=DRAIN_SECONDS)
            except TimeoutError:
                log.warning("outbox.drain_timeout")
            await mailer.close()
            reloader.close_retired(force=True)
            self._release()
            log.info("daemon.stopped", status=status)
        return status

    async def _supervise(
        self, stop: asyncio.Event, reload: asyncio.Event, supervisor: Supervisor, reloader: Reloader
    ) -> int:
        """The main loop until `stop`: readiness, status and watchdog for systemd, reloads,
        and giving up when no mailbox is usable. Returns the exit status."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=supervisor.tick_seconds)
                break
            except TimeoutError:
                pass
            if all(w.health.needs_human for w in self.watchers):
                log.error(
                    "daemon.no_healthy_mailbox",
                    errors={w.mailbox.name: w.health.last_error for w in self.watchers},
                )
                stop.set()
                return EXIT_NO_HEALTHY_MAILBOX
            if reload.is_set():
                reload.clear()
                supervisor.reloading()
                supervisor.reloaded(await asyncio.to_thread(reloader.reload))
                self.preparer = reloader.preparer  # the one closed at the end
            reloader.close_retired()
            await supervisor.tick(lambda: outbox_waiting(self.db))
        return EXIT_OK

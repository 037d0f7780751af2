"""Watches one mailbox: fetch what is new, run the pipeline, mark it, wait for more.

One thread and one IMAP connection per mailbox. The cycle is:
    repair keywords a crash left unset -> fetch new UIDs in batches -> pipeline (commits)
    -> set keywords -> append copies of sent mail to Sent -> IDLE (or poll) -> again.
Database commit always comes before touching IMAP flags, so a crash in between is
repaired at the next cycle from the mailbox's keyword mark (every recorded message up to
it has its keyword), and reprocessing is a no-op.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from daemon.config import MailboxConfig
from daemon.mail.values import Outcome, Result
from daemon.mailbox.imap import ImapError, ImapPermanent, ImapSession
from daemon.mailbox.labels import LABEL_SCAN_SECONDS, LabelFolders
from daemon.mailbox.observe import Health, Unobserved, WatchObserver
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import Batch
from models import cases, outbox, status
from models.database import DatabaseError

log = structlog.get_logger("candour.watcher")

PERMANENT_RETRY_SECONDS = 300.0
HEALTHY_SESSION_SECONDS = 60.0
ANALYZE_FIRST_AT = 1000  # messages recorded before the first refresh of planner statistics
PREPARE_AHEAD = 2
FIRST_BATCH = 50  # batches handed to the preparer beyond the one being recorded
HOST = f"{socket.gethostname()[:60]}:{os.getpid()}"  # who saw a mailbox through
FRESH_CHECK_SECONDS = 1.0  # during a backlog, how often to look for mail newer than it


class MailboxWatcher:
    def __init__(
        self,
        triage: Triage,
        password: str,
        on_queued: Callable[[], None] = lambda: None,
        batch_size: int = 200,
    ) -> None:
        self.triage = triage
        self.mailbox: MailboxConfig = triage.mailbox
        self.imap = ImapSession(self.mailbox.imap, password)
        self.on_queued = on_queued
        self.batch_size = batch_size
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.health = Health()
        self.observer: WatchObserver = Unobserved()
        self._sent_folder: str | None = None
        self.labels = LabelFolders()
        self._backoff = wait_exponential_jitter(initial=1, max=120, jitter=1)
        self._analyze_at = ANALYZE_FIRST_AT
        self._fresh_after, self._fresh_checked = 0, 0.0  # see _fresh_first
        # The loop's last sign of life (monotonic), for the systemd watchdog
        # (daemon.service.notify): beaten while working, idling and backing off.
        self.beat_at = time.monotonic()
        self.running = False
        self._reload_lock = threading.Lock()
        self._next_triage: Triage | None = None

    def beat(self) -> None:
        self.beat_at = time.monotonic()

    def reload(self, triage: Triage) -> None:
        """Use `triage` (a reloaded configuration) from the next cycle on: never in the
        middle of one, whose batches belong to the old preparer."""
        with self._reload_lock:
            self._next_triage = triage

    @property
    def reload_pending(self) -> bool:
        return self._next_triage is not None

    def _adopt_reload(self) -> None:
        with self._reload_lock:
            triage, self._next_triage = self._next_triage, None
        if triage is not None:
            self.triage, self.mailbox = triage, triage.mailbox

    # -- one cycle ------------------------------------------------------------------------

    def _outcome_keyword(self, outcome: str) -> str:
        imap = self.mailbox.imap
        return imap.quarantine_keyword if outcome == Outcome.QUARANTINED else imap.triaged_keyword

    def _set_keywords(
        self, uidvalidity: int, pairs: list[tuple[int, str]], after: int, through: int
    ) -> None:
        """Set the keywords of messages recorded with after < UID <= through, then move the
        mailbox's keyword mark to `through` (one row, not one per message)."""
        self._add_keywords(pairs)
        with self.triage.db.transaction() as session:
            cases.keywords_set(session, self.mailbox.name, uidvalidity, after, through)

    def _add_keywords(self, pairs: list[tuple[int, str]]) -> None:
        by_keyword: dict[str, list[int]] = {}
        for uid, outcome in pairs:
            by_keyword.setdefault(self._outcome_keyword(outcome), []).append(uid)
        for keyword, uids in by_keyword.items():
            self.imap.add_keyword(uids, keyword)

    def repair_keywords(self, uidvalidity: int) -> None:
        """Set the keywords a crash (or a failed STORE) left unset, up to the cursor."""
        with self.triage.db.reader() as session:
            backlog = cases.keyword_backlog(session, self.mailbox.name, uidvalidity)
        if backlog.last_uid > backlog.mark:
            if backlog.pending:
                log.info(
                    "imap.keywords_repaired", mailbox=self.mailbox.name, count=len(backlog.pending)
                )
            self._set_keywords(uidvalidity, backlog.pending, backlog.mark, backlog.last_uid)

    def process_new(self) -> int:
        """Fetch and triage everything new in the folder. Returns how many were processed.

        Pipelined: up to PREPARE_AHEAD batches are fetched and handed to the preparer
        (parse, classify: in a child process) before the oldest is recorded, so the child
        always has the next batch when it finishes one, and recording overlaps preparing.
        """
        state = self.imap.state
        assert state is not None
        with self.triage.db.reader() as session:
            after = cases.last_uid(session, self.mailbox.name, state.uidvalidity)
        uids = self.imap.new_uids(after)
        if not uids:
            return 0
        self._fresh_after, self._fresh_checked = uids[-1], time.monotonic()
        live = len(uids) < FIRST_BATCH  # a few new messages, not a backlog
        if not live:
            self._synced(len(uids))
        preparer = self.triage.preparer
        waiting: deque[Batch] = deque()
        done, mark = 0, after  # the keywords are set up to `mark`
        # A small first batch: the first rows are recorded while the next batches prepare.
        first = min(FIRST_BATCH, self.batch_size)
        starts = [0, *range(first, len(uids), self.batch_size)]
        ends = [*starts[1:], len(uids)]
        for start, end in zip(starts, ends, strict=True):
            self.beat()
            raws = list(self.imap.fetch(uids[start:end]))
            if not raws:
                continue
            waiting.append(preparer.submit(raws, self.mailbox.own_addresses))
            if len(waiting) > PREPARE_AHEAD:
                batch = waiting.popleft()
                mark = self._record(state.uidvalidity, batch, mark, live)
                done += len(batch.raws) + self._fresh_first(state.uidvalidity)
                self._synced(max(len(uids) - done, 1))
                if self.stop.is_set():
                    # SIGTERM, or the lease went to another worker: the batch in hand is
                    # recorded; those prepared ahead are left for the next pass (or owner).
                    return done
        while waiting and not self.stop.is_set():
            batch = waiting.popleft()
            mark = self._record(state.uidvalidity, batch, mark, live)
            done += len(batch.raws) + self._fresh_first(state.uidvalidity)
        return done

    def _fresh_first(self, uidvalidity: int) -> int:
        """During a backlog, record mail that arrived after it began ahead of the rest of
        it, so that a new complaint does not wait behind 10,000 old ones. Looked for at most
        every FRESH_CHECK_SECONDS (one UID SEARCH); recorded without moving the cursor
        (Triage.record_batch), keywords set without moving the mark: the backlog below is
        recorded as before, and after a crash the fresh ones are known as recorded."""
        if time.monotonic() - self._fresh_checked < FRESH_CHECK_SECONDS:
            return 0
        self._fresh_checked = time.monotonic()
        fresh = self.imap.new_uids(self._fresh_after)[: self.batch_size]
        if not fresh:
            return 0
        preparer = self.triage.preparer
        batch = preparer.submit(list(self.imap.fetch(fresh)), self.mailbox.own_addresses)
        prepared = preparer.result(batch)
        with structlog.contextvars.bound_contextvars(mailbox=self.mailbox.name):
            results = self.triage.record_batch(uidvalidity, prepared, advance=False)
        self._queued(results, first=True)
        self._add_keywords([(r.uid, r.outcome.value) for r in results])
        self._count(results)
        log.info("backlog.fresh_first", mailbox=self.mailbox.name, count=len(results))
        return len(results)

    def _record(self, uidvalidity: int, batch: Batch, after: int, first: bool) -> int:
        """Record a prepared batch (its UIDs all above `after`), then wake the outbox and
        set the IMAP keywords. Returns the batch's highest UID."""
        prepared = self.triage.preparer.result(batch)
        self.beat()
        with structlog.contextvars.bound_contextvars(mailbox=self.mailbox.name):
            results = self.triage.record_batch(uidvalidity, prepared)
        self._queued(results, first=first)
        through = max(raw.uid for raw in batch.raws)
        self._set_keywords(uidvalidity, [(r.uid, r.outcome.value) for r in results], after, through)
        self._count(results)
        return through

    def _queued(self, results: list[Result], first: bool) -> None:
        """Wake the outbox for what recording queued (acknowledgements, staff copies,
        relays); with `first`, that mail goes out ahead of a backlog's: fresh mail found
        during a backlog, and live mail (a pass of a few messages) while the outbox still
        works off a backlog's acknowledgements."""
        if not any(r.outcome != Outcome.DUPLICATE for r in results):
            return
        if first:
            references = [r.reference for r in results if r.reference]
            with self.triage.db.transaction() as session:
                outbox.prioritise(session, self.mailbox.name, references)
        self.on_queued()

    def _synced(self, backlog: int = 0) -> None:
        """The mailbox was seen through (`backlog` new messages still waiting): for
        `candour status` (models.status.MailboxSync) and the metrics."""
        self.health.backlog = backlog
        with self.triage.db.transaction() as session:
            status.note_sync(session, self.mailbox.name, self.triage.clock.now(), backlog, HOST)
        if not backlog:
            self.observer.synced(self.mailbox.name)

    def _count(self, results: list[Result]) -> None:
        self.observer.recorded(self.mailbox.name, results)
        for r in results:
            self.health.outcomes[r.outcome.value] = self.health.outcomes.get(r.outcome.value, 0) + 1
        self.health.processed += len(results)
        if self.health.processed >= self._analyze_at:
            # The tables grew fast (a backlog): fresh planner statistics, at 1,000, 2,000,
            # 4,000... messages, so a few times per backlog and never again in steady state.
            self._analyze_at *= 2
            try:
                self.triage.db.refresh_statistics()
            except DatabaseError as exc:
                log.warning("database.analyze_failed", error=str(exc))

    def append_sent_copies(self) -> int:
        """Put copies of what was sent into the Sent folder so staff see them."""
        with self.triage.db.reader() as session:
            pending = outbox.pending_sent_copies(session, self.mailbox.name)
        if not pending:
            return 0
        if self._sent_folder is None:
            self._sent_folder = self.imap.sent_folder()
        self.imap.append_many(self._sent_folder, [raw for _, raw in pending])
        with self.triage.db.transaction() as session:
            outbox.mark_copies_done(session, [row_id for row_id, _ in pending])
        return len(pending)

    def apply_label_folders(self) -> int:
        """Relabel cases whose message staff moved into a label folder; returns how many."""
        return self.labels.apply(self.imap, self.triage, self.on_queued)

    def sync_once(self) -> int:
        """Connect if needed and do one full cycle except waiting; returns messages processed."""
        if not self.imap.connected:
            state = self.imap.connect()
            self.health.connected = True
            self.observer.connected(self.mailbox.name)
            log.info(
                "imap.connected",
                mailbox=self.mailbox.name,
                uidvalidity=state.uidvalidity,
                idle=state.supports_idle,
                keywords=state.keywords_allowed,
            )
        assert self.imap.state is not None
        self.repair_keywords(self.imap.state.uidvalidity)
        processed = self.process_new()
        self.append_sent_copies()
        self.apply_label_folders()
        if not self.stop.is_set():  # stopped mid-backlog: what is left stays recorded
            self._synced()
        return processed

    # -- forever --------------------------------------------------------------------------

    def _session(self) -> None:
        """Connect and cycle until stopped; raises ImapError when the connection fails."""
        started = time.monotonic()
        try:
            self._adopt_reload()
            self.sync_once()
            self.health.last_error, self.health.needs_human = None, False
            while not self.stop.is_set():
                # Re-issue IDLE well within the 29-minute limit (RFC 2177).
                limit = self.mailbox.imap.idle_renew_seconds
                if not (
                    self.imap.state and self.imap.state.supports_idle and self.mailbox.imap.idle
                ):
                    limit = self.mailbox.imap.poll_seconds
                if self.mailbox.imap.label_folders:
                    limit = min(limit, LABEL_SCAN_SECONDS)
                # Returns at once if woken while we were busy: no wake-up is ever lost.
                self.beat()
                self.imap.wait_for_change(limit, self.wake, self.stop, beat=self.beat)
                if self.stop.is_set():
                    break
                self.wake.clear()  # before the work, so a wake during it means "again"
                self._adopt_reload()
                self.process_new()
                self.append_sent_copies()
                if not self.stop.is_set():
                    self._synced()
                if self.labels.due():
                    self.apply_label_folders()
        except ImapError as exc:
            self.imap.close()
            self.health.connected = False
            if time.monotonic() - started > HEALTHY_SESSION_SECONDS:
                log.warning("imap.disconnected", mailbox=self.mailbox.name, error=str(exc))
                return  # a fresh backoff schedule: the session had been healthy
            raise
        finally:
            if self.stop.is_set():
                self.imap.close()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ImapPermanent):
            return PERMANENT_RETRY_SECONDS
        return float(self._backoff(state))

    def _sleep(self, seconds: float) -> None:
        """Back off, beating: a watcher waiting to reconnect is alive, not hung."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self.beat()
            self.stop.wait(min(1.0, left))  # a stop request cuts the backoff short

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        permanent = isinstance(error, ImapPermanent)
        self.health.last_error, self.health.needs_human = str(error), permanent
        log.error(
            "imap.unavailable" if not permanent else "imap.needs_attention",
            mailbox=self.mailbox.name,
            error=str(error),
            attempt=state.attempt_number,
            retry_in=round(state.upcoming_sleep, 1),
        )

    def run_forever(self) -> None:
        """Watch until `stop` is set, reconnecting with capped exponential backoff."""
        self.beat()
        self.running = True  # the watchdog expects beats from a running watcher only
        try:
            self._watch()
        finally:
            self.running = False

    def _watch(self) -> None:
        while not self.stop.is_set():
            retrying = Retrying(
                retry=retry_if_exception_type(ImapError),
                wait=self._wait,
                sleep=self._sleep,
                stop=lambda _state: self.stop.is_set(),
                before_sleep=self._before_sleep,
                reraise=True,
            )
            try:
                retrying(self._session)
            except ImapError:
                return  # only reached once stop is set
            except Exception as exc:
                self.imap.close()
                self.health.connected, self.health.last_error = (
                    False,
                    f"{type(exc).__name__}: {exc}",
                )
                log.exception("watcher.error", mailbox=self.mailbox.name)
                self._sleep(5.0)

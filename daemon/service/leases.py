"""The lease keeper: which mailboxes this worker watches when several workers share them.

On PostgreSQL every mailbox has a lease (models.leases): its holder renews it every
RENEW_SECONDS for LEASE, so a worker killed outright loses its mailboxes within LEASE and
another worker's next round takes them: within LEASE + RENEW_SECONDS (25 s) of the kill.
Each worker takes a fair share, at most ceil(mailboxes / live workers), and gives up what
it holds beyond it when another worker starts, so the workers spread the mailboxes. A
worker that finds its lease taken (it was stalled past LEASE) stops that watcher at once;
one that stops releases its leases after its watchers end, so another takes over at once.
On SQLite there is one worker (models.database.claim_single_worker): it holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from daemon.mailbox.watcher import MailboxWatcher
from models import leases
from models.database import Database
from models.leases import Lease

log = structlog.get_logger("candour.leases")

LEASE = timedelta(seconds=20)
RENEW_SECONDS = 5.0
STOP_SECONDS = 20.0  # how long a watcher given up may take to finish its batch


def fair_share(mailboxes: int, live_workers: int) -> int:
    """How many mailboxes one of `live_workers` workers may hold: all of them when alone."""
    return math.ceil(mailboxes / max(live_workers, 1))


@dataclass(frozen=True)
class Moves:
    """One round's decision: renew `keep`, release `shed`, try `free` for `wanted` more."""

    keep: tuple[str, ...]
    shed: tuple[str, ...]
    free: tuple[str, ...]
    wanted: int


def plan(
    mailboxes: Sequence[str],
    held: set[str],
    current: dict[str, Lease],
    me: str,
    now: datetime,
    live_workers: int,
) -> Moves:
    """What this worker should do with the leases, from what the database says: keep its
    fair share of what it holds, release the rest, and go for free or expired leases
    until it has its share. Pure."""
    share = fair_share(len(mailboxes), live_workers)
    mine = [m for m in mailboxes if m in held]
    free = tuple(
        m
        for m in mailboxes
        if m not in held
        and (m not in current or current[m].expires_at < now or current[m].holder == me)
    )
    return Moves(tuple(mine[:share]), tuple(mine[share:]), free, max(share - len(mine), 0))


class Watches(Protocol):
    """What the keeper starts and stops: one watcher per mailbox (Watching, or a test's)."""

    def start(self, mailbox: str) -> None: ...

    def stop(self, mailbox: str, wait: float) -> None: ...

    def running(self, mailbox: str) -> bool: ...


class Watching:
    """The watcher threads of the mailboxes this worker holds, one thread per mailbox."""

    def __init__(self, watchers: Sequence[MailboxWatcher]) -> None:
        self._watchers = {w.mailbox.name: w for w in watchers}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, mailbox: str) -> None:
        previous = self._threads.get(mailbox)
        if previous is not None and previous.is_alive():
            previous.join(STOP_SECONDS)  # given up a moment ago: let it end first
            if previous.is_alive():
                return  # still finishing a batch; the keeper's next round tries again
        watcher = self._watchers[mailbox]
        watcher.stop.clear()
        thread = threading.Thread(target=watcher.run_forever, name=f"watch-{mailbox}", daemon=True)
        self._threads[mailbox] = thread
        thread.start()

    def stop(self, mailbox: str, wait: float = 0.0) -> None:
        self._watchers[mailbox].stop.set()
        thread = self._threads.get(mailbox)
        if wait and thread is not None:
            thread.join(wait)

    def running(self, mailbox: str) -> bool:
        thread = self._threads.get(mailbox)
        return thread is not None and thread.is_alive()

    def stop_all(self, wait: float) -> None:
        """Stop every watcher, then wait up to `wait` seconds for each to finish."""
        for watcher in self._watchers.values():
            watcher.stop.set()
        for thread in self._threads.values():
            thread.join(wait)


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseKeeper:
    """Takes, renews and releases this worker's mailbox leases; starts and stops watchers
    to match. `worker` is this worker's id (replies.deliver.worker_id)."""

    def __init__(
        self,
        db: Database,
        worker: str,
        mailboxes: Sequence[str],
        watches: Watches | None = None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self.worker = worker
        self.mailboxes = list(mailboxes)
        self._watches = watches
        self._now = now
        self.shared = db.dialect == "postgresql"
        self.held: set[str] = set()
        self._renewed: dict[str, datetime] = {}

    def tick(self) -> None:
        """One round: renew, give up beyond the fair share, take free leases; start and
        stop watchers to match. A database error loses only the leases that expired."""
        if not self.shared:
            gained, lost = [m for m in self.mailboxes if m not in self.held], list[str]()
        else:
            now = self._now()
            try:
                gained, lost = self._round(now)
            except SQLAlchemyError as exc:
                log.warning("lease.round_failed", error=type(exc).__name__)
                gained = []
                lost = [m for m in self.held if self._renewed[m] + LEASE <= now]
        for mailbox in lost:
            self.held.discard(mailbox)
            if self._watches is not None:
                self._watches.stop(mailbox, 0.0)
            log.warning("lease.lost", mailbox=mailbox)
        for mailbox in gained:
            self.held.add(mailbox)
            log.info("lease.taken", mailbox=mailbox)
        if self._watches is not None:
            for mailbox in sorted(self.held):
                if not self._watches.running(mailbox):
                    self._watches.start(mailbox)

    def _round(self, now: datetime) -> tuple[list[str], list[str]]:
        """Returns (mailboxes gained, mailboxes lost to another worker)."""
        with self._db.transaction() as session:
            leases.present(session, self.worker, now, LEASE)
        with self._db.reader() as session:
            live = leases.live_workers(session, now)
            current = leases.leases(session)
        moves = plan(self.mailboxes, self.held, current, self.worker, now, live)
        lost = self._renew(moves.keep, now)
        for mailbox in moves.shed:
            self._give_up(mailbox)
        gained: list[str] = []
        with self._db.transaction() as session:
            for mailbox in moves.free:
                if len(gained) >= moves.wanted:
                    break
                if leases.acquire(session, mailbox, self.worker, now, LEASE):
                    gained.append(mailbox)
        self._renewed.update(dict.fromkeys(gained, now))
        return gained, lost

    def _renew(self, mailboxes: Sequence[str], now: datetime) -> list[str]:
        """Renew the leases on `mailboxes`; returns those another worker holds now."""
        lost: list[str] = []
        with self._db.transaction() as session:
            leases.present(session, self.worker, now, LEASE)
            for mailbox in mailboxes:
                if leases.acquire(session, mailbox, self.worker, now, LEASE):
                    self._renewed[mailbox] = now
                else:
                    lost.append(mailbox)
        return lost

    def _give_up(self, mailbox: str) -> None:
        """Stop watching `mailbox`, then release it: never two watchers on one mailbox."""
        if self._watches is not None:
            self._watches.stop(mailbox, STOP_SECONDS)
        self.held.discard(mailbox)
        with self._db.transaction() as session:
            leases.release(session, [mailbox], self.worker)
        log.info("lease.shared", mailbox=mailbox, why="beyond this worker's fair share")

    def take(self, mailbox: str) -> bool:
        """Try once for `mailbox`'s lease, with no fair share (`run --once`); returns
        whether this worker holds it now."""
        if self.shared:
            now = self._now()
            with self._db.transaction() as session:
                leases.present(session, self.worker, now, LEASE)
                if not leases.acquire(session, mailbox, self.worker, now, LEASE):
                    return False
            self._renewed[mailbox] = now
        self.held.add(mailbox)
        return True

    async def run(self, stop: asyncio.Event, take: bool = True) -> None:
        """Every RENEW_SECONDS until `stop`: a full round (`take`), or only renew what is
        held (`run --once`, which takes mailboxes one by one as it goes)."""
        while not stop.is_set():
            try:
                if take:
                    await asyncio.to_thread(self.tick)
                elif self.shared:
                    await asyncio.to_thread(self._renew, sorted(self.held), self._now())
            except Exception:
                log.exception("lease.error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RENEW_SECONDS)

    def release_all(self) -> None:
        """Release every lease held, so another worker takes over at once (after this
        worker's watchers have stopped)."""
        held, self.held = sorted(self.held), set()
        if self.shared:
            with self._db.transaction() as session:
                leases.release(session, held, self.worker)
                leases.absent(session, self.worker)  # the others' fair share grows now
            log.info("lease.released", mailboxes=held)

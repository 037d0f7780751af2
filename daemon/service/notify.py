"""Tells systemd how the daemon is: sd_notify datagrams (READY, STATUS, WATCHDOG, STOPPING).

The protocol (sd_notify(3)) is one AF_UNIX datagram of `KEY=value` lines to the socket
named by $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'); with no
$NOTIFY_SOCKET every call here is a no-op, so `candour run` behaves the same outside
systemd. It is a stable, documented interface of a few lines, so it is written here rather
than pulled in (`sdnotify` is unmaintained since 2017; `systemd-python` needs libsystemd
headers and a compiler to install).

WATCHDOG=1 is never sent by a timer of its own: the loops that would stop if stuck (each
mailbox watcher, the outbox delivery loop) beat a monotonic heartbeat, and `Supervisor`
pings only while every one of them has beaten within half the watchdog interval. A watcher
backing off after an IMAP failure beats while it waits; a hung thread does not, and
systemd then restarts the service.

Log events: notify.failed (once), service.ready, watchdog.stale.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError

from daemon.mailbox.watcher import MailboxWatcher
from models.database import Database, DatabaseError
from models.status import outbox_status

log = structlog.get_logger("candour.notify")

STATUS_SECONDS = 5.0  # how often STATUS= is refreshed
TICK_SECONDS = 1.0  # the main loop's pace: READY soon after the first login
DELIVERY_IDLE_SECONDS = 30.0  # the outbox loop's own pace when nothing wakes it


# -- pure helpers -------------------------------------------------------------------------


def notify_address(value: str | None) -> str | None:
    """The address to send to for a $NOTIFY_SOCKET value, or None when there is none.

    '@name' is Linux's abstract namespace (a leading NUL byte); other values that are not
    absolute paths (e.g. systemd 254's "vsock:") are not supported and give None.
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def watchdog_seconds(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval systemd asks this process for, or None when it asks for none.

    As sd_watchdog_enabled(3): WATCHDOG_USEC must be a positive whole number of
    microseconds, and WATCHDOG_PID, when set, must name this process (a child inheriting
    the environment is not the one being watched).
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    watched = environ.get("WATCHDOG_PID")
    if watched is not None and (not watched.isdigit() or int(watched) != pid):
        return None
    return int(usec) / 1_000_000


def stale_loops(beats: Mapping[str, float], now: float, limit: float) -> list[str]:
    """The loops whose last heartbeat (monotonic seconds) is older than `limit`, sorted."""
    return sorted(name for name, at in beats.items() if now - at > limit)


@dataclass(frozen=True)
class Snapshot:
    """What STATUS= says about the running daemon."""

    watched: int
    connected: tuple[str, ...]
    recorded: int  # messages recorded since this process started
    outbox_waiting: int | None  # None when the database could not be asked
    note: str = ""  # e.g. "reloaded", "reload refused: ..."
    backlog: int = 0  # new messages still waiting in the mailboxes being worked through


def status_text(snapshot: Snapshot) -> str:
    """One line for `systemctl status`: mailboxes, what was recorded, the outbox."""
    connected = len(snapshot.connected)
    text = (
        f"{snapshot.watched} mailbox{'es' if snapshot.watched != 1 else ''} watched, "
        f"{connected} connected; {snapshot.recorded} message"
        f"{'s' if snapshot.recorded != 1 else ''} recorded since start; outbox "
        + ("unknown" if snapshot.outbox_waiting is None else f"{snapshot.outbox_waiting} waiting")
    )
    if snapshot.backlog:
        text += f"; backlog {snapshot.backlog} waiting"
    if snapshot.note:
        text += f"; {snapshot.note}"
    return " ".join(text.split())  # one line: a newline would end the STATUS= field


def ready_status(mailbox: str) -> str:
    return f"ready: logged in to mailbox {mailbox}"


# -- the socket ---------------------------------------------------------------------------


class Notifier:
    """Sends sd_notify datagrams; does nothing when $NOTIFY_SOCKET is unset."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = notify_address(env.get("NOTIFY_SOCKET"))
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `fields` (each "KEY=value") as one datagram; True when it was sent.

        Never raises: systemd gone away must not stop complaint intake.
        """
        if self.address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("notify.failed", error=str(exc))
            return False
        return True


# -- the daemon's side --------------------------------------------------------------------


def outbox_waiting(db: Database) -> int | None:
    """How many outgoing messages wait to be sent, or None when the database cannot say."""
    try:
        with db.reader() as session:
            return outbox_status(session).by_status.get("pending", 0)
    except (DatabaseError, SQLAlchemyError):
        return None


class Heartbeat:
    """A loop's last sign of life: monotonic seconds, written by the loop alone."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def beat(self) -> None:
        self.at = time.monotonic()


def beating_clock(heartbeat: Heartbeat, now: Callable[[], datetime]) -> Callable[[], datetime]:
    """`now`, beating `heartbeat` on every read. The outbox loop reads its clock on every
    pass, at every claim and at every batch it records, so its reads are its heartbeat."""

    def read() -> datetime:
        heartbeat.beat()
        return now()

    return read


class Supervisor:
    """Readiness, status and watchdog for `Worker.run_forever`, driven by its main loop."""

    def __init__(
        self,
        watchers: Sequence[MailboxWatcher],
        delivery: Heartbeat,
        notifier: Notifier | None = None,
        watchdog: float | None = None,
    ) -> None:
        self.watchers = watchers
        self.delivery = delivery
        self.notifier = notifier or Notifier()
        self.watchdog = watchdog
        self.ready = False
        self.note = ""
        self._status_at = float("-inf")
        self._pinged_at = float("-inf")
        self._stale: list[str] = []
        self._idle_before = False

    @classmethod
    def from_environ(cls, watchers: Sequence[MailboxWatcher], delivery: Heartbeat) -> Supervisor:
        return cls(watchers, delivery, Notifier(), watchdog_seconds(os.environ, os.getpid()))

    def handle_signals(
        self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, reload: asyncio.Event
    ) -> None:
        """SIGTERM and SIGINT: STOPPING=1 at once, then `stop`. SIGHUP: `reload`."""

        def stopping() -> None:
            self.stopping()
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        loop.add_signal_handler(signal.SIGHUP, reload.set)

    @property
    def tick_seconds(self) -> float:
        """How often the main loop should call `tick`."""
        return TICK_SECONDS if self.watchdog is None else min(TICK_SECONDS, self.watchdog / 4)

    @property
    def delivery_idle_seconds(self) -> float:
        """The outbox loop's idle pass: often enough to beat within half the interval."""
        if self.watchdog is None:
            return DELIVERY_IDLE_SECONDS
        return min(DELIVERY_IDLE_SECONDS, self.watchdog / 4)

    def beats(self) -> dict[str, float]:
        found = {f"watcher:{w.mailbox.name}": w.beat_at for w in self.watchers if w.running}
        found["delivery"] = self.delivery.at
        return found

    def snapshot(self, outbox_waiting: int | None) -> Snapshot:
        return Snapshot(
            watched=len(self.watchers),
            connected=tuple(w.mailbox.name for w in self.watchers if w.health.connected),
            recorded=sum(w.health.processed for w in self.watchers),
            outbox_waiting=outbox_waiting,
            note=self.note,
            backlog=sum(w.health.backlog for w in self.watchers),
        )

    async def tick(self, outbox_waiting: Callable[[], int | None]) -> None:
        """READY once a mailbox is logged in, STATUS every few seconds, WATCHDOG while
        every loop beats. `outbox_waiting` (blocking) is asked, in a thread, only when
        STATUS is due."""
        now = time.monotonic()
        if not self.ready:
            self._become_ready()
        if self.ready and now - self._status_at >= STATUS_SECONDS:
            self._status_at = now
            waiting = await asyncio.to_thread(outbox_waiting)
            self.notifier.send(f"STATUS={status_text(self.snapshot(waiting))}")
        self._watchdog(time.monotonic())

    def _become_ready(self) -> None:
        """READY=1 at the first IMAP login. A worker that watches no mailbox (on PostgreSQL
        other workers may hold every lease) is ready on its second look: nothing to log in to."""
        first = next((w.mailbox.name for w in self.watchers if w.health.connected), None)
        idle = not any(w.running for w in self.watchers)
        if first is None and not (idle and self._idle_before):
            self._idle_before = idle
            return
        status = ready_status(first) if first else "ready: standby, watching no mailbox"
        self.ready = True
        self.notifier.send("READY=1", f"STATUS={status}")
        log.info("service.ready", mailbox=first)

    def _watchdog(self, now: float) -> None:
        if self.watchdog is None:
            return
        stale = stale_loops(self.beats(), now, self.watchdog / 2)
        if stale != self._stale and stale:
            log.error("watchdog.stale", loops=stale, limit=self.watchdog / 2)
        self._stale = stale
        if not stale and now - self._pinged_at >= self.watchdog / 4:
            self._pinged_at = now
            self.notifier.send("WATCHDOG=1")

    def reloading(self) -> None:
        """Before a reload; systemd waits for READY=1 again (`reloaded`)."""
        self.notifier.send(
            "RELOADING=1",
            f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
            "STATUS=reloading the configuration",
        )

    def reloaded(self, note: str) -> None:
        self.note = note
        self._status_at = float("-inf")  # the next tick says how the reload went
        self.notifier.send("READY=1", f"STATUS={note}")

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping: finishing in-flight work")

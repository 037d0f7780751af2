"""sd_notify: readiness, status, watchdog, reload and stop as systemd sees them.

The daemon runs as a process against the private Dovecot and an SMTP sink, with a real
AF_UNIX datagram socket as $NOTIFY_SOCKET, as systemd would give it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from daemon.config import parse_config
from daemon.service.notify import (
    Notifier,
    Snapshot,
    notify_address,
    stale_loops,
    status_text,
    watchdog_seconds,
)
from daemon.service.reload import effective, needs_restart
from tests.conftest import REPO, Setup, make_mail, wait_until
from tests.mailstack import free_port, write_config

# -- pure helpers -------------------------------------------------------------------------


def test_notify_address_takes_paths_and_abstract_names_only() -> None:
    assert notify_address(None) is None
    assert notify_address("") is None
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@candour/notify") == "\0candour/notify"
    assert notify_address("vsock:2:1234") is None
    assert notify_address("relative/path") is None


def test_watchdog_follows_sd_watchdog_enabled() -> None:
    assert watchdog_seconds({}, 10) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "60000000"}, 10) == 60.0
    assert watchdog_seconds({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "10"}, 10) == 60.0
    # Meant for another process (a parent that exec'd us without clearing it): not ours.
    assert watchdog_seconds({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "11"}, 10) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "0"}, 10) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "soon"}, 10) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "-5"}, 10) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "5", "WATCHDOG_PID": "x"}, 10) is None


def test_stale_loops_are_those_silent_beyond_the_limit() -> None:
    beats = {"watcher:main": 100.0, "watcher:hr": 69.0, "delivery": 95.0}
    assert stale_loops(beats, now=100.0, limit=30.0) == ["watcher:hr"]
    assert stale_loops(beats, now=100.0, limit=31.0) == []
    assert stale_loops({}, now=100.0, limit=1.0) == []


def test_status_text_is_one_line_with_the_figures() -> None:
    text = status_text(Snapshot(2, ("main",), 1, 3))
    assert text == (
        "2 mailboxes watched, 1 connected; 1 message recorded since start; outbox 3 waiting"
    )
    unknown = status_text(Snapshot(1, (), 12, None, note="reload refused:\nbad file"))
    assert unknown == (
        "1 mailbox watched, 0 connected; 12 messages recorded since start; outbox unknown; "
        "reload refused: bad file"
    )
    busy = status_text(Snapshot(1, ("main",), 200, 40, backlog=9800))
    assert busy.endswith("outbox 40 waiting; backlog 9800 waiting")


def _config(
    organisation: str = "Example Trust", also: dict[str, object] | None = None, **imap: object
) -> dict[str, object]:
    return {
        "database": {"url": "sqlite:////tmp/one.db"},
        "smtp": {"host": "127.0.0.1"},
        "mailbox": [
            {
                "name": "main",
                "address": "complaints@example.org",
                "organisation": organisation,
                "imap": {"host": "127.0.0.1", "username": "u", **imap},
            },
            *([also] if also else []),
        ],
    }


def test_a_reload_applies_mailbox_settings_and_keeps_what_needs_a_restart() -> None:
    old = parse_config(_config(), "old")
    new_data = _config("Reloaded Trust", poll_seconds=5)
    new_data["database"] = {"url": "sqlite:////tmp/two.db"}
    new = parse_config(new_data, "new")
    assert needs_restart(old, new) == ["database", "mailbox main: imap"]
    applied = effective(old, new)
    assert applied.mailbox[0].organisation == "Reloaded Trust"
    assert applied.mailbox[0].imap == old.mailbox[0].imap
    assert applied.database == old.database
    assert needs_restart(old, parse_config(_config("Other"), "same")) == []


def test_a_new_mailbox_needs_a_restart_and_is_not_watched_until_then() -> None:
    old = parse_config(_config(), "old")
    hr: dict[str, object] = {
        "name": "hr",
        "address": "hr@example.org",
        "organisation": "Example Trust",
        "imap": {"host": "127.0.0.1", "username": "hr"},
    }
    new = parse_config(_config(also=hr), "new")
    assert needs_restart(old, new) == ["mailbox (the list of mailboxes)"]
    assert [m.name for m in effective(old, new).mailbox] == ["main"]


# -- the socket ---------------------------------------------------------------------------


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket; keeps every datagram it gets."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.env_value = "@" + address[1:] if address.startswith("\0") else address
        self.received: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._lock:
                self.received.append((time.monotonic(), fields))

    def messages(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.received)

    def with_key(self, key: str, value: str | None = None) -> list[tuple[float, dict[str, str]]]:
        return [
            (at, m) for at, m in self.messages() if key in m and (value is None or m[key] == value)
        ]

    def wait(self, what: Callable[[], bool], timeout: float = 60.0, name: str = "") -> None:
        wait_until(what, timeout=timeout, what=name or "notification")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    # A short path: AF_UNIX paths are limited to 108 bytes, and pytest's tmp_path is long.
    sock = NotifySocket(f"/tmp/candour-notify-{os.getpid()}-{time.monotonic_ns()}")
    yield sock
    sock.close()
    Path(sock.env_value).unlink(missing_ok=True)


def test_notifier_sends_one_datagram_to_a_path_or_an_abstract_socket(
    notify_socket: NotifySocket,
) -> None:
    assert Notifier({"NOTIFY_SOCKET": notify_socket.env_value}).send("READY=1", "STATUS=up")
    notify_socket.wait(lambda: bool(notify_socket.with_key("READY")), timeout=5)
    assert notify_socket.messages()[0][1] == {"READY": "1", "STATUS": "up"}

    abstract = NotifySocket(f"\0candour-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        assert abstract.env_value.startswith("@")
        assert Notifier({"NOTIFY_SOCKET": abstract.env_value}).send("WATCHDOG=1")
        abstract.wait(lambda: bool(abstract.with_key("WATCHDOG", "1")), timeout=5)
    finally:
        abstract.close()


def test_notifier_without_a_socket_does_nothing_and_never_raises(tmp_path: Path) -> None:
    assert not Notifier({}).enabled
    assert Notifier({}).send("READY=1") is False
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.send("READY=1") is False  # systemd gone must not stop intake


# -- the daemon under a notify socket -----------------------------------------------------


class Daemon:
    """`candour run` as systemd starts it: NOTIFY_SOCKET and WATCHDOG_USEC set."""

    def __init__(self, config: Path, sock: NotifySocket, log: Path, watchdog_usec: int) -> None:
        env = {**os.environ, "NOTIFY_SOCKET": sock.env_value, "WATCHDOG_USEC": str(watchdog_usec)}
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,  # a file, not a pipe: a full pipe would block the daemon
            text=True,
            cwd=REPO,
            env=env,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._log.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)


def test_ready_after_login_status_watchdog_and_stopping(
    setup: Setup, notify_socket: NotifySocket, tmp_path: Path, daemons: list[Daemon]
) -> None:
    daemon = Daemon(setup.config_path, notify_socket, tmp_path / "daemon.log", 2_000_000)
    daemons.append(daemon)
    notify_socket.wait(lambda: bool(notify_socket.with_key("READY", "1")), name="READY=1")
    # READY=1 comes after the schema is current and the mailbox's login: both are logged.
    log_at_ready = daemon.log()
    assert '"event": "imap.connected"' in log_at_ready
    [(ready_at, ready)] = notify_socket.with_key("READY", "1")
    assert ready["STATUS"] == "ready: logged in to mailbox main"

    setup.append(make_mail(sender="Jane Citizen <jane.notify@example.net>")[0])
    setup.wait_outgoing(1)
    notify_socket.wait(
        lambda: any(
            "1 message recorded" in m["STATUS"] for _, m in notify_socket.with_key("STATUS")
        ),
        name="STATUS with the recorded message",
    )
    status = notify_socket.with_key("STATUS")[-1][1]["STATUS"]
    assert status.startswith("1 mailbox watched, 1 connected; 1 message recorded since start")
    assert "outbox 0 waiting" in status

    # With WATCHDOG_USEC=2 s an idle daemon pings about every half second, from its
    # loops' beats (the watcher's in IDLE, the outbox loop's).
    assert all(at > ready_at for at, _ in notify_socket.with_key("STATUS")[1:])
    idle_from = time.monotonic()
    time.sleep(3.0)
    pings = [at for at, _ in notify_socket.with_key("WATCHDOG", "1") if at > idle_from]
    assert len(pings) >= 4
    assert max(b - a for a, b in itertools.pairwise(pings)) < 1.5

    assert daemon.stop() == 0, daemon.log()[-3000:]
    stopping = notify_socket.with_key("STOPPING", "1")
    assert len(stopping) == 1
    assert "jane.notify@example.net" not in daemon.log()  # no addresses in the logs


def _silent_imap_server() -> tuple[socket.socket, int]:
    """A server that accepts connections and never says a word (a hung IMAP server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server, int(server.getsockname()[1])


def test_a_stuck_watcher_stops_the_watchdog_pings_until_it_moves_again(
    setup: Setup, notify_socket: NotifySocket, tmp_path: Path, daemons: list[Daemon]
) -> None:
    server, port = _silent_imap_server()
    try:
        write_config(
            setup.config_path,
            imap_port=port,
            user=setup.user,
            address=setup.address,
            smtp_port=setup.sink.port,
            db_url=f"sqlite:///{setup.db_path}",
            imap_timeout=4,
        )
        daemon = Daemon(setup.config_path, notify_socket, tmp_path / "daemon.log", 2_000_000)
        daemons.append(daemon)
        # The watcher waits 4 s for a greeting that never comes: stale after 1 s (half of
        # WATCHDOG_USEC), then it times out, backs off beating, and pings start again.
        wait_until(lambda: "imap.unavailable" in daemon.log(), timeout=60, what="timeout")
        time.sleep(2.0)
        pings = [at for at, _ in notify_socket.with_key("WATCHDOG", "1")]
        assert pings, "the watcher backing off is alive: pings resume"
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps, default=0.0) > 2.0, gaps  # the silence while it was stuck
        assert '"event": "watchdog.stale"' in daemon.log()
        assert not notify_socket.with_key("READY")  # never logged in: never ready
        assert daemon.stop() == 0
    finally:
        server.close()


def _rewrite(setup: Setup, organisation: str, poll_seconds: int = 1) -> None:
    text = setup.config_path.read_text()
    text = text.replace('organisation = "Example Trust"', f'organisation = "{organisation}"')
    text = text.replace("poll_seconds = 1", f"poll_seconds = {poll_seconds}")
    setup.config_path.write_text(text)


def test_sighup_reloads_the_configuration_and_refuses_a_broken_one(
    setup: Setup, notify_socket: NotifySocket, tmp_path: Path, daemons: list[Daemon]
) -> None:
    good = setup.config_path.read_text()
    daemon = Daemon(setup.config_path, notify_socket, tmp_path / "daemon.log", 20_000_000)
    daemons.append(daemon)
    notify_socket.wait(lambda: bool(notify_socket.with_key("READY", "1")), name="READY=1")
    setup.append(make_mail(sender="A Person <a.reload@example.net>")[0])
    [first] = setup.wait_outgoing(1)
    assert "Example Trust" in first.data.decode()

    # A new organisation name (applied) and a new IMAP poll interval (needs a restart).
    _rewrite(setup, "Reloaded Trust", poll_seconds=2)
    daemon.proc.send_signal(signal.SIGHUP)
    notify_socket.wait(lambda: len(notify_socket.with_key("READY", "1")) == 2, name="reloaded")
    [(reloading_at, reloading)] = notify_socket.with_key("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    (ready_at, ready) = notify_socket.with_key("READY", "1")[1]
    assert ready_at >= reloading_at
    assert ready["STATUS"] == "reloaded; needs a restart to apply: mailbox main: imap"
    assert '"event": "config.needs_restart"' in daemon.log()
    assert '"event": "classifier.loaded"' in daemon.log()  # the new preparer loaded it

    setup.append(make_mail(sender="B Person <b.reload@example.net>")[0])
    second = setup.wait_outgoing(2)[1]
    assert "Reloaded Trust" in second.data.decode()

    # A file that fails validation is refused and the daemon goes on with what it had.
    setup.config_path.write_text(good.replace("ack_within_working_days = 1", "ack_within = 1"))
    daemon.proc.send_signal(signal.SIGHUP)
    notify_socket.wait(lambda: len(notify_socket.with_key("READY", "1")) == 3, name="refused")
    refused = notify_socket.with_key("READY", "1")[2][1]["STATUS"]
    assert refused.startswith("reload refused")
    assert '"event": "config.reload_refused"' in daemon.log()
    assert "ack_within: unknown key" in daemon.log()  # the error names the key
    setup.append(make_mail(sender="C Person <c.reload@example.net>")[0])
    third = setup.wait_outgoing(3)[2]
    assert "Reloaded Trust" in third.data.decode()
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0, daemon.log()[-3000:]


# -- graceful stop ------------------------------------------------------------------------


class SlowSink:
    """An SMTP server that takes its time over DATA, counting what it started and finished."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started = 0
        self.finished = 0
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.started += 1
        await asyncio.sleep(self.delay)
        self.finished += 1
        return "250 OK"

    def __enter__(self) -> SlowSink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


def test_sigterm_while_sending_lets_in_flight_mail_finish(
    setup: Setup, notify_socket: NotifySocket, tmp_path: Path, daemons: list[Daemon]
) -> None:
    with SlowSink(delay=1.5) as sink:
        write_config(
            setup.config_path,
            imap_port=setup.dovecot.port,
            user=setup.user,
            address=setup.address,
            smtp_port=sink.port,
            db_url=f"sqlite:///{setup.db_path}",
        )
        daemon = Daemon(setup.config_path, notify_socket, tmp_path / "daemon.log", 20_000_000)
        daemons.append(daemon)
        notify_socket.wait(lambda: bool(notify_socket.with_key("READY", "1")), name="READY=1")
        for n in range(6):
            setup.append(make_mail(sender=f"Person {n} <p{n}.stop@example.net>")[0])
        wait_until(lambda: sink.started >= 1, what="a delivery under way")
        assert daemon.stop() == 0, daemon.log()[-3000:]
        assert notify_socket.with_key("STOPPING", "1")
        assert sink.finished == sink.started >= 1  # nothing cut off in the middle of DATA
    in_doubt = setup.cli("outbox", "list", "--status", "in_doubt").stdout
    assert in_doubt.strip() == "no outgoing mail in status in_doubt"
    sending = setup.cli("outbox", "list", "--status", "sending").stdout
    assert sending.strip() == "no outgoing mail in status sending"

"""Backlog ingest: the raw fetch+parse ceiling, and the daemon working through a backlog.

`raw_limit` fetches every message of a seeded INBOX with imapclient (BODY.PEEK[], 500 a
FETCH) and parses each with daemon.mail.parse.parse_message, doing nothing else: what one
process could reach if triage cost nothing. `run_backlog` starts the daemon on the same
messages and polls the database (rows in `message`, `outbox` rows `sent`) and the SMTP
sink until every message is recorded and every acknowledgement has arrived.

Two ways the backlog meets the daemon:
- cold ("run", "once"): it is in INBOX when the daemon starts, and the clock starts at
  the spawn: start-up (interpreter, imports, schema, preparer children, login) counts.
- burst: the daemon is already running, idle in IDLE, with one message behind it, when
  the whole backlog lands in INBOX in one IMAP MOVE from a staging folder (the morning
  after an outage of the mail server or the network, when the daemon stayed up). The
  clock starts at the MOVE.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.burst import release_backlog, stage_backlog, warm_up
from bench.cpu import CpuAccount, CpuBase, CpuMark
from bench.probe import DatabaseProbe, poll_interval
from bench.process import Daemon
from bench.stack import PASSWORD_ENV, Mailbox, Sink, write_config
from daemon.mail.parse import parse_message

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RawLimit:
    """Fetch+parse of the whole backlog in one thread: the ceiling for ingest."""

    messages: int
    seconds: float
    fetch_seconds: float
    parse_seconds: float
    # The same work in a new process, timed from spawn to exit (bench/raw_cold.py).
    cold_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def cold_rate(self) -> float:
        return self.messages / self.cold_seconds if self.cold_seconds else 0.0

    @property
    def fetch_rate(self) -> float:
        return self.messages / self.fetch_seconds if self.fetch_seconds else 0.0

    @property
    def parse_rate(self) -> float:
        return self.messages / self.parse_seconds if self.parse_seconds else 0.0


def raw_limit(mailbox: Mailbox, batch: int = 500, newest: int | None = None) -> RawLimit:
    """Fetch (BODY.PEEK[], `batch` a command) and parse every message in INBOX, or only
    the `newest` ones (after a burst run, INBOX also holds the warm-up message)."""
    client = mailbox.connect()
    fetching = parsing = 0.0
    count = 0
    try:
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search("ALL"))
        if newest is not None:
            uids = uids[-newest:] if newest > 0 else []
        started = time.perf_counter()
        for start in range(0, len(uids), batch):
            t0 = time.perf_counter()
            data = client.fetch(uids[start : start + batch], ["BODY.PEEK[]"])
            t1 = time.perf_counter()
            for item in data.values():
                parse_message(bytes(item[b"BODY[]"]))
                count += 1
            fetching += t1 - t0
            parsing += time.perf_counter() - t1
        total = time.perf_counter() - started
    finally:
        client.logout()
    return RawLimit(count, total, fetching, parsing)


def cold_raw_seconds(mailbox: Mailbox, messages: int, batch: int = 500) -> float | None:
    """Seconds from spawning `python -m bench.raw_cold` to its exit; None if it failed."""
    started = time.perf_counter()
    try:
        args = [str(mailbox.port), mailbox.user, PASSWORD_ENV, str(batch)]
        done = subprocess.run(
            [sys.executable, "-m", "bench.raw_cold", *args],
            capture_output=True,
            text=True,
            timeout=60 + messages / 50,
            cwd=REPO,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stdout.strip() != str(messages):
        return None
    return seconds


@dataclass
class BacklogRun:
    """One daemon run over a seeded backlog; times are seconds from process start, or
    for a burst from the MOVE that delivered the backlog."""

    database: str
    mode: str  # "run" (long-running, IDLE), "once", or "burst" (into a running daemon)
    messages: int
    raw_before: float  # the ceiling measured right before the run, and right after it
    cold_raw_rate: float = 0.0  # the raw limit from a cold start (RawLimit.cold_rate)
    raw_after: float | None = None
    completed: bool = False
    seconds: float = 0.0
    first_record_seconds: float | None = None
    recorded_seconds: float | None = None
    acks_expected: int = 0
    acks_received: int = 0
    sent_copies: int = 0
    exit_status: int | None = None
    exit_seconds: float | None = None
    peak_rss_mb: float = 0.0  # until every message was recorded and every ack sent
    peak_rss_with_shutdown_mb: float = 0.0  # the whole life of the process
    cpu_seconds: float = 0.0
    peak_rss_by_process: dict[str, float] = field(default_factory=dict)
    cpu_seconds_by_process: dict[str, float] = field(default_factory=dict)
    log_problems: dict[str, int] = field(default_factory=dict)
    # (seconds, messages recorded, RSS MB), about once a second
    timeline: list[tuple[float, int, float]] = field(default_factory=list)
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu_account: CpuAccount | None = None  # from start until every ack arrived
    note: str = ""

    def bracket(self, after: float) -> None:
        """Record the ceiling measured again after the run (see raw_rate)."""
        self.raw_after = after

    @property
    def raw_rate(self) -> float:
        """The ceiling this run is compared with: the mean time the ceiling took before and
        after it (the harmonic mean of the two rates), so that the machine's drift during a
        run counts for neither side; the one before until the one after is known."""
        if self.raw_before and self.raw_after:
            return 2 / (1 / self.raw_before + 1 / self.raw_after)
        return self.raw_before

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.completed and self.seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.raw_rate if self.raw_rate else 0.0

    @property
    def ratio_cold(self) -> float:
        """Against the raw limit from a cold start: both then pay a process start."""
        return self.rate / self.cold_raw_rate if self.cold_raw_rate else 0.0

    @property
    def rate_after_start(self) -> float:
        """Messages per second once the daemon was working: from its first recorded row.

        The raw limit pays no interpreter start, imports, schema check, preparer spawn or
        IMAP login; this is the like-for-like figure. `rate` (the target's) includes them.
        """
        if not self.completed or self.first_record_seconds is None:
            return 0.0
        working = self.seconds - self.first_record_seconds
        return self.messages / working if working > 0 else 0.0

    @property
    def ratio_after_start(self) -> float:
        return self.rate_after_start / self.raw_rate if self.raw_rate else 0.0

    @property
    def rss_growth_per_1000(self) -> float | None:
        """MB of RSS per 1,000 messages over the second half of the backlog (steady state).

        None for backlogs under 5,000: the daemon is still warming up (imports, caches).
        """
        points = [(n, mb) for _, n, mb in self.timeline if n >= self.messages // 2]
        if self.messages < 5000 or len(points) < 2 or points[-1][0] - points[0][0] < 2000:
            return None
        (n0, mb0), (n1, mb1) = points[0], points[-1]
        return 1000 * (mb1 - mb0) / (n1 - n0)


def run_backlog(
    *,
    mailbox: Mailbox,
    sink: Sink,
    db_url: str,
    database: str,
    messages: int,
    raw_rate: float,
    workdir: Path,
    cold_raw_rate: float = 0.0,
    once: bool = False,
    burst: bool = False,
    timeout: float = 600.0,
) -> BacklogRun:
    """Start the daemon on an already seeded mailbox and time it until all is done; with
    `burst`, start it on an empty INBOX and time it from the MOVE that delivers the
    backlog (see the module's docstring)."""
    if once and burst:
        raise ValueError("a burst needs the long-running daemon, not --once")
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir / "candour.toml", mailbox=mailbox, smtp_port=sink.port, db_url=db_url
    )
    mode = "once" if once else ("burst" if burst else "run")
    result = BacklogRun(database, mode, messages, raw_rate, cold_raw_rate)
    probe = DatabaseProbe(db_url)
    try:
        if burst:
            stage_backlog(mailbox)
        with Daemon(config, workdir / "daemon.log", once=once) as daemon:
            origin, before, base = daemon.started_at, 0, CpuBase()
            if burst:
                result.note = warm_up(daemon, mailbox, probe, sink, timeout=120.0)
                if result.note:
                    daemon.stop()
                    return result
                before = probe.progress().messages
                base, start = CpuBase.of(daemon), CpuMark.now()
                origin = release_backlog(mailbox)
            else:
                start = CpuMark.now()
            _watch(daemon, probe, sink, result, timeout, origin=origin, before=before)
            if result.completed:
                end, memory = CpuMark.now(), daemon.memory()
                by_role = base.since(memory.cpu_by_role)
                result.cpu_account = CpuAccount(
                    cores=os.cpu_count() or 1,
                    wall=round(end.at - start.at, 2),
                    busy=round(end.busy - start.busy, 1),
                    daemon=by_role.get("daemon", 0.0),
                    preparer=by_role.get("preparer", 0.0),
                    harness=round(end.own - start.own, 1),
                )
            if once and daemon.process is not None:
                try:
                    daemon.process.wait(max(60.0, timeout / 4))
                    result.exit_seconds = round(time.monotonic() - daemon.started_at, 3)
                except subprocess.TimeoutExpired:
                    result.note = "--once did not exit after its work was done"
            result.exit_status = daemon.stop()
            memory = daemon.memory()
            result.peak_rss_with_shutdown_mb = round(memory.peak_mb, 1)
            if not result.completed:
                result.peak_rss_mb = result.peak_rss_with_shutdown_mb
            result.cpu_seconds = round(memory.cpu_seconds - base.total, 2)
            result.peak_rss_by_process = dict(memory.peak_by_role)
            result.cpu_seconds_by_process = base.since(memory.cpu_by_role)
            result.log_problems = daemon.log_problems()
            if not result.completed:
                result.note = result.note or f"log tail: {daemon.log_tail(3)}"
        result.breakdown = probe.breakdown()
    finally:
        probe.close()
    return result


def _watch(
    daemon: Daemon,
    probe: DatabaseProbe,
    sink: Sink,
    result: BacklogRun,
    timeout: float,
    *,
    origin: float,
    before: int = 0,
) -> None:
    """Poll until every message is recorded and every acknowledgement delivered. Times
    are from `origin` (monotonic); `before` rows were in the database already."""
    deadline = origin + timeout
    next_mark = 0.0
    while True:
        exited = daemon.exit_status is not None
        now = time.monotonic() - origin
        progress = probe.progress()
        recorded = progress.messages - before
        received = sink.count
        if result.first_record_seconds is None and recorded > 0:
            result.first_record_seconds = round(now, 3)
        if result.recorded_seconds is None and recorded >= result.messages:
            result.recorded_seconds = round(now, 3)
        result.acks_expected, result.acks_received = progress.outbox, received
        result.sent_copies = progress.sent_copies
        if now >= next_mark:
            result.timeline.append((round(now, 1), recorded, round(daemon.memory().last_mb, 1)))
            next_mark += 1.0
        if (
            result.recorded_seconds is not None
            and progress.sent == progress.outbox
            and received >= progress.outbox
        ):
            result.completed, result.seconds = True, round(now, 3)  # as the other times
            result.peak_rss_mb = round(daemon.memory().peak_mb, 1)
            result.timeline.append((round(now, 1), recorded, round(daemon.memory().last_mb, 1)))
            return
        if exited:
            result.note = f"daemon exited ({daemon.exit_status}) before finishing"
            return
        if time.monotonic() > deadline:
            result.note = (
                f"timeout after {timeout:.0f} s: {recorded}/{result.messages} "
                f"recorded, {progress.sent}/{progress.outbox} sent"
            )
            return
        working = now - result.first_record_seconds if result.first_record_seconds else 0.0
        time.sleep(poll_interval(recorded, result.messages, working))

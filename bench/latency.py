"""Acknowledgement latency in steady state: APPEND one message at a time, time the ack.

The daemon runs long-running (IDLE) on an empty mailbox. After one warm-up message has
been acknowledged, new complaints from distinct senders are APPENDed at a steady rate
on one IMAP connection; each acknowledgement is matched to its complaint by In-Reply-To.
Latency = arrival at the SMTP sink minus the moment the APPEND was issued (same clock).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from bench.corpus import BenchMail, Corpus
from bench.process import Daemon
from bench.stack import Mailbox, Sink, write_config

WARM_UP_SECONDS = 60.0
SETTLE_SECONDS = 30.0


@dataclass
class LatencyResult:
    database: str
    rate: float  # messages appended per second
    appended: int = 0
    acknowledged: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    log_problems: dict[str, int] = field(default_factory=dict)
    note: str = ""


def fresh_complaints(seed: int) -> Iterator[BenchMail]:
    """New complaints (each earns an acknowledgement) from senders never seen before."""
    seen: set[str] = set()
    for mail in Corpus(seed=seed).take(10**7):
        if mail.kind == "complaint" and mail.sender not in seen:
            seen.add(mail.sender)
            yield mail


def _in_reply_to(data: bytes) -> str:
    value = BytesHeaderParser().parsebytes(data).get("In-Reply-To", "")
    return " ".join(str(value).split()).strip("<>")


def _ack_times(sink: Sink) -> dict[str, float]:
    return {_in_reply_to(m.data): m.at for m in sink.messages}


def _wait_for_ack(sink: Sink, message_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if message_id in _ack_times(sink):
            return True
        time.sleep(0.05)
    return False


def measure_latency(
    *,
    mailbox: Mailbox,
    sink: Sink,
    db_url: str,
    database: str,
    workdir: Path,
    count: int = 200,
    rate: float = 5.0,
    seed: int = 77,
) -> LatencyResult:
    """Append `count` complaints at `rate`/s to a running daemon; percentiles of ack time."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir / "candour.toml", mailbox=mailbox, smtp_port=sink.port, db_url=db_url
    )
    result = LatencyResult(database, rate)
    stream = fresh_complaints(seed)
    appended_at: dict[str, float] = {}
    with Daemon(config, workdir / "daemon.log") as daemon:
        client = mailbox.connect()
        try:
            warm_up = next(stream)
            client.append("INBOX", warm_up.raw)
            if not _wait_for_ack(sink, warm_up.message_id, WARM_UP_SECONDS):
                result.note = f"no acknowledgement of the warm-up message: {daemon.log_tail(3)}"
                return result
            started = time.monotonic()
            for index in range(count):
                # A fixed schedule, so a slow APPEND does not lower the offered rate.
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                mail = next(stream)
                appended_at[mail.message_id] = time.time()
                client.append("INBOX", mail.raw)
                if daemon.exit_status is not None:
                    result.note = f"daemon exited ({daemon.exit_status})"
                    break
        finally:
            with contextlib.suppress(Exception):
                client.logout()
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            if len(appended_at.keys() & _ack_times(sink).keys()) >= len(appended_at):
                break
            time.sleep(0.1)
        daemon.stop()
        memory = daemon.memory()
        result.peak_rss_mb = round(memory.peak_mb, 1)
        result.cpu_seconds = round(memory.cpu_seconds, 2)
        result.log_problems = daemon.log_problems()
    arrivals = _ack_times(sink)
    latencies = sorted(arrivals[m] - t for m, t in appended_at.items() if m in arrivals)
    result.appended, result.acknowledged = len(appended_at), len(latencies)
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        result.p50, result.p95, result.p99 = (round(cuts[i], 3) for i in (49, 94, 98))
        result.mean, result.max = round(statistics.fmean(latencies), 3), round(latencies[-1], 3)
    if result.acknowledged < result.appended:
        missing = result.appended - result.acknowledged
        result.note = (result.note + f" {missing} not acknowledged within the run").strip()
    return result

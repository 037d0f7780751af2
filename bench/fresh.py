"""Fresh mail during a backlog: how long a new complaint waits while 10,000 are worked off.

The daemon starts on a seeded INBOX (the morning after an outage). Once its first
acknowledgement has arrived (the backlog is under way), a new complaint is APPENDed every
`every` seconds from a separate IMAP connection until the backlog is done; each one's
latency is arrival of its acknowledgement at the SMTP sink minus the APPEND. The backlog
was still being worked off when a fresh complaint was acknowledged if acknowledgements of
backlog mail kept arriving after it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import Corpus
from bench.latency import _ack_times, fresh_complaints
from bench.process import Daemon
from bench.stack import Mailbox, Sink, seed, write_config

START_SECONDS = 120.0


@dataclass
class FreshResult:
    database: str
    backlog: int
    fresh: int = 0
    acknowledged: int = 0
    during_backlog: int = 0  # acknowledged while backlog acknowledgements still arrived
    latencies: list[float] = field(default_factory=list)
    backlog_seconds: float | None = None
    note: str = ""

    @property
    def p50(self) -> float | None:
        return round(statistics.median(self.latencies), 3) if self.latencies else None

    @property
    def max(self) -> float | None:
        return round(max(self.latencies), 3) if self.latencies else None


def measure_fresh(
    mailbox: Mailbox,
    sink: Sink,
    *,
    db_url: str,
    database: str,
    workdir: Path,
    backlog: int = 10_000,
    every: float = 3.0,
    seed_value: int = 20260105,
    timeout: float = 900.0,
    realistic: bool = True,
) -> FreshResult:
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(seed=seed_value, realistic=realistic)
    seed(mailbox, (m.raw for m in corpus.take(backlog)))
    config = write_config(
        workdir / "candour.toml", mailbox=mailbox, smtp_port=sink.port, db_url=db_url
    )
    result = FreshResult(database, backlog)
    stream = fresh_complaints(seed_value + 1)
    appended: dict[str, float] = {}
    with Daemon(config, workdir / "daemon.log") as daemon:
        began = time.monotonic()
        while sink.count < 1 and time.monotonic() - began < START_SECONDS:
            time.sleep(0.05)
        client = mailbox.connect()
        try:
            quiet_since, last_count = time.monotonic(), 0
            while time.monotonic() - began < timeout:
                mail = next(stream)
                appended[mail.message_id] = time.time()
                client.append("INBOX", mail.raw)
                time.sleep(every)
                count = len(_ack_times(sink).keys() - appended.keys())  # backlog acks
                if count == last_count and time.monotonic() - quiet_since > 2 * every:
                    break  # no backlog acknowledgement for a while: the backlog is done
                if count != last_count:
                    quiet_since, last_count = time.monotonic(), count
                if daemon.exit_status is not None:
                    result.note = f"daemon exited ({daemon.exit_status})"
                    break
        finally:
            with contextlib.suppress(Exception):
                client.logout()
        result.backlog_seconds = round(time.monotonic() - began, 1)
        daemon.stop()
    acks = _ack_times(sink)
    last_backlog_ack = max((at for mid, at in acks.items() if mid not in appended), default=0.0)
    for mid, at in appended.items():
        if mid in acks:
            result.latencies.append(round(acks[mid] - at, 3))
            result.during_backlog += acks[mid] < last_backlog_ack
    result.fresh, result.acknowledged = len(appended), len(result.latencies)
    return result


def main() -> None:
    import argparse
    import os
    import tempfile

    from bench.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=3.0)
    args = parser.parse_args()
    with Stack() as stack, stack.sink() as sink:
        workdir = Path(tempfile.mkdtemp(prefix="candour-fresh-"))
        os.chmod(workdir, 0o755)
        result = measure_fresh(
            stack.new_mailbox(),
            sink,
            db_url=f"sqlite:///{workdir}/candour.db",
            database="sqlite",
            workdir=workdir,
            backlog=args.backlog,
            every=args.every,
        )
        print(result, "p50", result.p50, "max", result.max)


if __name__ == "__main__":
    main()

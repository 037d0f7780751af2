"""Many mailboxes in one process: acknowledgement latency and memory at 50-200 mailboxes.

One private Dovecot serves N accounts; one daemon watches all N (one IDLE connection
each). Each mailbox first gets one complaint (so every watcher has handled mail and is
back in IDLE), then new complaints arrive on `active` of them, `gap` seconds apart, from
a separate IMAP connection. Latency = arrival at the SMTP sink minus the moment the
APPEND was issued. RSS is the peak of the daemon's process tree (daemon + preparer).
"""

from __future__ import annotations

import contextlib
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.latency import _ack_times, fresh_complaints
from bench.process import Daemon
from bench.stack import PASSWORD_ENV, Mailbox, Sink, Stack

FIRST_ROUND_SECONDS = 180.0
SETTLE_SECONDS = 30.0


@dataclass
class MailboxesResult:
    mailboxes: int
    active: int
    gap: float
    first_round_seconds: float | None = None
    appended: int = 0
    acknowledged: int = 0
    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    peak_rss_mb: float = 0.0
    rss_by_role: dict[str, float] = field(default_factory=dict)
    log_problems: dict[str, int] = field(default_factory=dict)
    server_warnings: list[str] = field(default_factory=list)
    note: str = ""


def config_text(mailboxes: list[Mailbox], smtp_port: int, db_url: str, state: Path) -> str:
    """A daemon configuration watching every mailbox (the tests' settings, info logging)."""
    tables = [
        f"""
[[mailbox]]
name = "{box.user}"
address = "{box.address}"
organisation = "Example Trust"
ack_within_working_days = 1
region = "ENG"

[mailbox.imap]
host = "127.0.0.1"
port = {box.port}
security = "none"
username = "{box.user}"
password_env = "{PASSWORD_ENV}"
idle_renew_seconds = 600
poll_seconds = 1
timeout = 60

[mailbox.reminders]
enabled = false
"""
        for box in mailboxes
    ]
    head = f"""
[daemon]
state_dir = "{state}"
log_level = "info"

[database]
url = "{db_url}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
"""
    return head + "".join(tables)


def _wait_for(sink: Sink, message_ids: set[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if message_ids <= _ack_times(sink).keys():
            return True
        time.sleep(0.1)
    return False


def measure_mailboxes(
    stack: Stack,
    sink: Sink,
    *,
    workdir: Path,
    count: int = 200,
    active: int = 25,
    gap: float = 0.3,
    seed: int = 91,
) -> MailboxesResult:
    """Run the daemon on `count` fresh mailboxes; latency of mail on `active` of them."""
    workdir.mkdir(parents=True, exist_ok=True)
    boxes = [stack.new_mailbox() for _ in range(count)]
    config = workdir / "candour.toml"
    config.write_text(config_text(boxes, sink.port, f"sqlite:///{workdir}/candour.db", workdir))
    active = min(active, count)
    result = MailboxesResult(count, active, gap)
    stream = fresh_complaints(seed)
    rng = random.Random(seed)
    with Daemon(config, workdir / "daemon.log") as daemon:
        started = time.monotonic()
        first: set[str] = set()
        for box in boxes:
            client = box.connect()
            try:
                mail = next(stream)
                client.append("INBOX", mail.raw)
                first.add(mail.message_id)
            finally:
                with contextlib.suppress(Exception):
                    client.logout()
        if not _wait_for(sink, first, FIRST_ROUND_SECONDS):
            result.note = f"first round not all acknowledged: {daemon.log_tail(3)}"
            return result
        result.first_round_seconds = round(time.monotonic() - started, 1)
        appended_at: dict[str, float] = {}
        clients = {box.user: box.connect() for box in rng.sample(boxes, active)}
        try:
            for client in clients.values():
                mail = next(stream)
                appended_at[mail.message_id] = time.time()
                client.append("INBOX", mail.raw)
                time.sleep(gap)
        finally:
            for client in clients.values():
                with contextlib.suppress(Exception):
                    client.logout()
        _wait_for(sink, set(appended_at), SETTLE_SECONDS)
        daemon.stop()
        memory = daemon.memory()
        result.peak_rss_mb = round(memory.peak_mb, 1)
        result.rss_by_role = {k: round(v, 1) for k, v in memory.peak_by_role.items()}
        result.log_problems = daemon.log_problems()
    arrivals = _ack_times(sink)
    latencies = sorted(arrivals[m] - t for m, t in appended_at.items() if m in arrivals)
    result.appended, result.acknowledged = len(appended_at), len(latencies)
    result.server_warnings = [f"{n}x {line}" for line, n in server_warnings(stack).items()]
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        result.p50, result.p99 = round(cuts[49], 3), round(cuts[98], 3)
        result.max = round(latencies[-1], 3)
    return result


def main() -> None:
    import argparse
    import os
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[200])
    parser.add_argument("--active", type=int, default=25)
    parser.add_argument("--gap", type=float, default=0.3)
    args = parser.parse_args()
    with Stack() as stack:
        for count in args.mailboxes:
            with stack.sink() as sink:
                workdir = Path(tempfile.mkdtemp(prefix=f"candour-mailboxes-{count}-"))
                os.chmod(workdir, 0o755)
                result = measure_mailboxes(
                    stack, sink, workdir=workdir, count=count, active=args.active, gap=args.gap
                )
                print(result)


def server_warnings(stack: Stack) -> dict[str, int]:
    """Distinct warnings in the private Dovecot's log (numbers masked), with counts."""
    log = stack.root / "dovecot.log"
    found: dict[str, int] = {}
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if "Warning" in line or "Error" in line or "Fatal" in line:
                key = re.sub(r"\d+", "N", line.split(": ", 1)[-1])[:200]
                found[key] = found.get(key, 0) + 1
    return found


if __name__ == "__main__":
    main()

"""Several workers on PostgreSQL under kill -9: nothing lost, nothing twice, takeover time.

Three `candour run` processes share a few mailboxes through their leases (a backlog of
`messages` spread over `mailboxes` INBOXes, and fresh complaints trickling in all the
while). At random moments, `kills` times, one worker holding a mailbox is killed with
SIGKILL and started again. For each kill: how long until every mailbox it held is held
by another worker (the lease table, polled). At the end, once the workers are idle:
- lost: messages in the INBOXes with no row in `message`, fresh complaints without an
  acknowledgement, and outbox rows still waiting;
- acknowledged twice: an acknowledgement of one message received twice by the sink (by
  recipient and In-Reply-To), or any outgoing Message-ID received twice;
- in_doubt: outbox rows a killed worker left mid-send (never resent, by design).

`python -m bench.workers` runs it alone; bench.run runs it unless --no-workers.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from bench.corpus import Corpus
from bench.latency import fresh_complaints
from bench.mailboxes import config_text
from bench.stack import PASSWORD, PASSWORD_ENV, Mailbox, Sink, Stack, postgres_database
from bench.stack import seed as seed_mailbox

REPO = Path(__file__).resolve().parent.parent
TAKEOVER_LIMIT = 30.0  # seconds: what the lease design promises (20 s lease, 5 s rounds)
SETTLE_TIMEOUT = 900.0


@dataclass
class WorkersResult:
    workers: int
    mailboxes: int
    backlog: int
    kills: int
    fresh: int = 0
    recorded: int = 0
    lost: int = 0
    unsent: int = 0
    acknowledged_twice: int = 0
    sent_twice: int = 0
    in_doubt: int = 0
    takeovers: list[float] = field(default_factory=list)
    seconds: float = 0.0
    settled: bool = False
    note: str = ""

    @property
    def max_takeover(self) -> float | None:
        return max(self.takeovers) if self.takeovers else None

    @property
    def ok(self) -> bool:
        return (
            self.settled
            and self.lost == self.unsent == self.acknowledged_twice == self.sent_twice == 0
            and (self.max_takeover or 0.0) <= TAKEOVER_LIMIT
        )


class Pool:
    """The worker processes, each logging to its own file, always stopped at the end."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config, self.workdir = config, workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.workdir / f"worker-{len(self.processes)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "run", "--config", str(self.config)],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops them
                env={**os.environ, PASSWORD_ENV: PASSWORD},
            )
        self.processes.append(process)
        return process

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def stop(self) -> None:
        for process in self.alive():
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _holders(engine: Engine) -> dict[str, int]:
    """Each mailbox with a live lease, and the pid of the worker holding it."""
    with contextlib.suppress(Exception), engine.connect() as connection:
        rows = connection.execute(
            text("SELECT mailbox, holder FROM mailbox_lease WHERE expires_at >= now()")
        ).all()
        return {str(m): int(str(h).split(":")[1]) for m, h in rows}
    return {}


def _kill_and_time(pool: Pool, engine: Engine, rng: random.Random) -> float | None:
    """SIGKILL a random worker holding a mailbox, restart it; returns the seconds until
    each of its mailboxes was held by another worker (None: it held nothing)."""
    held = _holders(engine)
    pids = {p.pid: p for p in pool.alive()}
    holding = sorted({pid for pid in held.values() if pid in pids})
    if not holding:
        return None
    victim = pids[rng.choice(holding)]
    orphaned = {m for m, pid in held.items() if pid == victim.pid}
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait(10)
    pool.start()  # as systemd's Restart= would, at once
    while time.monotonic() - killed < 3 * TAKEOVER_LIMIT:
        now = _holders(engine)
        if all(m in now and now[m] != victim.pid for m in orphaned):
            return round(time.monotonic() - killed, 1)
        time.sleep(0.2)
    return round(time.monotonic() - killed, 1)  # not taken over: over the limit, reported


def _trickle(boxes: list[Mailbox], stop: threading.Event, sent: list[str], seed: int) -> None:
    """Fresh complaints, one a second into a random mailbox, until `stop`."""
    rng = random.Random(seed)
    clients = {box.user: box.connect() for box in boxes}
    stream = fresh_complaints(seed + 1)  # not the backlog's stream: no duplicates of it
    try:
        while not stop.wait(1.0):
            mail = next(stream)
            clients[rng.choice(boxes).user].append("INBOX", mail.raw)
            sent.append(mail.message_id)
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.logout()


_PROGRESS = text(
    "SELECT (SELECT count(*) FROM message),"
    " (SELECT count(*) FROM outbox WHERE status IN ('pending', 'claimed', 'sending')),"
    " (SELECT count(*) FROM outbox WHERE status = 'in_doubt'),"
    " (SELECT coalesce(sum(last_uid), 0) FROM imap_cursor)"
)


def _inbox_total(boxes: list[Mailbox]) -> int:
    """Messages in all the INBOXes (nothing is expunged: UIDs run 1..N in each)."""
    total = 0
    for box in boxes:
        client = box.connect()
        try:
            total += int(client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"])
        finally:
            with contextlib.suppress(Exception):
                client.logout()
    return total


def _settle(engine: Engine, inbox: int, timeout: float) -> tuple[bool, int, int, int]:
    """Wait until every mailbox's cursor is past its last message and the outbox has
    nothing waiting; returns (settled, recorded, waiting, in_doubt)."""
    deadline = time.monotonic() + timeout
    recorded = waiting = doubt = 0
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            recorded, waiting, doubt, through = connection.execute(_PROGRESS).one()
        if through >= inbox and waiting == 0:
            time.sleep(3.0)  # a last round of sent copies and keywords
            return True, recorded, waiting, doubt
        time.sleep(1.0)
    return False, recorded, waiting, doubt


def _duplicates(sink: Sink) -> tuple[int, int]:
    """(acknowledgements received twice, outgoing Message-IDs received twice)."""
    parser = BytesHeaderParser()
    acks: Counter[tuple[str, str]] = Counter()
    ids: Counter[str] = Counter()
    for message in sink.messages:
        headers = parser.parsebytes(message.data)
        ids[str(headers.get("Message-ID", ""))] += 1
        if str(headers.get("Auto-Submitted", "")).startswith("auto-replied"):
            reply_to = " ".join(str(headers.get("In-Reply-To", "")).split())
            acks[(",".join(message.rcpt_tos), reply_to)] += 1
    return sum(n - 1 for n in acks.values() if n > 1), sum(n - 1 for n in ids.values() if n > 1)


def _unrecorded(engine: Engine, boxes: list[Mailbox]) -> int:
    """Messages in the INBOXes with no row in `message` (by mailbox name and UID)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT mailbox, uid FROM message")).all()
    recorded = {(str(m), int(u)) for m, u in rows}
    missing = 0
    for box in boxes:
        client = box.connect()
        try:
            client.select_folder("INBOX", readonly=True)
            missing += sum((box.user, uid) not in recorded for uid in client.search("ALL"))
        finally:
            with contextlib.suppress(Exception):
                client.logout()
    return missing


def measure_workers(
    stack: Stack,
    sink: Sink,
    *,
    workdir: Path,
    messages: int = 3000,
    mailboxes: int = 4,
    workers: int = 3,
    kills: int = 10,
    seed: int = 23,
) -> WorkersResult:
    """The whole measurement on a fresh PostgreSQL database and fresh mailboxes."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = WorkersResult(workers, mailboxes, messages, kills)
    boxes = [stack.new_mailbox() for _ in range(mailboxes)]
    corpus = Corpus(seed=seed)
    for n, box in enumerate(boxes):
        share = messages // mailboxes + (n < messages % mailboxes)
        seed_mailbox(box, (m.raw for m in corpus.take(share)))
    rng = random.Random(seed)
    with postgres_database(f"workers_{os.getpid()}") as url:
        engine = create_engine(url)
        config = workdir / "candour.toml"
        config.write_text(config_text(boxes, sink.port, url, workdir / "state"))
        pool = Pool(config, workdir)
        fresh: list[str] = []
        stop = threading.Event()
        feeder = threading.Thread(target=_trickle, args=(boxes, stop, fresh, seed), daemon=True)
        began = time.monotonic()
        try:
            for _ in range(workers):
                pool.start()
            feeder.start()
            for _ in range(kills):
                time.sleep(rng.uniform(2.0, 12.0))
                took = _kill_and_time(pool, engine, rng)
                if took is not None:
                    result.takeovers.append(took)
                    print(f"workers: kill {len(result.takeovers)}, taken over in {took} s")
            stop.set()
            feeder.join(30)
            result.settled, result.recorded, result.unsent, result.in_doubt = _settle(
                engine, _inbox_total(boxes), SETTLE_TIMEOUT
            )
            result.seconds = round(time.monotonic() - began, 1)
        finally:
            stop.set()
            pool.stop()
        result.fresh = len(fresh)
        acknowledged = {
            " ".join(str(BytesHeaderParser().parsebytes(m.data).get("In-Reply-To", "")).split())
            for m in sink.messages
        }
        unacknowledged = sum(f"<{mid}>" not in acknowledged for mid in fresh)
        result.lost = _unrecorded(engine, boxes) + unacknowledged
        result.acknowledged_twice, result.sent_twice = _duplicates(sink)
        engine.dispose()
    return result


def render(result: WorkersResult) -> str:
    takeovers = ", ".join(f"{t:g}" for t in result.takeovers) or "none"
    return "\n".join(
        [
            f"workers: {result.workers} workers, {result.mailboxes} mailboxes, backlog "
            f"{result.backlog:,} + {result.fresh} fresh, {len(result.takeovers)} kill -9s, "
            f"{result.seconds} s{'' if result.settled else ' (did not settle)'}",
            f"  recorded {result.recorded:,}; lost {result.lost}; unsent {result.unsent}; "
            f"acknowledged twice {result.acknowledged_twice}; sent twice {result.sent_twice}; "
            f"in_doubt {result.in_doubt}",
            f"  takeover seconds: {takeovers} (max {result.max_takeover}, limit "
            f"{TAKEOVER_LIMIT:g}): {'PASS' if result.ok else 'FAIL'}",
        ]
    )


def main() -> int:
    from bench.stack import postgres_available

    if (why := postgres_available()) is not None:
        print(f"PostgreSQL unavailable: {why}")
        return 2
    work = Path(__file__).resolve().parent / "out" / f"workers-{int(time.time())}"
    with Stack() as stack, stack.sink("lean") as sink:
        result = measure_workers(stack, sink, workdir=work)
    print(render(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

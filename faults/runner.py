"""Runs the fault schedule against the real daemon and prints the figures table.

    python -m faults.runner [--runs 1] [--messages 500] [--kills 50] [--seed 1]
                            [--postgres | --sqlite-only]

Each run: a fresh Dovecot account, database (SQLite file, or a PostgreSQL database of its
own on 127.0.0.1:5432) and faulty SMTP peer; `kills` cycles of the schedule (the daemon
runs a seeded while, mail arriving, the peer misbehaving, then kill -9 and more mail while
it is down); then a clean run until every message is recorded, SIGTERM, and the outbox
drained with the clock moved on three hours (deferred retries fall due); then the
invariant checker. Exit status 1 when any run broke an invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bench.corpus import Corpus
from bench.stack import PASSWORD, Mailbox, Stack, postgres_database, seed, write_config
from daemon.clock import SettableClock
from faults import injectors
from faults.environment import JumpingClock, SmallDisk
from faults.invariants import Figures, check, read_mailbox
from faults.peer import FaultyPeer
from models.database import Database
from replies.deliver import OutboxSender
from replies.smtp import Mailer, SmtpConfig


@dataclass(frozen=True)
class Plan:
    messages: int
    kills: int
    seed: int
    database: str  # "sqlite" | "postgresql"


@dataclass
class Run:
    plan: Plan
    figures: Figures
    faults: Counter[str]  # injected, by kind
    seconds: float


@dataclass
class Machine:
    """The run's daemon and the machine faults around it."""

    daemon: injectors.Daemon
    disk: SmallDisk
    clock: JumpingClock
    db_url: str


def run_once(stack: Stack, plan: Plan, work: Path) -> Run:
    started = time.monotonic()
    mailbox = stack.new_mailbox()
    corpus = Corpus(seed=plan.seed, to=mailbox.address).take(plan.messages)
    with ExitStack() as scope:
        peer = scope.enter_context(_peer(plan.seed))
        disk = SmallDisk(work / "disk")
        if plan.database == "sqlite" and disk.mount():
            scope.callback(disk.unmount)
        db_url = scope.enter_context(_database(plan, disk.path if disk.mounted else work))
        config = write_config(
            work / "candour.toml", mailbox=mailbox, smtp_port=peer.port, db_url=db_url
        )
        config.write_text(config.read_text().replace("[smtp]\n", "[smtp]\ntimeout = 3\n", 1))
        machine = Machine(
            injectors.Daemon(config, work / "daemon.log"), disk, JumpingClock(work), db_url
        )
        daemon = machine.daemon
        faults = _cycles(stack, plan, mailbox, machine, peer, corpus)
        _finish(machine, peer, plan.messages)
        figures = check(
            db_url,
            read_mailbox("127.0.0.1", mailbox.port, mailbox.user, PASSWORD),
            plan.messages,
            peer.received(),
        )
        if errors := daemon.problems():
            figures.violations.append(f"daemon logged errors: {errors}")
    return Run(plan, figures, faults, time.monotonic() - started)


def _cycles(
    stack: Stack,
    plan: Plan,
    mailbox: Mailbox,
    machine: Machine,
    peer: FaultyPeer,
    corpus: Iterator[object],
) -> Counter[str]:
    """The schedule's cycles; returns the faults injected, by kind."""
    faults: Counter[str] = Counter()
    postgres = plan.database == "postgresql"
    jumps = machine.clock.available()  # libfaketime installed (make faults installs it)
    for step in injectors.schedule(
        plan.seed, plan.kills, plan.messages, postgres, machine.disk.mounted
    ):
        peer.set_mode(step.peer)
        faults.update(
            {f"smtp {step.peer}": step.peer != "accept", "disk full": step.disk_full}
            | {"clock jump": jumps and step.clock_jump > 0, "dovecot restart": step.dovecot_restart}
        )
        if step.disk_full:
            machine.disk.fill()
        machine.daemon.start(machine.clock.env())
        _append(mailbox, corpus, step.arrive)
        time.sleep(step.up / 2)
        if step.terminate_backends:
            dropped = injectors.terminate_backends(machine.db_url.rsplit("/", 1)[1])
            faults["pg backends terminated"] += dropped > 0
        if jumps and step.clock_jump:
            machine.clock.jump(step.clock_jump)
        time.sleep(step.up / 2)
        machine.daemon.kill()
        faults["kill -9"] += 1
        if step.disk_full:
            machine.disk.free()
        _append(mailbox, corpus, step.arrive_down)
        if step.dovecot_restart:
            injectors.restart_dovecot(stack.dovecot)
    return faults


def _append(mailbox: Mailbox, corpus: Iterator[object], n: int) -> None:
    if n:
        seed(mailbox, (mail.raw for mail in itertools.islice(corpus, n)))  # type: ignore[attr-defined]


def _finish(machine: Machine, peer: FaultyPeer, messages: int) -> None:
    """A clean run until everything is recorded and nothing due waits, then SIGTERM; then
    the outbox drained by a sender whose clock jumped three hours (deferred retries)."""
    peer.set_mode("accept")
    daemon = machine.daemon
    daemon.start(machine.clock.env())
    db = Database(machine.db_url)
    deadline = time.monotonic() + 60 + messages / 5
    try:
        while time.monotonic() < deadline and daemon.running:
            if _settled(db, messages):
                break
            time.sleep(0.5)
        daemon.stop()
        mailer = Mailer(SmtpConfig(host="127.0.0.1", port=peer.port, security="none"), None)
        jumped = SettableClock(datetime.now(UTC) + timedelta(hours=machine.clock.hours + 3))
        sender = OutboxSender(db, mailer, jumped.now)

        async def drain() -> None:
            sender.recover()
            await sender.deliver_due()
            await mailer.close()

        asyncio.run(drain())
    finally:
        db.dispose()


def _settled(db: Database, messages: int) -> bool:
    try:
        return _counts(db) >= (messages, 0)
    except DBAPIError:  # the daemon has not made its tables yet
        return False


def _counts(db: Database) -> tuple[int, int]:
    """Messages recorded, and outbox rows not yet tried (retries are the drain's)."""
    with db.reader() as session:
        recorded = session.scalar(text("SELECT count(*) FROM message")) or 0
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'claimed', 'sending')"
                " AND attempts = 0"
            )
        )
    return recorded, waiting or 0


@contextmanager
def _peer(seed_value: int) -> Iterator[FaultyPeer]:
    peer = FaultyPeer(seed_value).start()
    try:
        yield peer  # type: ignore[misc]
    finally:
        peer.stop()


@contextmanager
def _database(plan: Plan, work: Path) -> Iterator[str]:
    if plan.database == "postgresql":
        with postgres_database(f"faults_{plan.seed}") as url:
            yield url
    else:
        yield f"sqlite:///{work / 'candour.db'}"


def table(runs: list[Run]) -> str:
    head: tuple[str, ...] = ("run", "database", "seed", "faults", "messages", "acks", "lost")
    head += ("duplicated", "quarantined", "in doubt", "of which by kill")
    head += ("failed (5xx)", "seconds", "verdict")
    rows = [head]
    for n, run in enumerate(runs, 1):
        f = run.figures
        verdict = "ok" if not f.violations else f"BROKEN: {f.violations[0][:60]}"
        counts = (
            run.faults.total(),
            f.messages,
            f.acks,
            f.lost,
            f.duplicated,
            f.quarantined,
            f.in_doubt,
            f.in_doubt_crash,
            f.failed,
        )
        seconds = f"{run.seconds:.0f}"
        rows.append(
            (str(n), run.plan.database, str(run.plan.seed), *map(str, counts), seconds, verdict)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for n, run in enumerate(runs, 1):
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(run.faults.items()) if count)
        lines.append(f"run {n} faults: {kinds}")
    return "\n".join(lines)


def run_all(plans: list[Plan]) -> list[Run]:
    runs = []
    with Stack() as stack:
        for plan in plans:
            work = Path(tempfile.mkdtemp(prefix="candour-faults-", dir="/tmp"))
            try:
                runs.append(run_once(stack, plan, work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.runner", description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="runs per database")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    databases = ([] if args.no_sqlite else ["sqlite"]) + (
        [] if args.no_postgres else ["postgresql"]
    )
    plans = [
        Plan(args.messages, args.kills, args.seed + n, database)
        for n in range(args.runs)
        for database in databases
    ]
    runs = run_all(plans)
    print(table(runs))
    for run in runs:
        for violation in run.figures.violations:
            print(f"seed {run.plan.seed} {run.plan.database}: {violation}", file=sys.stderr)
    return 1 if any(run.figures.violations for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The faults themselves, each a small action on a real process or server: start and
kill -9 `candour run`, restart Dovecot, terminate the daemon's PostgreSQL backends, and a
seeded schedule of which fault comes when."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.stack import POSTGRES_ADMIN
from faults.peer import MODES, Mode
from tests.mailstack import Dovecot

REPO = Path(__file__).resolve().parent.parent


class Daemon:
    """`python -m daemon run` as a child process that the schedule kills with SIGKILL."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start it, with `env` added to the environment (the clock jump's preload)."""
        args = [sys.executable, "-m", "daemon", "run", "--config", str(self.config)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                cwd=REPO,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no drain, no clean-up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.wait()

    def stop(self, deadline: float = 40.0) -> int | None:
        """SIGTERM (the daemon drains), SIGKILL after `deadline`."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(deadline)
            except subprocess.TimeoutExpired:
                process.kill()
        return self.wait()

    def wait(self) -> int | None:
        if self.process is None:
            return None
        code = self.process.wait(30)
        # The preparer runs in a child of its own session: gone with its parent's pipe.
        return code

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def problems(self) -> dict[str, int]:
        """Error events in the daemon's log, by event name."""
        found: dict[str, int] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("level") == "error":
                found[str(event.get("event"))] = found.get(str(event.get("event")), 0) + 1
        return found


def restart_dovecot(dovecot: Dovecot) -> None:
    """Stop the private Dovecot as systemd would and start it again on the same port."""
    dovecot.stop()
    time.sleep(0.3)
    dovecot.start()


def terminate_backends(database: str) -> int:
    """pg_terminate_backend for every connection to `database` (the daemon's): what a
    PostgreSQL restart or failover does to a worker mid-batch. Returns how many."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


@dataclass(frozen=True)
class Step:
    """One cycle of the schedule: the daemon runs `up` seconds under `peer` mode, with
    `arrive` messages appended while it runs, then is killed and stays down while
    `arrive_down` more arrive; maybe Dovecot restarts, PostgreSQL drops its connections,
    the disk is full while it runs, or its wall clock jumps `clock_jump` hours mid-run."""

    up: float
    peer: Mode
    arrive: int
    arrive_down: int
    dovecot_restart: bool
    terminate_backends: bool
    disk_full: bool
    clock_jump: int


def schedule(seed: int, kills: int, messages: int, postgres: bool, disk: bool) -> list[Step]:
    """`kills` seeded cycles sharing `messages` arrivals. Short `up` times land in start-up,
    middling ones in intake, longer ones in delivery; the peer is mostly accepting."""
    rng = random.Random(seed)
    weights = {"accept": 10, "refuse": 1, "defer": 2, "hang": 1, "drop": 2}
    shares = [rng.random() for _ in range(kills)]
    total = sum(shares) or 1.0
    arrivals = [int(messages * s / total) for s in shares]
    arrivals[-1] += messages - sum(arrivals)
    steps = []
    for arrival in arrivals:
        down = rng.randint(0, arrival)
        steps.append(
            Step(
                up=rng.choice((rng.uniform(0.2, 1.5), rng.uniform(1.5, 4.0), rng.uniform(4, 7))),
                peer=rng.choices(MODES, [weights[m] for m in MODES])[0],
                arrive=arrival - down,
                arrive_down=down,
                dovecot_restart=rng.random() < 0.1,
                terminate_backends=postgres and rng.random() < 0.3,
                disk_full=disk and rng.random() < 0.1,
                clock_jump=rng.choice((2, 3, 6, 24)) if rng.random() < 0.1 else 0,
            )
        )
    return steps

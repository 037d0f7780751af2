"""Several workers on one PostgreSQL database: mailbox leases, takeover, the shared secret.

The daemons run as real processes (`python -m daemon run`) against the private Dovecot
and SMTP sink; the tests read the leases and messages from the database itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imapclient
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from daemon.service.leases import LEASE, LeaseKeeper, fair_share, plan
from models import leases
from models.database import Database
from models.leases import Lease
from tests.conftest import REPO, make_mail, wait_until
from tests.mailstack import Dovecot, SmtpSink, write_config

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TAKEOVER_SECONDS = 30.0


# -- the decisions, purely -----------------------------------------------------------------


def test_the_fair_share_is_everything_alone_and_a_rounded_up_part_otherwise() -> None:
    assert fair_share(3, 1) == 3
    assert fair_share(3, 2) == 2
    assert fair_share(3, 3) == 1
    assert fair_share(3, 5) == 1
    assert fair_share(3, 0) == 3


def test_the_plan_keeps_a_fair_share_and_goes_for_free_or_expired_leases() -> None:
    boxes = ["a", "b", "c"]
    live = NOW + LEASE
    current = {
        "a": Lease("a", "me", live),
        "b": Lease("b", "other", live),
        "c": Lease("c", "gone", NOW - timedelta(seconds=1)),
    }
    alone = plan(boxes, {"a"}, current, "me", NOW, 1)
    assert (alone.keep, alone.shed, alone.free, alone.wanted) == (("a",), (), ("c",), 2)
    crowded = plan(["a", "b", "c", "d"], {"a", "b", "c"}, {}, "me", NOW, 3)
    assert (crowded.keep, crowded.shed, crowded.wanted) == (("a", "b"), ("c",), 0)
    assert plan(boxes, set(), {}, "me", NOW, 3).free == ("a", "b", "c")


# -- the SQL, on both databases --------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'x.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


def test_a_lease_is_held_renewed_taken_when_expired_and_released(any_db: Database) -> None:
    with any_db.transaction() as session:
        assert leases.acquire(session, "a", "w1", NOW, LEASE)
        assert not leases.acquire(session, "a", "w2", NOW + timedelta(seconds=5), LEASE)
        assert leases.acquire(session, "a", "w1", NOW + timedelta(seconds=10), LEASE)  # renewed
        # w1's renewal at +10 s runs to +30 s: still its own at +25 s, w2's after +30 s
        assert not leases.acquire(session, "a", "w2", NOW + timedelta(seconds=25), LEASE)
        assert leases.holder(session, "a", NOW + timedelta(seconds=25)) == "w1"
        assert leases.acquire(session, "a", "w2", NOW + timedelta(seconds=31), LEASE)
        assert not leases.acquire(session, "a", "w1", NOW + timedelta(seconds=32), LEASE)
        assert leases.release(session, ["a"], "w1") == 0  # not its lease any more
        assert leases.release(session, ["a"], "w2") == 1
        assert leases.holder(session, "a", NOW + timedelta(seconds=32)) is None
        assert leases.acquire(session, "a", "w1", NOW + timedelta(seconds=32), LEASE)


def _race(db: Database, mailbox: str, count: int) -> list[str]:
    """`count` workers try for `mailbox` at the same moment; returns those that got it."""
    start = threading.Barrier(count)
    won: list[str] = []

    def race(worker: str) -> None:
        start.wait()
        with db.transaction() as session:
            if leases.acquire(session, mailbox, worker, NOW, LEASE):
                won.append(worker)

    threads = [threading.Thread(target=race, args=(f"w{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won


@pytest.mark.postgres
def test_of_workers_racing_for_a_free_lease_exactly_one_gets_it(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    for round_number in range(5):
        won = _race(db, f"box{round_number}", 6)
        assert len(won) == 1
        with db.reader() as session:
            assert leases.holder(session, f"box{round_number}", NOW) == won[0]
    db.dispose()


# -- the keeper, with watchers it only records -----------------------------------------------


class Recorded:
    """Stands in for the watcher threads: which mailboxes the keeper has running."""

    def __init__(self) -> None:
        self.on: set[str] = set()
        self.stopped: list[str] = []

    def start(self, mailbox: str) -> None:
        self.on.add(mailbox)

    def stop(self, mailbox: str, wait: float) -> None:
        self.on.discard(mailbox)
        self.stopped.append(mailbox)

    def running(self, mailbox: str) -> bool:
        return mailbox in self.on


@pytest.mark.postgres
def test_keepers_share_fairly_and_one_whose_leases_were_taken_stops_at_once(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    clock = [NOW]
    names = ["a", "b", "c"]
    first_watches, second_watches = Recorded(), Recorded()
    first = LeaseKeeper(db, "w1", names, first_watches, now=lambda: clock[0])
    second = LeaseKeeper(db, "w2", names, second_watches, now=lambda: clock[0])
    first.tick()
    assert first_watches.on == {"a", "b", "c"}  # alone: everything
    second.tick()
    assert second_watches.on == set()  # nothing free yet
    first.tick()  # two workers now: a fair share is two, so one goes
    assert first_watches.on == {"a", "b"}
    second.tick()
    assert second_watches.on == {"c"}
    clock[0] = NOW + LEASE + timedelta(seconds=1)  # the first stalls past its leases
    second.tick()
    assert second_watches.on == {"a", "b", "c"}
    first.tick()  # back: its renewals fail, and its watchers stop at once
    assert first_watches.on == set()
    assert sorted(first_watches.stopped) == ["a", "b", "c"]
    second.release_all()
    with db.reader() as session:
        assert leases.leases(session) == {}
        assert leases.live_workers(session, clock[0]) == 1  # the first, still counted
    db.dispose()


def test_on_sqlite_the_keeper_holds_every_mailbox(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    watches = Recorded()
    keeper = LeaseKeeper(db, "w1", ["a", "b"], watches)
    keeper.tick()
    assert watches.on == {"a", "b"}
    assert keeper.take("a")
    db.dispose()


# -- the daemons ----------------------------------------------------------------------------


class Workers:
    """N mailboxes on the private Dovecot, one config, and worker processes running it."""

    def __init__(
        self, dovecot: Dovecot, sink: SmtpSink, url: str, tmp: Path, mailboxes: int
    ) -> None:
        self.dovecot, self.sink, self.url, self.tmp = dovecot, sink, url, tmp
        self.users = [dovecot.new_user() for _ in range(mailboxes)]
        self.names = [f"box{n}" for n in range(mailboxes)]
        self.config = self.write_config(tmp / "candour.toml", tmp / "state")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.db = Database(url)

    def address(self, index: int) -> str:
        return f"complaints-{self.users[index]}@example.org"

    def write_config(self, path: Path, state: Path, secret_file: Path | None = None) -> Path:
        """A config with every mailbox: the tests' one-mailbox config, repeated."""
        blocks = []
        for n, user in enumerate(self.users):
            one = write_config(
                self.tmp / f"one-{n}.toml",
                imap_port=self.dovecot.port,
                user=user,
                address=self.address(n),
                smtp_port=self.sink.port,
                db_url=self.url,
                state_dir=state,
                log_level="info",
            ).read_text()
            head, _, mailbox = one.partition("[[mailbox]]")
            blocks.append("[[mailbox]]" + mailbox.replace('name = "main"', f'name = "box{n}"'))
        if secret_file is not None:
            head = head.replace("[daemon]\n", f'[daemon]\nsecret_file = "{secret_file}"\n')
        path.write_text(head + "".join(blocks))
        return path

    def start(self, *args: str, config: Path | None = None) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", *args, "--config", str(config or self.config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=REPO,
            env={**os.environ, "CANDOUR_TEST_IMAP_PASSWORD": "secret"},
        )
        log.close()
        self.processes.append(process)
        return process

    def events(self, process: subprocess.Popen[bytes], name: str) -> list[dict[str, object]]:
        path = self.tmp / f"worker-{self.processes.index(process)}.log"
        found = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                found.append(json.loads(line))
        return [e for e in found if e.get("event") == name]

    def holders(self) -> dict[str, int]:
        """Each mailbox with a live lease, and the pid of the worker holding it."""
        now = datetime.now(UTC)
        try:
            with self.db.reader() as session:
                current = leases.leases(session)
        except ProgrammingError:  # no tables yet: the workers are still starting
            return {}
        return {
            m: int(lease.holder.split(":")[1])
            for m, lease in current.items()
            if lease.expires_at >= now
        }

    def append(self, index: int, raw: bytes) -> None:
        client = imapclient.IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False, timeout=10)
        client.login(self.users[index], "secret")
        try:
            client.append("INBOX", raw)
        finally:
            client.logout()

    def acknowledged(self, index: int) -> list[str]:
        """The recipients of everything mailbox `index` sent."""
        return [
            r for m in self.sink.messages if m.mail_from == self.address(index) for r in m.rcpt_tos
        ]

    def recorded(self) -> tuple[int, int]:
        """(message rows, distinct (mailbox, uid) among them)."""
        with self.db.reader() as session:
            row = session.execute(
                text("SELECT count(*), count(DISTINCT (mailbox, uid)) FROM message")
            ).one()
        return int(row[0]), int(row[1])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.db.dispose()


@pytest.fixture
def workers_for(
    dovecot: Dovecot, smtp_sink: SmtpSink, pg_url: str, tmp_path: Path
) -> Iterator[Callable[[int], Workers]]:
    """Makes a Workers on N fresh mailboxes; stops its processes afterwards."""
    made: list[Workers] = []

    def make(mailboxes: int) -> Workers:
        made.append(Workers(dovecot, smtp_sink, pg_url, tmp_path, mailboxes))
        return made[-1]

    yield make
    for workers in made:
        workers.stop()


def _spread(workers: Workers, processes: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """Wait until every mailbox has a live lease held by one of `processes`, each of which
    holds at least one, and return who holds what."""
    pids = {p.pid for p in processes}

    def spread() -> bool:
        held = workers.holders()
        return set(held) == set(workers.names) and set(held.values()) == pids

    wait_until(spread, timeout=60, what="the mailboxes spread over the workers")
    return workers.holders()


def _watching(workers: Workers, process: subprocess.Popen[bytes]) -> set[str]:
    """The mailboxes a worker's log says it took and has not lost or given up since."""
    held: set[str] = set()
    path = workers.tmp / f"worker-{workers.processes.index(process)}.log"
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "lease.taken":
            held.add(str(event["mailbox"]))
        elif event.get("event") in {"lease.lost", "lease.shared"}:
            held.discard(str(event["mailbox"]))
    return held


pg_daemons = pytest.mark.postgres


@pg_daemons
def test_two_workers_share_three_mailboxes_each_watched_by_one(
    workers_for: Callable[[int], Workers],
) -> None:
    workers = workers_for(3)
    first, second = workers.start(), workers.start()
    held = _spread(workers, [first, second])
    assert sorted(len([m for m in held if held[m] == p.pid]) for p in (first, second)) == [1, 2]
    time.sleep(2 * 5.0)  # two more rounds: nothing moves once spread
    assert workers.holders() == held
    assert _watching(workers, first) | _watching(workers, second) == set(workers.names)
    assert not _watching(workers, first) & _watching(workers, second)
    for n in range(3):
        workers.append(n, make_mail(sender=f"Pat <pat{n}@example.net>")[0])
    wait_until(lambda: all(workers.acknowledged(n) for n in range(3)), 40, "acknowledgements")
    time.sleep(2)
    assert [workers.acknowledged(n) for n in range(3)] == [
        [f"pat{n}@example.net"] for n in range(3)
    ]


def _kill_and_take_over(workers: Workers, count: int) -> None:
    """Start `count` workers on three mailboxes, kill -9 one that holds a mailbox, mail its
    mailboxes after the kill: the others take them within 30 s and acknowledge once."""
    processes = [workers.start() for _ in range(count)]
    held = _spread(workers, processes)
    victim = next(p for p in processes if p.pid == held["box0"])
    orphaned = sorted(m for m, pid in held.items() if pid == victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed = time.monotonic()
    for mailbox in orphaned:
        workers.append(workers.names.index(mailbox), make_mail(sender=f"Sam <{mailbox}@x.net>")[0])
    survivors = {p.pid for p in processes if p is not victim}
    wait_until(
        lambda: (
            set(workers.holders()) == set(workers.names)
            and set(workers.holders().values()) <= survivors
        ),
        timeout=TAKEOVER_SECONDS + 5,
        what="the takeover",
    )
    assert time.monotonic() - killed <= TAKEOVER_SECONDS
    indexes = [workers.names.index(mailbox) for mailbox in orphaned]
    wait_until(lambda: all(workers.acknowledged(i) for i in indexes), 40, "acknowledgements")
    time.sleep(3)
    for mailbox in orphaned:
        assert workers.acknowledged(workers.names.index(mailbox)) == [f"{mailbox}@x.net"]
    assert workers.recorded()[0] == workers.recorded()[1] == len(orphaned)


@pg_daemons
def test_a_killed_workers_mailboxes_are_taken_over_and_mail_after_acknowledged_once(
    workers_for: Callable[[int], Workers],
) -> None:
    _kill_and_take_over(workers_for(3), 2)


@pg_daemons
def test_three_workers_with_one_killed(workers_for: Callable[[int], Workers]) -> None:
    _kill_and_take_over(workers_for(3), 3)


@pg_daemons
def test_two_run_once_on_one_backlog_split_it_and_record_each_message_once(
    workers_for: Callable[[int], Workers],
) -> None:
    workers = workers_for(4)
    per_mailbox = 30
    for n in range(4):
        for k in range(per_mailbox):
            workers.append(n, make_mail(sender=f"p{n}-{k}@example.net")[0])
    first, second = workers.start("--once"), workers.start("--once")
    assert first.wait(120) == 0
    assert second.wait(120) == 0
    assert workers.recorded() == (4 * per_mailbox, 4 * per_mailbox)
    for n in range(4):
        sent = workers.acknowledged(n)
        assert sorted(sent) == sorted(f"p{n}-{k}@example.net" for k in range(per_mailbox))
    synced = [
        {str(e["mailbox"]) for e in workers.events(p, "mailbox.synced")} for p in (first, second)
    ]
    assert synced[0], "the first run processed mailboxes"
    assert synced[1], "the second run processed mailboxes"
    assert not synced[0] & synced[1]
    assert synced[0] | synced[1] == set(workers.names)
    with workers.db.reader() as session:
        assert leases.leases(session) == {}  # released on the way out


@pg_daemons
def test_three_workers_starting_together_on_an_empty_database_all_start(
    workers_for: Callable[[int], Workers],
) -> None:
    workers = workers_for(3)
    processes = [workers.start() for _ in range(3)]
    held = _spread(workers, processes)
    assert sorted(held.values()) == sorted(p.pid for p in processes)
    assert all(p.poll() is None for p in processes)
    assert all(workers.events(p, "daemon.started") for p in processes)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    assert [p.wait(40) for p in processes] == [0, 0, 0]
    assert workers.holders() == {}  # released on SIGTERM


@pg_daemons
def test_a_stopping_worker_releases_its_mailboxes_for_another_at_once(
    workers_for: Callable[[int], Workers],
) -> None:
    workers = workers_for(2)
    first = workers.start()
    wait_until(lambda: len(workers.holders()) == 2, 60, "the first worker's leases")
    second = workers.start()
    wait_until(lambda: second.pid in workers.holders().values(), 60, "a fair share")
    first.send_signal(signal.SIGTERM)
    assert first.wait(40) == 0
    stopped = time.monotonic()
    everything = dict.fromkeys(workers.names, second.pid)
    wait_until(lambda: workers.holders() == everything, 20, "the takeover")
    assert time.monotonic() - stopped < LEASE.total_seconds() / 2  # not waiting for expiry


@pg_daemons
def test_workers_share_the_stored_reply_secret_and_refuse_a_different_file(
    workers_for: Callable[[int], Workers],
) -> None:
    workers = workers_for(1)
    tmp = workers.tmp
    (tmp / "a.secret").write_text("a" * 64)
    (tmp / "b.secret").write_text("b" * 64)
    first = workers.write_config(tmp / "first.toml", tmp / "state-1", tmp / "a.secret")
    wrong = workers.write_config(tmp / "wrong.toml", tmp / "state-2", tmp / "b.secret")
    fileless = workers.write_config(tmp / "fileless.toml", tmp / "state-3")
    assert workers.start("--once", config=first).wait(120) == 0
    refused = workers.start("--once", config=wrong)
    assert refused.wait(120) == 2
    why = (tmp / f"worker-{workers.processes.index(refused)}.log").read_text()
    assert "daemon.secret_file" in why
    assert "remove daemon.secret_file" in why

    def addresses(config: Path) -> str:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "addresses", "--config", str(config)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.splitlines()[0]

    assert addresses(fileless) == addresses(first)
    assert not (tmp / "state-3" / "reply-secret").exists()  # the stored one, not a new one

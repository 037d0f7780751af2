"""The benchmark's burst run: a backlog MOVEd into the INBOX of a daemon already running
(bench/ingest.py). Against the tests' Dovecot and the lean sink, with a real daemon; what is
checked is what the run counts, never how fast it was."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.burst import STAGING
from bench.corpus import Corpus
from bench.ingest import raw_limit, run_backlog
from bench.run import _plan
from bench.sink import LeanSink
from bench.stack import PASSWORD, PASSWORD_ENV, Mailbox, seed
from tests.mailstack import Dovecot

BACKLOG = 30


@pytest.fixture
def mailbox(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    user = dovecot.new_user()
    return Mailbox(user, f"complaints-{user}@example.org", dovecot.port)


def test_a_burst_is_timed_from_the_move_and_counts_only_the_backlog(
    mailbox: Mailbox, tmp_path: Path
) -> None:
    backlog = list(Corpus(seed=11).take(BACKLOG))
    seed(mailbox, (m.raw for m in backlog))
    sink = LeanSink().start()
    try:
        result = run_backlog(
            mailbox=mailbox,
            sink=sink,
            db_url=f"sqlite:///{tmp_path / 'candour.db'}",
            database="sqlite",
            messages=BACKLOG,
            raw_rate=100.0,
            workdir=tmp_path / "work",
            burst=True,
            timeout=120.0,
        )
    finally:
        sink.stop()
    assert result.completed, result.note
    assert result.mode == "burst"
    # The warm-up complaint is recorded and acknowledged too, but is not one of the burst:
    # the run's rows are the backlog's, its acknowledgements include the warm-up's.
    assert result.breakdown, "the probe read the database"
    assert result.timeline[-1][1] == BACKLOG
    expected = 1 + sum(m.acknowledgement_expected for m in backlog)
    assert result.acks_expected == result.acks_received == expected
    assert result.first_record_seconds is not None
    assert result.recorded_seconds is not None
    assert 0 < result.first_record_seconds <= result.recorded_seconds <= result.seconds
    # CPU counted from the MOVE: the daemon's start-up is subtracted, never negative.
    assert result.cpu_account is not None
    assert all(seconds >= 0 for seconds in result.cpu_seconds_by_process.values())
    assert result.log_problems == {}
    # Nothing lost: the backlog and the warm-up are in INBOX, the staging folder is empty,
    # and the ceiling after the run reads the backlog alone.
    client = mailbox.connect()
    try:
        assert client.select_folder(STAGING)[b"EXISTS"] == 0
        assert client.select_folder("INBOX")[b"EXISTS"] == BACKLOG + 1
    finally:
        client.logout()
    assert raw_limit(mailbox, newest=BACKLOG).messages == BACKLOG


def _args(**options: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "sizes": [1000, 10_000],
        "huge": False,
        "no_sqlite": False,
        "once_mode": "small",
        "burst_mode": "small",
    }
    return argparse.Namespace(**(defaults | options))


def test_the_default_plan_bursts_the_smallest_backlog_on_each_database() -> None:
    assert _plan(_args(), postgres=True) == [
        (1000, "sqlite", "run"),
        (1000, "sqlite", "once"),
        (1000, "sqlite", "burst"),
        (1000, "postgresql", "run"),
        (1000, "postgresql", "burst"),
        (10_000, "sqlite", "run"),
        (10_000, "postgresql", "run"),
    ]


def test_burst_mode_none_and_all() -> None:
    plan = _plan(_args(burst_mode="none", once_mode="none"), postgres=False)
    assert plan == [(1000, "sqlite", "run"), (10_000, "sqlite", "run")]
    plan = _plan(_args(burst_mode="all", once_mode="none", huge=True), postgres=False)
    assert [mode for _, _, mode in plan] == ["run", "burst"] * 3
    assert [size for size, _, _ in plan] == [1000, 1000, 10_000, 10_000, 100_000, 100_000]

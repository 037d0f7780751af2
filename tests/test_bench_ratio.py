"""The benchmark's ratio to the raw limit: a run is compared with the ceiling taken on both
sides of it (bench/ingest.py BacklogRun.bracket). Arithmetic only; nothing here is timed."""

from __future__ import annotations

import pytest

from bench.ingest import BacklogRun
from bench.probe import POLL_SECONDS, POLL_SECONDS_MAX, poll_interval


def _run(before: float, seconds: float = 20.0) -> BacklogRun:
    run = BacklogRun("sqlite", "run", 10_000, raw_before=before)
    run.completed, run.seconds = True, seconds
    return run


def test_the_ratio_uses_the_ceiling_before_the_run_until_it_is_measured_after() -> None:
    run = _run(before=1000.0)
    assert run.ratio == pytest.approx(500 / 1000)


def test_the_ceiling_is_the_mean_time_of_the_two_measurements() -> None:
    run = _run(before=1000.0)
    run.bracket(after=500.0)
    # 10 s before and 20 s after: 15 s on average, so 666.7 msgs/s, not the mean rate 750.
    assert run.raw_rate == pytest.approx(10_000 / 15)
    assert run.ratio == pytest.approx(500 / (10_000 / 15))
    assert (run.raw_before, run.raw_after) == (1000.0, 500.0)


def test_a_failed_measurement_after_leaves_the_ceiling_before() -> None:
    run = _run(before=800.0)
    run.bracket(after=0.0)
    assert run.raw_rate == 800.0


def test_the_probe_reads_often_around_the_timed_moments_and_seldom_in_between() -> None:
    # Before the first row, and once every row is in (waiting for the acks): often.
    assert poll_interval(0, 100_000, 0.0) == POLL_SECONDS
    assert poll_interval(100_000, 100_000, 250.0) == POLL_SECONDS
    # Early in a long backlog: at most POLL_SECONDS_MAX.
    assert poll_interval(10_000, 100_000, 25.0) == POLL_SECONDS_MAX
    # Near the end: a tenth of the expected rest (500 rows at 400/s: 1.25 s -> 0.125 s).
    assert poll_interval(99_500, 100_000, 99_500 / 400) == pytest.approx(0.125)
    # Never below POLL_SECONDS, however close the end.
    assert poll_interval(99_999, 100_000, 250.0) == POLL_SECONDS
    # A small backlog is read as often as before: its whole run takes a few seconds.
    assert poll_interval(100, 1000, 0.5) == pytest.approx(0.45)


def test_the_ingest_target_is_judged_from_10000_messages_up_and_only_reported_below() -> None:
    from bench.results import Suite, targets

    suite = Suite(started="now", machine={}, options={})
    for size in (1_000, 10_000):
        run = BacklogRun("postgresql", "run", size, raw_before=1000.0)
        run.completed, run.seconds = True, size / 400  # 40 % of the ceiling
        suite.backlog.append(run)
    verdicts = {name: verdict for name, _, verdict in targets(suite) if "ingest" in name}
    assert verdicts == {
        "ingest >= 50 % of raw, 1,000 msgs (postgresql)": "n/a (no target below 10,000)",
        "ingest >= 50 % of raw, 10,000 msgs (postgresql)": "MISS",
    }

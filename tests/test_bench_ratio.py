"""The benchmark's ratio to the raw limit: a run is compared with the ceiling taken on both
sides of it (bench/ingest.py BacklogRun.bracket). Arithmetic only; nothing here is timed."""

from __future__ import annotations

import pytest

from bench.ingest import BacklogRun


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

"""The fault-injection suite's short form: the real daemon killed -9 while mail arrives, a
misbehaving SMTP peer, Dovecot restarts and (on PostgreSQL) dropped backends; afterwards
nothing is lost or doubled (faults/invariants.py). `make faults` runs the long form."""

from __future__ import annotations

import pytest

from faults.runner import Plan, run_all, table


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_short_fault_run_loses_and_doubles_nothing(database: str) -> None:
    [run] = run_all([Plan(messages=40, kills=4, seed=7, database=database)])
    print(table([run]))
    assert run.figures.violations == []
    assert run.faults["kill -9"] == 4
    assert run.figures.messages == run.figures.recorded == 40
    assert run.figures.acks > 0
    assert run.figures.lost == run.figures.duplicated == 0

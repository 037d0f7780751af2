"""`candour status`: the verdict from a report, purely, and the command on a real mailbox."""

from __future__ import annotations

import json
from typing import Any

from daemon.cli.status import CRITICAL, OK, WARNING, verdict
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import _configure, _run


def _box(**changes: Any) -> dict[str, Any]:
    box: dict[str, Any] = {
        "name": "main",
        "overdue_acknowledgements": 0,
        "overdue_stages": 0,
        "quarantined": 0,
        "sync_minutes_ago": 2.0,
        "backlog": 0,
    }
    return {**box, **changes}


def _report(**changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "workers": ["host:1:1"],
        "outbox": {"by_status": {"sent": 10}, "oldest_pending_minutes": None},
        "mailboxes": [_box()],
    }
    report.update(changes)
    return report


def test_the_verdict_follows_the_plugin_convention() -> None:
    assert verdict(_report(), 15) == (OK, [])
    code, why = verdict(_report(workers=[]), 15)
    assert code == CRITICAL
    assert "no worker" in why[0]
    late = {"by_status": {"pending": 3}, "oldest_pending_minutes": 40.0}
    assert verdict(_report(outbox=late), 15)[0] == CRITICAL
    assert verdict(_report(outbox=late), 60)[0] == OK
    doubt = {"by_status": {"in_doubt": 1}, "oldest_pending_minutes": None}
    assert verdict(_report(outbox=doubt), 15) == (WARNING, ["1 outgoing mail in_doubt"])
    boxes = [_box(overdue_acknowledgements=2, overdue_stages=1)]
    code, why = verdict(_report(mailboxes=boxes), 15)
    assert code == CRITICAL
    assert why == ["main: 2 overdue acks", "main: 1 overdue stage responses"]
    stale = [_box(sync_minutes_ago=45.0, backlog=300)]
    assert verdict(_report(mailboxes=stale), 15) == (
        WARNING,
        ["main: not seen through for 45 min (300 waiting)"],
    )
    assert verdict(_report(mailboxes=stale), 15, sync_minutes=60)[0] == OK
    never = [_box(sync_minutes_ago=None)]
    assert verdict(_report(mailboxes=never), 15)[1] == ["main: never seen through (0 waiting)"]


def test_status_after_a_run(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail()[0])
    setup.append(b"\x00\xff not mail at all")
    _run(setup)
    result = setup.cli("status", "--json", check=False)
    report = json.loads(result.stdout)
    [box] = report["mailboxes"]
    assert box["open_cases"] >= 1
    assert box["last_recorded"] is not None
    assert box["last_sync"] is not None  # the watcher saw the mailbox through
    assert box["backlog"] == 0
    assert box["sync_minutes_ago"] < 5
    assert report["outbox"]["by_status"].get("sent", 0) >= 1
    assert report["workers"] == []  # run --once has exited: nobody is watching
    assert report["status"] == "CRITICAL"
    assert result.returncode == 2

"""Parsing and classifying in a child process: same results as in-process, and crashes of
the child cost no mail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from classifiers.config import ClassifierConfig
from classifiers.loader import load_classifier
from daemon.mail.values import RawMessage
from daemon.mailbox.preparer import (
    CRASHED,
    NICENESS,
    PreparerUnavailable,
    ProcessPreparer,
    Stages,
    prepare_in_child,
)
from daemon.triage.prepare import InlinePreparer
from tests.conftest import make_mail

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OWN = frozenset({"complaints@example.org"})


def crash_on_poison(raws: Sequence[RawMessage], own: frozenset[str]) -> list[Stages]:
    """A child task that dies like a segfault would when it meets a poison message."""
    if any(b"POISON" in r.raw for r in raws):
        os._exit(70)
    return prepare_in_child(raws, own)


def _raws(count: int, poison_at: int | None = None) -> list[RawMessage]:
    bodies = [
        "I waited three hours at the clinic and nobody told me why. I want a formal response.",
        "Thank you to the nurses on ward 7, they were wonderful with my dad.",
        "Please send me a copy of all the personal data you hold about me.",
        "Out of office: I am away until Monday.",
    ]
    out = []
    for i in range(count):
        subject = "POISON" if i == poison_at else f"Message {i}"
        raw = make_mail(sender=f"p{i}@example.net", subject=subject, body=bodies[i % 4])[0]
        out.append(RawMessage(i + 1, raw, NOW))
    return out


def test_the_child_gives_the_same_results_as_the_daemons_own_process(tmp_path: Path) -> None:
    config = ClassifierConfig()
    raws = _raws(8)
    inline = InlinePreparer(load_classifier(tmp_path, config))
    expected = inline.result(inline.submit(raws, OWN))
    child = ProcessPreparer(tmp_path, config, "warning")
    try:
        got = child.result(child.submit(raws, OWN))
    finally:
        child.close()
    assert [p.raw for p in got] == raws  # the bytes never left this process
    assert [p.parsed for p in got] == [p.parsed for p in expected]
    assert [p.classification for p in got] == [p.classification for p in expected]
    assert {p.classification.label for p in got if p.classification} >= {"complaint", "feedback"}


def _spawned_children() -> set[int]:
    return {
        child.pid
        for child in psutil.Process().children()
        if "spawn_main" in " ".join(child.cmdline())
    }


def test_one_child_starts_with_the_preparer_and_the_second_with_a_backlog(
    tmp_path: Path,
) -> None:
    """As README says: the first child loads the model while the daemon starts up; the
    second only when a backlog keeps the first busy, so an idle daemon holds one."""
    before = _spawned_children()
    preparer = ProcessPreparer(tmp_path, ClassifierConfig(), "warning", processes=2)
    try:
        assert len(_spawned_children() - before) == 1
        batches = [preparer.submit(_raws(20), OWN) for _ in range(3)]
        assert len(_spawned_children() - before) == 2
        assert all(len(preparer.result(b)) == 20 for b in batches)
    finally:
        preparer.close()


def test_children_prepare_below_the_daemons_priority(tmp_path: Path) -> None:
    """Through a backlog the daemon's own work (sending acknowledgements) comes first."""
    before = _spawned_children()
    preparer = ProcessPreparer(tmp_path, ClassifierConfig(), "warning")
    try:
        assert len(preparer.result(preparer.submit(_raws(2), OWN))) == 2
        children = _spawned_children() - before
        assert children
        wanted = min(19, psutil.Process().nice() + NICENESS)
        assert {psutil.Process(pid).nice() for pid in children} == {wanted}
    finally:
        preparer.close()


_HOLDER = """
import sys, time
from pathlib import Path
from classifiers.config import ClassifierConfig
from daemon.mailbox.preparer import ProcessPreparer

if __name__ == "__main__":
    preparer = ProcessPreparer(Path(sys.argv[1]), ClassifierConfig(), "warning", processes=2)
    preparer.submit([], frozenset())  # the first child is still starting: a second starts
    print("ready", flush=True)
    time.sleep(120)
"""


def test_children_end_when_the_daemon_is_killed_outright(tmp_path: Path) -> None:
    """They ignore SIGTERM (the daemon shuts them down in order), so a daemon that is
    SIGKILLed must not leave them behind."""
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        children = [
            c
            for c in psutil.Process(holder.pid).children()
            if "spawn_main" in " ".join(c.cmdline())
        ]
        assert len(children) == 2
        holder.kill()
        holder.wait(10)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_message_that_kills_the_child_alone_is_handed_back_unparsed(tmp_path: Path) -> None:
    preparer = ProcessPreparer(tmp_path, ClassifierConfig(), "warning", task=crash_on_poison)
    try:
        got = preparer.result(preparer.submit(_raws(5, poison_at=3), OWN))
        assert [p.parse_error for p in got] == [None, None, None, CRASHED, None]
        assert all(p.parsed is not None for i, p in enumerate(got) if i != 3)
        # The pool was replaced: the next batch goes through as usual.
        again = preparer.result(preparer.submit(_raws(2), OWN))
        assert [p.parse_error for p in again] == [None, None]
    finally:
        preparer.close()


def test_a_child_that_cannot_start_leaves_the_mail_waiting(tmp_path: Path) -> None:
    bad_rules = tmp_path / "rules.toml"
    bad_rules.write_text("this is = = not toml")
    preparer = ProcessPreparer(tmp_path, ClassifierConfig(extra_rules=bad_rules), "warning")
    try:
        with pytest.raises(PreparerUnavailable):
            preparer.result(preparer.submit(_raws(2), OWN))
    finally:
        preparer.close()


def test_the_daemons_own_process_does_not_load_scikit_learn(tmp_path: Path) -> None:
    """The classifier lives in the child: the daemon's RSS is the smaller for it, and its
    start the quicker (numpy and fpdf, for letters, cost 0.3 s of it)."""
    config = tmp_path / "candour.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "{tmp_path}"
[database]
url = "sqlite:///{tmp_path / "c.db"}"
[smtp]
host = "127.0.0.1"
[[mailbox]]
name = "main"
address = "complaints@example.org"
organisation = "Example"
[mailbox.imap]
host = "127.0.0.1"
username = "u"
"""
    )
    script = (
        "import sys\n"
        "from pathlib import Path\nfrom daemon.config import load_config\n"
        "import daemon.cli.main  # what `candour run` imports\n"
        "from daemon.service.worker import Worker\n"
        f"worker = Worker.build(load_config(Path({str(config)!r})))\n"
        "loaded = sorted(m for m in ('sklearn', 'numpy', 'fpdf') if m in sys.modules)\n"
        "worker.preparer.close()\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"

"""Records under UK GDPR (issue 22), end to end on Dovecot, the SMTP sink and SQLite: a
subject-access export, an erasure that leaves the address in no byte of the database
files while the report still counts the case, and the audit trail of both."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import Setup, make_mail
from tests.test_staff_loop import _addr, _configure, _msg, _run, _to

JANE = "jane.erasable@example.net"
SECRET_WORDS = "my neighbour Mrs Quimby"


def _bytes_on_disk(db_path: Path, needle: bytes) -> int:
    found = 0
    for path in db_path.parent.glob(db_path.name + "*"):  # the database, -wal, -shm
        found += path.read_bytes().count(needle)
    return found


def _seed(setup: Setup) -> str:
    _configure(setup)
    body = f"I complain that the outpatient clinic lost the letters\n{SECRET_WORDS} sent for me."
    setup.append(make_mail(sender=f"Jane E <{JANE}>", subject="Missed visits", body=body)[0])
    _run(setup)
    copy = _msg(_to(setup, "team@example.org")[0])
    reply = make_mail(
        sender="Sam <sam@example.org>",
        to=_addr(copy["Reply-To"]),
        subject=f"Re: {copy['Subject']}",
        body="#note called her back\n",
    )[0]
    setup.append(reply)
    _run(setup)
    [case] = setup.cases()
    return str(case["reference"])


def test_a_subject_access_export_holds_everything_marked_for_review(setup: Setup) -> None:
    reference = _seed(setup)
    archive = setup.config_path.parent / "sar.zip"
    out = setup.cli("export", "--subject", JANE.upper(), "--output", str(archive)).stdout
    assert "1 cases" in out
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        received = [n for n in names if n.startswith("received/")]
        assert len(received) == 2  # her complaint and the staff note on her case
        assert any(b"Quimby" in z.read(n) for n in received)
        assert [n for n in names if n.startswith("sent/")]  # the acknowledgement, copies
        [case] = json.loads(z.read("cases.json"))
        assert case["reference"] == reference
        notes = [e for e in case["history"] if e["kind"] == "note"]
        assert notes
        assert notes[0]["staff_only"]
        assert b"staff only: review before release" in z.read("summary.html")


def test_erasure_removes_every_byte_and_keeps_the_figures(setup: Setup) -> None:
    reference = _seed(setup)
    db = setup.db_path
    assert _bytes_on_disk(db, JANE.encode()) > 0
    refused = setup.cli(
        "erase", "--subject", JANE, "--reason", "asked on 1 Dec", "--yes", check=False
    )
    assert refused.returncode == 1
    assert reference in refused.stderr  # open: says which case
    done = setup.cli("erase", "--subject", JANE, "--reason", "asked on 1 Dec", "--yes", "--force")
    assert "erased: 1 cases" in done.stdout
    assert _bytes_on_disk(db, JANE.encode()) == 0
    assert _bytes_on_disk(db, b"Quimby") == 0
    assert _bytes_on_disk(db, b"Missed visits") == 0
    day = datetime.now(UTC).date()
    report = json.loads(
        setup.cli(
            "report", "--from", str(day - timedelta(days=1)), "--to", str(day), "--format", "json"
        ).stdout
    )
    assert report["cases"]["total"] == 1  # the figures stay true
    assert report["stages"][0]["due"] == 1
    nothing = setup.cli("export", "--subject", JANE, "--output", "/dev/null", check=False)
    assert nothing.returncode == 1
    with sqlite3.connect(db) as connection:
        audit = connection.execute("SELECT action, os_user, detail FROM audit").fetchall()
    assert [a for a, _, _ in audit] == ["erase"]
    assert all(user for _, user, _ in audit)
    assert "asked on 1 Dec" in audit[0][2]
    assert JANE not in str(audit)

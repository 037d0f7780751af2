"""Records under UK GDPR (issue 22), end to end on Dovecot, the SMTP sink and SQLite: a
subject-access export, an erasure that leaves the address in no byte of the database
files while the report still counts the case, and the audit trail of both."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.casework.retention import period
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import ROUTES, _addr, _configure, _msg, _run, _to

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
    assert archive.stat().st_mode & 0o777 == 0o600  # a person's whole file: nobody else's
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


def _close(setup: Setup, subject: bytes) -> None:
    copy = _msg(
        next(
            m
            for m in setup.outgoing()
            if subject in m.data and any(r.endswith("@example.org") for r in m.rcpt_tos)
        )
    )
    setup.append(
        make_mail(
            sender="Sam <sam@example.org>",
            to=_addr(copy["Reply-To"]),
            subject=f"Re: {copy['Subject']}",
            body="#close upheld\n",
        )[0]
    )
    _run(setup)


def test_retention_purges_closed_cases_past_their_period(setup: Setup) -> None:
    _configure(setup)  # no retention yet
    body = "I complain that the outpatient clinic lost the letters\nMrs Quimby sent for me."
    setup.append(make_mail(sender=f"Jane E <{JANE}>", subject="Lost letters", body=body)[0])
    setup.append(make_mail(sender="Bo <bo.open@example.net>", subject="Still open")[0])
    _run(setup)
    _close(setup, b"Lost letters")
    _configure(setup, ROUTES + '[mailbox.retention]\ncomplaint = "0 days"\n')
    dry = setup.cli("retention", "--dry-run").stdout
    assert "would purge 1 complaint case(s)" in dry
    assert _bytes_on_disk(setup.db_path, b"Quimby") > 0  # a dry run changes nothing
    assert "purged 1 complaint case(s)" in setup.cli("retention").stdout
    assert _bytes_on_disk(setup.db_path, b"Quimby") == 0
    assert _bytes_on_disk(setup.db_path, b"bo.open@example.net") > 0  # open: kept
    outcomes = sorted(str(c["outcome"]) for c in setup.cases())
    assert outcomes == ["None", "upheld"]  # the figures stay
    assert "nothing is past" in setup.cli("retention").stdout
    _close(setup, b"Still open")  # the daemon's daily job purges it once closed
    setup.cli("run", "--once")
    rows = sqlite3.connect(setup.db_path).execute('SELECT subject FROM "case"').fetchall()
    assert rows == [("[erased]",), ("[erased]",)]
    assert _bytes_on_disk(setup.db_path, b"bo.open@example.net") == 0  # secure_delete


def test_retention_periods_are_calendar_periods() -> None:
    start = datetime(2024, 2, 29, tzinfo=UTC)
    assert start + period("1 year") == datetime(2025, 2, 28, tzinfo=UTC)
    assert start + period("18 months") == datetime(2025, 8, 29, tzinfo=UTC)
    assert start + period("400 days") == start + timedelta(days=400)

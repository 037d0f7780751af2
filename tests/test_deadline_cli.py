"""`candour deadline` and `candour sla`: the counting rule and what is due, from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.cli.main import main
from models.database import Database
from models.schema import Case
from tests.test_workdays import LONDON, REGIONS, Office, reference_due

REPO = Path(__file__).resolve().parent.parent


def candour(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--received", "2026-12-24T10:00", "--working-days", "1"], "2026-12-29T17:00:00+00:00"),
        (
            ["--received", "2026-12-24T10:00:00+00:00", "--working-days", "1"],
            "2026-12-29T17:00:00+00:00",
        ),
        (
            ["--received", "2026-03-27T18:30", "--working-days", "10", "--region", "SCT"],
            "2026-04-14T17:00:00+01:00",
        ),
        (
            ["--received", "2026-03-27T18:30", "--working-days", "10", "--region", "eng"],
            "2026-04-15T17:00:00+01:00",
        ),
        # 09:30 in New York is 13:30 in London: inside working hours, so day 0 is that day.
        (
            ["--received", "2026-03-02T09:30-05:00", "--working-days", "0"],
            "2026-03-02T17:00:00+00:00",
        ),
        (["--received", "2026-03-28T12:00", "--hours", "24"], "2026-03-29T13:00:00+01:00"),
    ],
)
def test_deadline_prints_the_due_instant_in_local_time(args: list[str], expected: str) -> None:
    result = candour("deadline", *args)
    assert result.exit_code == 0, result.output
    assert result.output == expected + "\n"


@settings(max_examples=60)
@given(
    region=st.sampled_from(REGIONS),
    received=st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)),
    working_days=st.integers(0, 30),
)
def test_deadline_follows_the_rule_for_any_input(
    region: str, received: datetime, working_days: int
) -> None:
    received = received.replace(microsecond=0)
    text = received.isoformat()
    result = candour(
        "deadline", "--received", text, "--working-days", str(working_days), "--region", region
    )
    expected = reference_due(received.replace(tzinfo=LONDON), working_days, Office(region=region))
    assert datetime.fromisoformat(result.output.strip()) == expected


def test_help_says_how_a_time_without_offset_is_read() -> None:
    text = " ".join(candour("deadline", "--help").output.split())
    assert "Without a UTC offset it is read as local time" in text
    assert "Europe/London" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--received", "2026-03-02T10:00"], "exactly one of --working-days N or --hours N"),
        (
            ["--received", "2026-03-02T10:00", "--hours", "1", "--working-days", "1"],
            "exactly one",
        ),
        (["--received", "next tuesday", "--hours", "1"], "not ISO 8601 like 2026-12-24T10:00"),
        (["--received", "2026-03-02T10:00", "--working-days", "-1"], "-1"),
        (["--received", "2026-03-02T10:00", "--hours", "1", "--region", "FRA"], "FRA"),
    ],
)
def test_deadline_usage_errors_say_what_to_do(args: list[str], message: str) -> None:
    result = candour("deadline", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


CONFIG = """
[database]
url = "sqlite:///{db}"

[smtp]
host = "127.0.0.1"

[[mailbox]]
name = "main"
address = "complaints@example.org"
organisation = "Example Trust"
[mailbox.imap]
host = "127.0.0.1"
username = "u"
[mailbox.calendar]
closures = [2026-12-29, 2026-12-30, 2026-12-31]

[[mailbox]]
name = "community"
address = "feedback@community.example.org"
organisation = "Example Community Transport"
region = "WLS"
timezone = "Europe/Dublin"
[mailbox.imap]
host = "127.0.0.1"
username = "u"
[mailbox.policy]
acknowledge = "24 hours"
[[mailbox.policy.stages]]
name = "response"
respond_within = "10 working days"
[[mailbox.policy.stages]]
name = "chief executive review"
respond_within = "20 working days"
request_within = "20 working days"
[mailbox.calendar]
opens = "10:00"
closes = "16:00"
working_days = ["Mon", "Tue", "Wed", "Thu"]
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "candour.toml"
    path.write_text(CONFIG.format(db=tmp_path / "cli.db"))
    return path


def test_deadline_uses_the_mailboxs_calendar(config_path: Path) -> None:
    # Day 0 is Thu 24 Dec; then bank holidays (25, 28 Dec, 1 Jan), the shutdown (29-31 Dec)
    # and weekends: the first working day after it is Monday 4 January 2027.
    main_box = candour(
        "deadline", "--received", "2026-12-24T10:00", "--working-days", "1",
        "--config", str(config_path), "--mailbox", "main",
    )  # fmt: skip
    assert main_box.output == "2027-01-04T17:00:00+00:00\n"
    # Community: Monday to Thursday, 10:00-16:00. Thursday 16:30 counts from Monday 10:00.
    community = candour(
        "deadline", "--received", "2026-03-05T16:30", "--working-days", "1",
        "--config", str(config_path), "--mailbox", "community",
    )  # fmt: skip
    assert community.output == "2026-03-10T16:00:00+00:00\n"


def test_deadline_with_several_mailboxes_needs_one_named(config_path: Path) -> None:
    result = candour(
        "deadline", "--received", "2026-03-02T10:00", "--hours", "1", "--config", str(config_path)
    )
    assert result.exit_code == 1
    assert "main, community" in result.output
    missing = candour(
        "deadline", "--received", "2026-03-02T10:00", "--hours", "1",
        "--config", str(config_path), "--mailbox", "nope",
    )  # fmt: skip
    assert missing.exit_code == 1
    assert "no [[mailbox]] named 'nope'" in missing.output


def test_the_installed_command_has_deadline() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "deadline", "--received", "2026-12-24T10:00",
         "--working-days", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout == "2026-12-29T17:00:00+00:00\n"


# -- sla -------------------------------------------------------------------------------------

MONDAY_0900 = "2026-03-09T09:00"  # GMT


def _case(reference: str, mailbox: str, **fields: object) -> Case:
    values: dict[str, object] = {
        "reference": reference,
        "mailbox": mailbox,
        "status": "in_stage",
        "label": "complaint",
        "confidence": 0.9,
        "model_version": "test",
        "complainant": "jane.citizen@example.net",
        "subject": "About the bus",
        "received_at": datetime(2026, 3, 2, 10, tzinfo=UTC),
        "created_at": datetime(2026, 3, 2, 10, tzinfo=UTC),
        "ack_due_at": datetime(2026, 3, 3, 17, tzinfo=UTC),
        "acknowledged_at": datetime(2026, 3, 2, 10, 1, tzinfo=UTC),
        "stage": 1,
        **fields,
    }
    return Case(**values)


@pytest.fixture
def with_cases(config_path: Path, tmp_path: Path) -> Path:
    db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    db.upgrade()
    with db.transaction() as session:
        session.add_all(
            [
                _case("CMP-2026-00001", "main", stage_due_at=datetime(2026, 3, 11, 17, tzinfo=UTC)),
                _case("CMP-2026-00002", "main", stage_due_at=datetime(2026, 3, 5, 17, tzinfo=UTC)),
                _case(
                    "CMP-2026-00003",
                    "main",
                    status="closed",
                    closed_at=datetime(2026, 3, 3, tzinfo=UTC),
                    close_reason="closed",
                ),
                _case(
                    "CT-2026-00001",
                    "community",
                    stage=2,
                    stage_due_at=datetime(2026, 3, 10, 16, tzinfo=UTC),
                ),
                _case(
                    "CT-2026-00002",
                    "community",
                    status="responded",
                    responded_at=datetime(2026, 3, 6, 12, tzinfo=UTC),
                    request_due_at=datetime(2026, 4, 7, 15, tzinfo=UTC),
                ),
            ]
        )
    db.dispose()
    return config_path


def test_sla_json_lists_open_cases_with_days_left_or_overdue(with_cases: Path) -> None:
    result = candour("sla", "--json", "--now", MONDAY_0900, "--config", str(with_cases))
    assert result.exit_code == 0, result.output
    rows = {row["reference"]: row for row in map(json.loads, result.output.splitlines())}
    assert set(rows) == {"CMP-2026-00001", "CMP-2026-00002", "CT-2026-00001", "CT-2026-00002"}
    # Monday 9 March: Tue is 1 working day away, Wed 2; Thu 5 March was 2 working days ago.
    assert rows["CMP-2026-00001"]["due"] == "2026-03-11T17:00:00+00:00"
    assert (rows["CMP-2026-00001"]["working_days_left"], rows["CMP-2026-00001"]["overdue"]) == (
        2,
        False,
    )
    assert (rows["CMP-2026-00002"]["working_days_left"], rows["CMP-2026-00002"]["overdue"]) == (
        -2,
        True,
    )
    community = rows["CT-2026-00001"]
    assert community["stage_name"] == "chief executive review"
    assert community["deadline"] == "stage 2 response (chief executive review)"
    assert community["working_days_left"] == 1
    waiting = rows["CT-2026-00002"]
    assert (waiting["deadline"], waiting["status"]) == (None, "responded")
    assert waiting["request_due"] == "2026-04-07T16:00:00+01:00"  # Dublin summer time
    assert "jane.citizen" not in result.output


def test_sla_text_for_one_mailbox(with_cases: Path) -> None:
    result = candour("sla", "--mailbox", "main", "--now", MONDAY_0900, "--config", str(with_cases))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("mailbox main (ENG, Europe/London) at Mon 09 Mar 2026 09:00")
    assert any("CMP-2026-00001" in line and "2 working days left" in line for line in lines)
    assert any("CMP-2026-00002" in line and "overdue by 2 working days" in line for line in lines)
    assert not any("CT-2026" in line or "CMP-2026-00003" in line for line in lines)


def test_sla_for_an_unknown_mailbox_fails(with_cases: Path) -> None:
    result = candour("sla", "--mailbox", "nope", "--config", str(with_cases))
    assert result.exit_code == 1
    assert "no [[mailbox]] named 'nope'" in result.output

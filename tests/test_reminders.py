"""Reminders on SQLite with a settable clock: the right cases, each digest once, across restarts.

The clock stands at Wednesday 11 March 2026 (GMT) unless moved. From 09:00 that day,
Thu 12 March is 1 working day away, Fri 13 is 2 and Mon 16 is 3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from daemon.clock import SettableClock
from daemon.config import Config, parse_config
from daemon.service.scheduler import run_reminders_once, run_scheduler
from models.cases import case_events
from models.database import Database
from models.schema import Case, Outbox
from replies.deliver import OutboxSender
from replies.smtp import Mailer, SmtpConfig
from tests.mailstack import SmtpSink

WEDNESDAY_0831 = datetime(2026, 3, 11, 8, 31, tzinfo=UTC)
TEAM = "complaints-team@example.org"
DPO = "dpo@example.org"
MANAGER = "head-of-service@example.org"
COMPLAINANT = "jane.citizen@example.net"


def closing(day: int) -> datetime:
    """17:00 GMT on `day` March 2026: when a working-day deadline falls."""
    return datetime(2026, 3, day, 17, 0, tzinfo=UTC)


def make_config(tmp_path: Path, url: str | None = None, **reminders: Any) -> Config:
    def mailbox(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "address": f"{name}@example.org",
            "organisation": "Example Trust",
            "imap": {"host": "127.0.0.1", "username": "u"},
            "reminders": {"manager": MANAGER, **reminders},
        }

    return parse_config(
        {
            "database": {"url": url or f"sqlite:///{tmp_path / 'reminders.db'}"},
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [mailbox("main"), mailbox("other")],
        },
        "test",
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


def open_db(config: Config) -> Database:
    """A fresh engine on the same file: what a restarted daemon opens."""
    database = Database(config.database.url)
    database.upgrade()
    return database


@pytest.fixture
def db(config: Config) -> Iterator[Database]:
    database = open_db(config)
    yield database
    database.dispose()


def add_case(db: Database, reference: str, **fields: Any) -> int:
    """A case acknowledged long ago and in stage 1, changed by `fields`."""
    values: dict[str, Any] = {
        "reference": reference,
        "mailbox": "main",
        "status": "in_stage",
        "label": "complaint",
        "confidence": 0.9,
        "model_version": "test",
        "complainant": COMPLAINANT,
        "subject": "About my appointment",
        "received_at": datetime(2026, 2, 2, 10, tzinfo=UTC),
        "created_at": datetime(2026, 2, 2, 10, tzinfo=UTC),
        "ack_due_at": closing(3),
        "acknowledged_at": datetime(2026, 2, 2, 10, 1, tzinfo=UTC),
        "route": TEAM,
        "stage": 1,
        "stage_started_at": datetime(2026, 2, 2, 10, tzinfo=UTC),
        "stage_due_at": closing(27),
        **fields,
    }
    with db.transaction() as session:
        case = Case(**values)
        session.add(case)
        session.flush()
        return case.id


@pytest.fixture
def cases(db: Database) -> dict[str, int]:
    """One case for each situation a reminder run must tell apart."""
    return {
        "due_thu": add_case(db, "CMP-2026-00001", stage_due_at=closing(12)),
        "due_fri": add_case(db, "CMP-2026-00002", stage_due_at=closing(13)),
        "due_mon": add_case(db, "CMP-2026-00003", stage_due_at=closing(16)),
        "overdue": add_case(db, "CMP-2026-00004", stage_due_at=closing(10)),
        "answered": add_case(
            db,
            "CMP-2026-00005",
            stage_due_at=closing(10),
            status="responded",
            responded_at=closing(9),
        ),
        "closed": add_case(
            db,
            "CMP-2026-00006",
            stage_due_at=closing(10),
            status="closed",
            closed_at=closing(9),
            close_reason="closed",
            outcome="not-upheld",
        ),
        "ack_unsent": add_case(
            db,
            "CMP-2026-00007",
            label="feedback",
            status="new",
            stage=0,
            stage_due_at=None,
            acknowledged_at=None,
            ack_due_at=closing(10),
        ),
        "ack_withheld": add_case(
            db,
            "CMP-2026-00008",
            status="new",
            acknowledged_at=None,
            ack_due_at=closing(10),
            no_ack_reason="rate-limited",
        ),
        "unrouted": add_case(db, "CMP-2026-00009", route=None, stage_due_at=closing(9)),
        "dpo_due": add_case(
            db, "CMP-2026-00010", label="data_protection", route=DPO, stage_due_at=closing(12)
        ),
        "elsewhere": add_case(db, "OTH-2026-00001", mailbox="other", stage_due_at=closing(12)),
    }


def outgoing(db: Database) -> list[Outbox]:
    with db.reader() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def body(row: Outbox) -> tuple[str, str]:
    mail = message_from_bytes(row.raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    part = mail.get_body(("plain",))
    assert part is not None
    return str(mail["Subject"]), str(part.get_content())


def test_nothing_before_the_reminder_time(
    db: Database, config: Config, cases: dict[str, int]
) -> None:
    assert run_reminders_once(db, config, SettableClock(WEDNESDAY_0831 - timedelta(minutes=2))) == 0
    assert outgoing(db) == []


def test_the_digest_lists_each_routes_due_and_overdue_cases(
    db: Database, config: Config, cases: dict[str, int]
) -> None:
    assert run_reminders_once(db, config, SettableClock(WEDNESDAY_0831)) > 0
    digests = {(row.mailbox, row.recipient): row for row in outgoing(db) if row.kind == "digest"}
    assert set(digests) == {("main", TEAM), ("main", DPO), ("other", TEAM)}
    team = digests["main", TEAM]
    assert team.once_key == f"digest:main:{TEAM}:2026-03-11"
    assert team.case_id is None  # a reply to a digest must not thread into a case
    subject, text = body(team)
    assert "2 overdue, 2 due within 2 working days" in subject
    listed = {ref for ref in text.split() if ref.startswith("CMP-")}
    assert listed == {"CMP-2026-00001", "CMP-2026-00002", "CMP-2026-00004", "CMP-2026-00007"}
    assert "Thu 12 Mar 2026 17:00, 1 working day left" in text
    assert "Fri 13 Mar 2026 17:00, 2 working days left" in text
    assert "Tue 10 Mar 2026 17:00, overdue by 1 working day" in text
    assert "acknowledgement" in text
    assert "stage 1 response" in text
    assert COMPLAINANT not in text
    _, dpo_text = body(digests["main", DPO])
    assert {ref for ref in dpo_text.split() if ref.startswith("CMP-")} == {"CMP-2026-00010"}


def test_the_manager_hears_once_of_each_missed_deadline(
    db: Database, config: Config, cases: dict[str, int]
) -> None:
    run_reminders_once(db, config, SettableClock(WEDNESDAY_0831))
    notices = [row for row in outgoing(db) if row.kind == "overdue_notice"]
    assert {row.once_key for row in notices} == {
        f"overdue:{cases['overdue']}:1",
        f"overdue:{cases['ack_unsent']}:ack",
        f"overdue:{cases['unrouted']}:1",  # no route, so no digest: the manager still hears
    }
    assert {row.recipient for row in notices} == {MANAGER}
    subject, text = body(notices[0])
    assert "Overdue" in subject
    assert COMPLAINANT not in text
    with db.reader() as session:
        assert "overdue.notified" in [e.kind for e in case_events(session, cases["overdue"])]


def test_a_restart_sends_nothing_twice_and_the_next_day_brings_new_digests(
    config: Config, cases: dict[str, int], db: Database
) -> None:
    clock = SettableClock(WEDNESDAY_0831)
    first = run_reminders_once(db, config, clock)
    db.dispose()
    restarted = open_db(config)  # the daemon restarts later the same morning
    clock.set(WEDNESDAY_0831 + timedelta(hours=2))
    assert run_reminders_once(restarted, config, clock) == 0
    assert len(outgoing(restarted)) == first
    # Thursday: new digests; the overdue notices already went. Friday: Thursday's case is late.
    clock.set(WEDNESDAY_0831 + timedelta(days=1))
    assert run_reminders_once(restarted, config, clock) == 3
    clock.set(WEDNESDAY_0831 + timedelta(days=2))
    run_reminders_once(restarted, config, clock)
    keys = [row.once_key for row in outgoing(restarted)]
    assert f"overdue:{cases['due_thu']}:1" in keys
    assert len(keys) == len(set(keys))
    restarted.dispose()


def test_a_worker_racing_another_for_the_same_keys_queues_nothing_twice(
    db: Database, config: Config, cases: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SettableClock(WEDNESDAY_0831)
    first = run_reminders_once(db, config, clock)
    # A second worker that looked before the first committed: only the unique key stops it.
    monkeypatch.setattr("models.outbox.once_key_queued", lambda session, key: False)
    assert run_reminders_once(db, config, clock) == 0
    assert len(outgoing(db)) == first
    # The failed inserts were rolled back alone: the same transaction still queues new mail.
    add_case(db, "CMP-2026-00099", route="new-team@example.org", stage_due_at=closing(12))
    assert run_reminders_once(db, config, clock) == 1


@pytest.mark.postgres
def test_on_postgresql_a_duplicate_key_spoils_nothing_else(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL an error aborts the whole transaction unless its savepoint is rolled back.
    config = make_config(tmp_path, url=pg_url)
    database = open_db(config)
    try:
        add_case(database, "CMP-2026-00001", stage_due_at=closing(10))
        clock = SettableClock(WEDNESDAY_0831)
        assert run_reminders_once(database, config, clock) == 2
        monkeypatch.setattr("models.outbox.once_key_queued", lambda session, key: False)
        add_case(database, "CMP-2026-00002", route=DPO, stage_due_at=closing(12))
        assert run_reminders_once(database, config, clock) == 1
        assert [row.recipient for row in outgoing(database)] == [TEAM, MANAGER, DPO]
    finally:
        database.dispose()


def test_no_reminders_on_weekends_and_bank_holidays(
    db: Database, config: Config, cases: dict[str, int]
) -> None:
    saturday = datetime(2026, 3, 14, 10, tzinfo=UTC)
    good_friday = datetime(2026, 4, 3, 10, tzinfo=UTC)
    assert run_reminders_once(db, config, SettableClock(saturday)) == 0
    assert run_reminders_once(db, config, SettableClock(good_friday)) == 0
    assert outgoing(db) == []


def test_reminder_time_is_local_time(tmp_path: Path, cases: dict[str, int], db: Database) -> None:
    # 08:30 BST on Monday 30 March 2026 is 07:30 UTC.
    config = make_config(tmp_path)
    assert (
        run_reminders_once(db, config, SettableClock(datetime(2026, 3, 30, 7, 29, tzinfo=UTC))) == 0
    )
    assert (
        run_reminders_once(db, config, SettableClock(datetime(2026, 3, 30, 7, 30, tzinfo=UTC))) > 0
    )


def test_disabled_reminders_and_no_manager(
    tmp_path: Path, cases: dict[str, int], db: Database
) -> None:
    off = make_config(tmp_path, enabled=False)
    assert run_reminders_once(db, off, SettableClock(WEDNESDAY_0831)) == 0
    no_manager = make_config(tmp_path, manager=None)
    run_reminders_once(db, no_manager, SettableClock(WEDNESDAY_0831))
    assert {row.kind for row in outgoing(db)} == {"digest"}


def test_late_acknowledgements_are_recorded_as_breaches(
    db: Database, config: Config, cases: dict[str, int]
) -> None:
    run_reminders_once(db, config, SettableClock(WEDNESDAY_0831 - timedelta(hours=1)))
    with db.reader() as session:
        unsent = session.get(Case, cases["ack_unsent"])
        withheld = session.get(Case, cases["ack_withheld"])
        assert unsent is not None
        assert withheld is not None
        assert (unsent.ack_breached, withheld.ack_breached) == (True, False)
        assert "acknowledgement.late" in [e.kind for e in case_events(session, unsent.id)]


def test_a_long_route_address_still_gets_one_digest_a_day(db: Database, config: Config) -> None:
    # As long as an address may be (RFC 5321: 64-octet local part, 254 in all).
    route = ("a" * 64) + "@" + ("b" * 60 + ".") * 3 + "org"
    add_case(db, "CMP-2026-00001", route=route, stage_due_at=closing(12))
    clock = SettableClock(WEDNESDAY_0831)
    assert run_reminders_once(db, config, clock) == 1
    assert run_reminders_once(db, config, clock) == 0
    [digest] = outgoing(db)
    assert digest.recipient == route
    assert digest.once_key is not None
    assert len(digest.once_key) <= 200


def test_a_broken_template_stops_only_its_own_mailbox(
    tmp_path: Path, db: Database, cases: dict[str, int]
) -> None:
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "digest.txt").write_text("Subject: {{ no_such_name }}\n\nx\n")
    config = make_config(tmp_path)
    main = config.mailbox[0].model_copy(update={"templates_dir": broken})
    config = config.model_copy(update={"mailbox": (main, config.mailbox[1])})
    with capture_logs() as logs:
        run_reminders_once(db, config, SettableClock(WEDNESDAY_0831))
    assert {row.mailbox for row in outgoing(db)} == {"other"}
    failure = next(e for e in logs if e["event"] == "reminders.template_error")
    assert failure["mailbox"] == "main"
    assert all(COMPLAINANT not in str(e) and TEAM not in str(e) for e in logs)


class CountingClock(SettableClock):
    """A settable clock that counts how often it is read (twice per scheduler tick here)."""

    reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


async def test_the_scheduler_queues_wakes_the_outbox_and_survives_a_restart(
    config: Config, cases: dict[str, int], db: Database
) -> None:
    clock = CountingClock(WEDNESDAY_0831 - timedelta(hours=1))
    wakes: list[int] = []

    async def three_ticks(database: Database) -> None:
        stop = asyncio.Event()
        wake = lambda: wakes.append(1)  # noqa: E731
        task = asyncio.create_task(run_scheduler(database, config, clock, wake, stop, 0.001))
        target = clock.reads + 3 * len(config.mailbox)
        while clock.reads < target:
            await asyncio.sleep(0.001)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    await three_ticks(db)
    assert outgoing(db) == []  # before 08:30 nothing is due to be sent
    clock.set(WEDNESDAY_0831)
    await three_ticks(db)
    sent = [row.once_key for row in outgoing(db)]
    assert len(sent) == 6  # three digests and three overdue notices
    assert wakes == [1]  # once: the later ticks queued nothing
    db.dispose()
    restarted = open_db(config)
    clock.advance(timedelta(minutes=5))
    await three_ticks(restarted)
    assert [row.once_key for row in outgoing(restarted)] == sent
    assert wakes == [1]
    restarted.dispose()


async def test_each_digest_reaches_smtp_once_across_a_restart(
    config: Config, cases: dict[str, int], db: Database
) -> None:
    sink = SmtpSink().start()
    smtp = SmtpConfig(host="127.0.0.1", port=sink.port, security="none", timeout=5)
    clock = SettableClock(WEDNESDAY_0831)

    async def daemon_run(database: Database) -> None:
        """What one `candour run --once` does for reminders: recover, queue, deliver."""
        mailer = Mailer(smtp, None)
        sender = OutboxSender(database, mailer, clock.now)
        sender.recover()
        run_reminders_once(database, config, clock)
        await sender.deliver_due()
        await mailer.close()

    try:
        await daemon_run(db)
        db.dispose()
        clock.advance(timedelta(hours=3))
        restarted = open_db(config)
        await daemon_run(restarted)
        restarted.dispose()
        delivered = sorted(
            (m.mail_from, *m.rcpt_tos, " ".join(str(m.message["Subject"]).split()).split(":")[0])
            for m in sink.messages
        )
    finally:
        sink.stop()
    assert delivered == sorted(
        [
            ("main@example.org", TEAM, "[main] Complaints due"),
            ("main@example.org", DPO, "[main] Complaints due"),
            ("other@example.org", TEAM, "[other] Complaints due"),
            ("main@example.org", MANAGER, "[main] Overdue"),
            ("main@example.org", MANAGER, "[main] Overdue"),
            ("main@example.org", MANAGER, "[main] Overdue"),
        ]
    )


def test_the_review_routes_digest_counts_the_cases_waiting_for_review(
    tmp_path: Path, db: Database
) -> None:
    config = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'reminders.db'}"},
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [
                {
                    "name": "main",
                    "address": "main@example.org",
                    "organisation": "Example Trust",
                    "imap": {"host": "127.0.0.1", "username": "u"},
                    "routes": {"review": TEAM},
                }
            ],
        },
        "test",
    )
    add_case(db, "CMP-2026-00001", stage_due_at=closing(12), needs_review=True)
    add_case(db, "CMP-2026-00002", stage_due_at=closing(12), needs_review=True)
    add_case(db, "CMP-2026-00003", stage_due_at=closing(12))
    run_reminders_once(db, config, SettableClock(WEDNESDAY_0831))
    [digest] = [row for row in outgoing(db) if row.kind == "digest"]
    _, text = body(digest)
    assert "Waiting for a person to check the label: 2 (candour review --mailbox main)" in text


def test_a_complaint_closed_without_an_outcome_is_asked_for_it_and_lessons_are_chased(
    db: Database, config: Config
) -> None:
    case_id = add_case(
        db,
        "CMP-2026-00020",
        stage_due_at=closing(10),
        status="closed",
        closed_at=closing(9),
        close_reason="closed",
    )
    from models import procedure

    with db.transaction() as session:
        case = session.get(Case, case_id)
        assert case is not None
        procedure.add_lesson(
            session,
            case,
            "Check discharge letters",
            "ward.manager@example.org",
            closing(12),
            closing(9),
            "sam@example.org",
        )
    run_reminders_once(db, config, SettableClock(WEDNESDAY_0831))
    digests = {row.recipient: body(row)[1] for row in outgoing(db) if row.kind == "digest"}
    assert "outcome to record" in digests[TEAM]
    lesson = digests["ward.manager@example.org"]
    assert "Check discharge letters" in lesson
    assert "#done L-" in lesson

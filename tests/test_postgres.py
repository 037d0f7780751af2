"""The PostgreSQL paths: migrations, the pipeline and the daemon on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from models.database import Database
from tests.conftest import Setup, make_mail, make_mailbox, queue_reply
from tests.mailstack import write_config

pytestmark = pytest.mark.postgres


def test_migrations_reach_head_on_postgresql(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    db.upgrade()  # idempotent
    current, head = db.revision()
    assert current == head
    db.dispose()


def test_daemon_on_postgresql_acknowledges_once(setup: Setup, pg_url: str, tmp_path: Path) -> None:
    write_config(
        setup.config_path,
        imap_port=setup.dovecot.port,
        user=setup.user,
        address=setup.address,
        smtp_port=setup.sink.port,
        db_url=pg_url,
    )
    raw, _ = make_mail(sender="Pat <pat.pg@example.net>")
    setup.append(raw)
    setup.append(raw)  # the same message delivered twice
    assert setup.cli("run", "--once").returncode == 0
    assert setup.cli("run", "--once").returncode == 0
    assert [m.rcpt_tos for m in setup.outgoing()] == [["pat.pg@example.net"]]
    [case] = setup.cases()
    assert case["acknowledged_at"] is not None


def test_refreshed_statistics_let_the_batch_lookups_use_their_index(pg_url: str) -> None:
    """Without statistics PostgreSQL filters the whole mailbox for the dedupe lookup."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from models.schema import Message

    db = Database(pg_url)
    db.upgrade()
    now = datetime.now(UTC)
    rows = [
        {
            "mailbox": "main",
            "uidvalidity": 1,
            "uid": i,
            "dedupe_key": f"mid:{i}@example.net",
            "message_id": f"{i}@example.net",
            "content_sha256": "0" * 64,
            "case_id": None,
            "outcome": "automatic",
            "reason": None,
            "sender": "",
            "subject": "",
            "received_at": now,
            "recorded_at": now,
            "raw": b"x" * 500,
        }
        for i in range(20_000)
    ]
    lookup = select(Message.dedupe_key).where(
        Message.mailbox == "main",
        Message.dedupe_key.in_([f"mid:{i}@example.net" for i in range(0, 20_000, 100)]),
    )
    with db.transaction() as session:
        session.execute(insert(Message), rows)

    def plan() -> str:
        with db.reader() as session:
            compiled = lookup.compile(session.bind, compile_kwargs={"literal_binds": True})
            return "\n".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")))

    db.refresh_statistics()
    assert "uq_message_dedupe" in plan()
    db.dispose()


def test_workers_claim_disjoint_outbox_rows_oldest_first(pg_url: str) -> None:
    """Two workers claiming at once: SKIP LOCKED gives each its own rows, none twice."""
    from datetime import UTC, datetime

    from models import outbox

    now = datetime.now(UTC)
    db = Database(pg_url)
    db.upgrade()
    with db.transaction() as session:
        for n in range(5):
            queue_reply(
                session,
                recipient=f"person{n}@example.net",
                message_id=f"m{n}@example.org",
                now=now,
                once_key=f"ack:{n}",
            )
    with db.transaction() as first:
        mine = outbox.claim_due(first, now, 3)
        with db.transaction() as second:  # while the first still holds its row locks
            theirs = outbox.claim_due(second, now, 3)
    assert [d.recipient for d in mine] == [f"person{n}@example.net" for n in range(3)]
    assert [d.recipient for d in theirs] == ["person3@example.net", "person4@example.net"]
    with db.reader() as session:
        assert {r.status for r in outbox.rows(session)} == {"claimed"}
    db.dispose()


def test_a_batch_of_new_cases_takes_its_ids_from_the_sequence_in_one_query(pg_url: str) -> None:
    """No INSERT ... RETURNING of the whole batch: ids come first, then a plain executemany."""
    from datetime import UTC, datetime

    from sqlalchemy import event, select

    from classifiers.baseline import KeywordBaseline
    from daemon.clock import SettableClock
    from daemon.mail.values import Outcome, RawMessage
    from daemon.triage.pipeline import Triage
    from daemon.triage.prepare import InlinePreparer
    from models.schema import Case

    db = Database(pg_url)
    db.upgrade()
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    triage = Triage(make_mailbox(), db, InlinePreparer(KeywordBaseline()), SettableClock(now))
    statements: list[str] = []
    event.listen(
        db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql)
    )

    def batch(first_uid: int, people: range) -> list[Outcome]:
        raws = [
            RawMessage(first_uid + n, make_mail(sender=f"p{n}@example.net")[0], now) for n in people
        ]
        return [r.outcome for r in triage.process_batch(1, raws)]

    assert batch(1, range(5)) == [Outcome.CREATED] * 5
    case_inserts = [s for s in statements if s.startswith('INSERT INTO "case"')]
    assert case_inserts
    assert not any("RETURNING" in s for s in case_inserts)
    assert batch(6, range(5, 6)) == [Outcome.CREATED]  # one case alone: the ORM's own way
    with db.reader() as session:
        found = session.execute(select(Case.id, Case.complainant).order_by(Case.id)).all()
    # Numbered in the order the messages came, and the sequence carries on after them.
    assert [who for _, who in found] == [f"p{n}@example.net" for n in range(6)]
    assert [case_id for case_id, _ in found] == list(range(found[0][0], found[0][0] + 6))
    db.dispose()


def test_stored_messages_are_compressed_with_lz4_where_the_server_has_it(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    with db.reader() as session:
        has_lz4 = session.execute(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
        ).scalar()
        methods: dict[str, str] = dict(
            session.execute(
                text(
                    "SELECT attrelid::regclass::text, attcompression FROM pg_attribute"
                    " WHERE attname = 'raw'"
                    " AND attrelid IN ('message'::regclass, 'outbox'::regclass)"
                )
            ).all()
        )
    assert methods == (
        {"message": "l", "outbox": "l"} if has_lz4 else {"message": "", "outbox": ""}
    )
    db.dispose()


def test_erasure_on_postgresql_rewrites_the_tables(
    setup: Setup, pg_url: str, tmp_path: Path
) -> None:
    write_config(
        setup.config_path,
        imap_port=setup.dovecot.port,
        user=setup.user,
        address=setup.address,
        smtp_port=setup.sink.port,
        db_url=pg_url,
    )
    setup.append(make_mail(sender="Pat <pat.erase@example.net>")[0])
    assert setup.cli("run", "--once").returncode == 0
    done = setup.cli(
        "erase", "--subject", "pat.erase@example.net", "--reason", "asked", "--yes", "--force"
    )
    assert "erased: 1 cases" in done.stdout
    db = Database(pg_url)
    with db.reader() as session:
        left = session.execute(
            text(
                "SELECT count(*) FROM message"
                " WHERE position('pat.erase' in encode(raw, 'escape')) > 0"
            )
        ).scalar()
        audited = session.execute(
            text("SELECT count(*) FROM audit WHERE action = 'erase'")
        ).scalar()
    db.dispose()
    assert left == 0
    assert audited


def test_workers_starting_together_on_an_empty_database_all_start(pg_url: str) -> None:
    """Several workers migrate at once: one does it, the others wait and find it done."""
    import threading

    errors: list[BaseException] = []
    ready = threading.Barrier(4)

    def start() -> None:
        db = Database(pg_url)
        try:
            ready.wait()
            db.upgrade()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    db = Database(pg_url)
    current, head = db.revision()
    db.dispose()
    assert current == head


def test_a_transaction_chosen_to_break_a_deadlock_is_run_again(pg_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL rolls one back, and
    `reconnecting` runs it again (the outbox's writes are idempotent; without the retry a
    group of verdicts fell through and its messages were left in doubt)."""
    import threading

    from models.database import reconnecting

    db = Database(pg_url)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pair (id int PRIMARY KEY, n int)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=10)
    runs: list[str] = []

    def bump(first: int, second: int, name: str) -> None:
        def work() -> None:
            runs.append(name)
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": first})
                if runs.count(name) == 1:
                    both_hold_one.wait()  # the first time only: a deadlock for certain
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": second})

        reconnecting(work, "test.retry")

    threads = [
        threading.Thread(target=bump, args=(1, 2, "a")),
        threading.Thread(target=bump, args=(2, 1, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM pair")).scalar() == 4  # both did all
    assert len(runs) == 3  # one of them twice
    db.dispose()

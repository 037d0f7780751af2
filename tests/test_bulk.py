"""Buffered insert-only rows (models/bulk.py): visible to queries, tied to new cases, and
never outliving a savepoint that was rolled back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import bulk, cases
from models.database import Database
from models.schema import Case, CaseEvent

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'b.db'}")
    database.upgrade()
    return database


def _case(reference: str) -> Case:
    return Case(
        reference=reference,
        mailbox="main",
        label="complaint",
        confidence=0.9,
        model_version="test",
        complainant="p@example.net",
        received_at=NOW,
        created_at=NOW,
    )


def _events(session: object, kind: str | None = None) -> list[tuple[str, str]]:
    query = select(Case.reference, CaseEvent.kind).join(Case, Case.id == CaseEvent.case_id)
    if kind is not None:
        query = query.where(CaseEvent.kind == kind)
    return [(r, k) for r, k in session.execute(query.order_by(CaseEvent.id))]  # type: ignore[attr-defined]


def test_buffered_rows_of_new_cases_get_their_ids_and_are_seen_by_queries(db: Database) -> None:
    with db.transaction() as session, bulk.buffered(session):
        first, second = _case("CMP-2026-00001"), _case("CMP-2026-00002")
        session.add_all([first, second])
        cases.add_event(session, first, NOW, "received")
        cases.add_event(session, second, NOW, "received")
        cases.add_event(session, first, NOW, "classified")
        assert session.info.get("candour.bulk.rows"), "rows are held, not yet inserted"
        # A query in the same transaction sees them, as autoflush would have made it.
        assert _events(session) == [
            ("CMP-2026-00001", "received"),
            ("CMP-2026-00002", "received"),
            ("CMP-2026-00001", "classified"),
        ]
        cases.add_event(session, second, NOW, "routed")
    with db.reader() as session:
        assert _events(session, "routed") == [("CMP-2026-00002", "routed")]


def test_rows_of_a_rolled_back_savepoint_are_not_written(db: Database) -> None:
    with db.transaction() as session, bulk.buffered(session):
        kept = _case("CMP-2026-00001")
        session.add(kept)
        cases.add_event(session, kept, NOW, "received")
        bulk.write(session)

        def doomed() -> None:
            with session.begin_nested():
                cases.add_event(session, kept, NOW, "doomed")
                raise RuntimeError("the message failed")

        with pytest.raises(RuntimeError):
            doomed()
        bulk.discard(session)
        with session.begin_nested():
            cases.add_event(session, kept, NOW, "classified")  # written at the RELEASE
    with db.reader() as session:
        assert [k for _, k in _events(session)] == ["received", "classified"]


def test_without_buffering_rows_are_ordinary_orm_objects(db: Database) -> None:
    with db.transaction() as session:
        case = _case("CMP-2026-00001")
        session.add(case)
        cases.add_event(session, case, NOW, "received")
        assert "candour.bulk.rows" not in session.info
        assert session.scalar(select(func.count(CaseEvent.id))) == 1


@pytest.mark.postgres
def test_on_postgresql_rows_are_copied_with_the_values_an_insert_would_store(
    pg_url: str,
) -> None:
    """COPY, not INSERT, on PostgreSQL: every byte, awkward text, zones and defaults as an
    INSERT stores them, and no INSERT statement for the buffered tables."""
    from datetime import timedelta, timezone

    from sqlalchemy import event

    from models.schema import Message

    db = Database(pg_url)
    db.upgrade()
    statements: list[str] = []
    event.listen(
        db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql)
    )
    every_byte = bytes(range(256)) * 4
    awkward = "tab\there\nnew line \\N back\\slash \u00e9\u2019 \U0001f600 \r end"
    at = datetime(2026, 3, 2, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as session, bulk.buffered(session):
        case = _case("CMP-2026-00001")
        session.add(case)
        cases.add_event(session, case, at, "received", awkward)
        values = {
            "mailbox": "main",
            "uidvalidity": 7,
            "uid": 1,
            "dedupe_key": "k1",
            "message_id": None,
            "content_sha256": "0" * 64,
            "outcome": "created",
            "reason": None,
            "received_at": at,
            "recorded_at": NOW,
            "raw": every_byte,
        }  # sender and subject left out: their defaults ("") apply
        bulk.add(session, Message, values, case)
    inserts = ("INSERT INTO message", "INSERT INTO case_event")
    assert not any(s.startswith(inserts) for s in statements)
    with db.reader() as session:
        message = session.scalars(select(Message)).one()
        event_row = session.scalars(select(CaseEvent)).one()
        assert message.raw == every_byte
        assert (message.sender, message.subject, message.message_id) == ("", "", None)
        assert message.received_at == at
        assert message.received_at.tzinfo == UTC
        assert message.case_id == event_row.case_id is not None
        assert event_row.detail == awkward
        assert event_row.actor == "candour"
    db.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_copy_that_fails_raises_as_a_statement_would(pg_url: str) -> None:
    """A duplicate row is sqlalchemy's IntegrityError (the pipeline isolates the message at
    fault by it), and a naive time is refused before anything is written."""
    from sqlalchemy.exc import IntegrityError

    from models.schema import Message

    db = Database(pg_url)
    db.upgrade()
    values = {
        "mailbox": "main",
        "uidvalidity": 7,
        "uid": 1,
        "dedupe_key": "same",
        "message_id": None,
        "content_sha256": "0" * 64,
        "case_id": None,
        "outcome": "automatic",
        "reason": None,
        "received_at": NOW,
        "recorded_at": NOW,
        "raw": b"x",
    }

    def write(*rows: dict[str, object]) -> None:
        with db.transaction() as session, bulk.buffered(session):
            for row in rows:
                bulk.add(session, Message, row, None)

    with pytest.raises(IntegrityError, match="uq_message_dedupe"):
        write(values, {**values, "uid": 2})
    with pytest.raises(ValueError, match="naive"):
        write({**values, "received_at": NOW.replace(tzinfo=None)})
    with db.reader() as session:
        assert session.scalar(select(func.count(Message.id))) == 0
    db.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_copy_on_a_lost_connection_invalidates_it(pg_url: str) -> None:
    """The server went away mid-transaction: OperationalError with connection_invalidated,
    which Database.transaction's retry reconnects on, as for a statement."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    db = Database(pg_url)
    db.upgrade()

    def write_after_the_server_left() -> None:
        with (
            db.engine.connect() as other,
            db.engine.begin() as connection,
            Session(bind=connection) as session,
            bulk.buffered(session),
        ):
            case = _case("CMP-2026-00001")
            session.add(case)
            session.flush()
            cases.add_event(session, case, NOW, "received")  # buffered: COPY at the end
            backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            # Waits (up to 5 s) until that backend has gone.
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})

    with pytest.raises(OperationalError) as raised:
        write_after_the_server_left()
    assert raised.value.connection_invalidated
    assert "COPY case_event" in str(raised.value)
    db.dispose()

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

"""IMAP keywords: one high-water mark per mailbox says which messages have theirs.

The keyword is set after a batch commits; a crash (or a failed STORE) in between leaves
recorded messages without it, and the next cycle sets them. Unit tests on SQLite, the
migration from the per-message flag, and the watcher against a real Dovecot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from classifiers.baseline import KeywordBaseline
from daemon.mailbox.imap import ImapTransient
from daemon.service.worker import Worker
from models import cases
from models.database import Database
from models.schema import ImapCursor, Message
from tests.conftest import Setup, make_mail

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TRIAGED = b"$CandourTriaged"


def _message(uid: int, outcome: str = "created") -> dict[str, object]:
    return {
        "mailbox": "main",
        "uidvalidity": 7,
        "uid": uid,
        "dedupe_key": f"mid:{uid}@example.net",
        "message_id": f"{uid}@example.net",
        "content_sha256": "0" * 64,
        "case_id": None,
        "outcome": outcome,
        "reason": None,
        "sender": "",
        "subject": "",
        "received_at": NOW,
        "recorded_at": NOW,
        "raw": b"x",
    }


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    db.upgrade()
    return db


def _record(db: Database, uids: list[int], last_uid: int) -> None:
    with db.transaction() as session:
        session.execute(insert(Message), [_message(u) for u in uids])
        cases.advance_cursor(session, "main", 7, last_uid)


def test_a_new_mailbox_owes_no_keywords(db: Database) -> None:
    with db.reader() as session:
        assert cases.keyword_backlog(session, "main", 7) == cases.KeywordBacklog(0, 0, [])


def test_messages_above_the_mark_are_owed_their_keyword_oldest_first(db: Database) -> None:
    _record(db, [3, 1, 2], 3)
    with db.reader() as session:
        backlog = cases.keyword_backlog(session, "main", 7)
    assert backlog == cases.KeywordBacklog(0, 3, [(1, "created"), (2, "created"), (3, "created")])
    with db.transaction() as session:
        assert cases.keywords_set(session, "main", 7, 0, 3)
    with db.reader() as session:
        assert cases.keyword_backlog(session, "main", 7) == cases.KeywordBacklog(3, 3, [])


def test_the_mark_does_not_jump_over_a_batch_whose_keywords_were_not_set(db: Database) -> None:
    _record(db, [1, 2], 2)
    _record(db, [3, 4], 4)
    with db.transaction() as session:
        # The second batch's STORE worked, the first's did not: the mark stays at 0.
        assert not cases.keywords_set(session, "main", 7, 2, 4)
    with db.reader() as session:
        backlog = cases.keyword_backlog(session, "main", 7)
    assert [uid for uid, _ in backlog.pending] == [1, 2, 3, 4]
    with db.transaction() as session:
        assert cases.keywords_set(session, "main", 7, 0, 2)
        assert cases.keywords_set(session, "main", 7, 2, 4)
        assert not cases.keywords_set(session, "main", 7, 0, 3)  # never moves back
    with db.reader() as session:
        assert cases.keyword_backlog(session, "main", 7).mark == 4


def test_only_its_own_mailbox_and_uidvalidity_count(db: Database) -> None:
    _record(db, [1], 1)
    with db.reader() as session:
        assert cases.keyword_backlog(session, "main", 8) == cases.KeywordBacklog(0, 0, [])
        assert cases.keyword_backlog(session, "other", 7) == cases.KeywordBacklog(0, 0, [])


def test_the_migration_puts_the_mark_below_the_first_unflagged_message(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade(to="0006")
    with db.transaction() as session:
        # The old schema's message table, with its flag column.
        columns = [*_message(0), "flagged"]
        old_insert = text(
            f"INSERT INTO message ({', '.join(columns)}) VALUES"
            f" ({', '.join(':' + c for c in columns)})"
        )
        for uid, flagged in [(1, True), (2, True), (3, False), (4, True), (5, False)]:
            session.execute(old_insert, {**_message(uid), "flagged": flagged})
        session.execute(
            text(
                "INSERT INTO imap_cursor (mailbox, uidvalidity, last_uid) VALUES"
                " ('main', 7, 5), ('main', 6, 40)"
            )
        )
    db.upgrade()
    with db.reader() as session:
        marks = dict(session.execute(select(ImapCursor.uidvalidity, ImapCursor.keyword_uid)).all())
        assert [uid for uid, _ in cases.keyword_backlog(session, "main", 7).pending] == [3, 4, 5]
    # Below the first unflagged message; all flagged (or no messages): the cursor itself.
    assert marks == {7: 2, 6: 40}


def test_keywords_a_failed_store_left_unset_are_set_at_the_next_cycle(setup: Setup) -> None:
    """As after a crash between the commit and the STORE: recorded, no keyword, repaired."""
    for n in range(3):
        setup.append(make_mail(sender=f"k{n}@example.net")[0])
    worker = Worker.build(setup.config, classifier=KeywordBaseline())
    [watcher] = worker.watchers
    real_add_keyword = watcher.imap.add_keyword

    def failing_store(uids: object, keyword: str) -> None:
        raise ImapTransient("connection lost during STORE")

    try:
        watcher.imap.add_keyword = failing_store  # type: ignore[method-assign]
        with pytest.raises(ImapTransient):
            watcher.sync_once()
        assert len(setup.cases()) == 3  # committed before the STORE
        assert not any(TRIAGED in flags for flags in setup.flags().values())
        with worker.db.reader() as session:
            state = watcher.imap.state
            assert state is not None
            backlog = cases.keyword_backlog(session, watcher.mailbox.name, state.uidvalidity)
        assert (backlog.mark, len(backlog.pending)) == (0, 3)

        watcher.imap.add_keyword = real_add_keyword  # type: ignore[method-assign]
        assert watcher.sync_once() == 0  # nothing new: only the repair
        assert all(TRIAGED in flags for flags in setup.flags().values())
        setup.append(make_mail(sender="k3@example.net")[0])
        watcher.imap.client.noop()  # what IDLE would have told the daemon
        assert watcher.sync_once() == 1
        assert len(setup.flags()) == 4
        assert all(TRIAGED in flags for flags in setup.flags().values())
        with worker.db.reader() as session:
            backlog = cases.keyword_backlog(session, watcher.mailbox.name, state.uidvalidity)
        assert backlog == cases.KeywordBacklog(4, 4, [])
    finally:
        watcher.imap.close()
        worker.preparer.close()
        worker.db.dispose()

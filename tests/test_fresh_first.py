"""Fresh mail first: a complaint arriving during a backlog is recorded ahead of the rest of it.

The watcher works a backlog in batches; between batches it looks for mail newer than the
backlog and records it at once, without moving the cursor past the backlog still below.
Against the real Dovecot, with the watcher in-process so the moment of arrival is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from classifiers.baseline import KeywordBaseline
from daemon.mailbox import watcher as watcher_module
from daemon.mailbox.watcher import MailboxWatcher
from daemon.service.worker import Worker
from models import cases, outbox, status
from models.schema import Message
from tests.conftest import Setup, make_mail

TRIAGED = b"$CandourTriaged"
BACKLOG = 60


@pytest.fixture
def worker(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    monkeypatch.setattr(watcher_module, "FRESH_CHECK_SECONDS", 0.0)  # look after every batch
    for n in range(BACKLOG):
        setup.append(make_mail(sender=f"old{n}@example.net", subject=f"Old complaint {n}")[0])
    worker = Worker.build(setup.config, classifier=KeywordBaseline())
    worker.watchers[0].batch_size = 10
    yield worker
    for w in worker.watchers:
        w.imap.close()
    worker.preparer.close()
    worker.db.dispose()


def _arrive_during_backlog(setup: Setup, watcher: MailboxWatcher, at_batch: int) -> None:
    """Append a fresh complaint when the watcher records its `at_batch`-th batch."""
    real = watcher._record
    calls = 0

    def recording(*args: object) -> int:
        nonlocal calls
        calls += 1
        if calls == at_batch:
            setup.append(make_mail(sender="fresh@example.net", subject="A new complaint")[0])
        return real(*args)  # type: ignore[arg-type]

    watcher._record = recording  # type: ignore[method-assign,assignment]


def _recorded(worker: Worker) -> list[tuple[int, str]]:
    """(UID, sender) in the order recorded."""
    with worker.db.reader() as session:
        rows = session.execute(select(Message.uid, Message.sender).order_by(Message.id)).all()
    return [(int(uid), str(sender)) for uid, sender in rows]


def test_a_complaint_arriving_during_a_backlog_is_recorded_before_the_rest(
    setup: Setup, worker: Worker
) -> None:
    [watcher] = worker.watchers
    _arrive_during_backlog(setup, watcher, at_batch=1)
    assert watcher.sync_once() == BACKLOG + 1
    order = _recorded(worker)
    fresh = [i for i, (_, sender) in enumerate(order) if sender == "fresh@example.net"]
    assert len(fresh) == 1
    assert fresh[0] < BACKLOG // 2, "not ahead of the backlog"
    assert order[fresh[0]][0] == BACKLOG + 1  # the newest UID, recorded early
    assert sorted(uid for uid, _ in order) == list(range(1, BACKLOG + 2))  # each once
    flags = setup.flags()
    assert len(flags) == BACKLOG + 1
    assert all(TRIAGED in f for f in flags.values())
    state = watcher.imap.state
    assert state is not None
    with worker.db.reader() as session:
        assert cases.last_uid(session, "main", state.uidvalidity) == BACKLOG
        backlog = cases.keyword_backlog(session, "main", state.uidvalidity)
    assert (backlog.mark, backlog.last_uid, backlog.pending) == (BACKLOG, BACKLOG, [])
    # Its acknowledgement goes out ahead of the backlog's, though queued after most of them.
    with worker.db.transaction() as session:
        batch = outbox.claim_due(session, datetime.now(UTC), 64)
    assert len(batch) > 1
    assert batch[0].recipient == "fresh@example.net"  # claimed and sent first


def test_a_crash_after_fresh_mail_loses_nothing_and_records_nothing_twice(
    setup: Setup, worker: Worker
) -> None:
    [watcher] = worker.watchers
    _arrive_during_backlog(setup, watcher, at_batch=1)
    real = watcher._record
    calls = 0

    def crashing(*args: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("killed mid-backlog")
        return real(*args)  # type: ignore[arg-type]

    watcher._record = crashing  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        watcher.sync_once()
    recorded_before = len(_recorded(worker))
    assert 0 < recorded_before < BACKLOG + 1
    watcher.imap.close()

    again = Worker.build(setup.config, classifier=KeywordBaseline())
    try:
        [fresh_watcher] = again.watchers
        fresh_watcher.sync_once()
        with again.db.reader() as session:
            count = session.scalar(select(func.count()).select_from(Message))
            uids = [u for (u,) in session.execute(select(Message.uid))]
        assert count == BACKLOG + 1
        assert sorted(uids) == list(range(1, BACKLOG + 2))
        assert len({c["reference"] for c in setup.cases()}) == len(setup.cases())
        assert all(TRIAGED in f for f in setup.flags().values())
    finally:
        fresh_watcher.imap.close()
        again.preparer.close()
        again.db.dispose()


def test_a_stop_between_batches_ends_the_pass_and_the_next_one_resumes(
    setup: Setup, worker: Worker
) -> None:
    """SIGTERM, or the mailbox's lease gone to another worker: the batch in hand is
    recorded, the rest of the backlog is left in the mailbox for the next pass."""
    [watcher] = worker.watchers
    real = watcher._record
    calls = 0

    def stopping(*args: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            watcher.stop.set()
        return real(*args)  # type: ignore[arg-type]

    watcher._record = stopping  # type: ignore[method-assign,assignment]
    assert watcher.sync_once() == 20  # two batches of 10
    assert len(_recorded(worker)) == 20
    with worker.db.reader() as session:  # what `candour status` shows meanwhile
        seen = status.mailbox_status(session, "main", datetime.now(UTC))
    assert seen.backlog == BACKLOG - 20
    watcher.stop.clear()
    assert watcher.sync_once() == BACKLOG - 20
    with worker.db.reader() as session:
        assert status.mailbox_status(session, "main", datetime.now(UTC)).backlog == 0
    assert sorted(uid for uid, _ in _recorded(worker)) == list(range(1, BACKLOG + 1))


def test_live_mail_goes_out_ahead_of_a_backlogs_acknowledgements(
    setup: Setup, worker: Worker
) -> None:
    """The backlog is recorded but its acknowledgements are still going out when a new
    complaint arrives: its acknowledgement is claimed first."""
    [watcher] = worker.watchers
    assert watcher.sync_once() == BACKLOG  # a backlog: nothing given priority
    setup.append(make_mail(sender="live@example.net", subject="Just now")[0])
    watcher.imap.client.noop()  # what IDLE would have told the daemon
    assert watcher.sync_once() == 1  # a pass of one message: live mail
    with worker.db.transaction() as session:
        batch = outbox.claim_due(session, datetime.now(UTC), 64)
    assert len(batch) > 1
    assert batch[0].recipient == "live@example.net"

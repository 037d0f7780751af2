"""The shared corpus of 389 real-world edge-case emails: nothing crashes, nothing is dropped,
no robot is ever answered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from classifiers.baseline import KeywordBaseline
from daemon.clock import SystemClock
from daemon.mail.parse import ParseError, parse_message
from daemon.mail.values import Outcome, RawMessage
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import InlinePreparer
from models.database import Database
from models.schema import Message, Outbox
from tests.conftest import CORPUS, Setup, corpus_catalog

ROBOTS = {"auto_reply", "bounce"}

pytestmark = pytest.mark.usefixtures("corpus")


def test_every_file_parses_or_raises_parse_error() -> None:
    failures = []
    for path, _ in corpus_catalog():
        try:
            parse_message(path.read_bytes())
        except ParseError as exc:
            failures.append((path.name, str(exc)))
    # Even MimeKit's stack-overflow test (a 135 KB To header of encoded words, which once
    # defeated both parsers) is read: every header field is cut at 16 KB first.
    assert failures == []


def test_every_file_goes_through_triage_and_robots_get_no_reply(
    setup: Setup, tmp_path: Path
) -> None:
    catalog = corpus_catalog()
    db = Database(f"sqlite:///{tmp_path / 'corpus.db'}")
    db.upgrade()
    triage = Triage(setup.config.mailbox[0], db, InlinePreparer(KeywordBaseline()), SystemClock())
    now = datetime.now(UTC)
    raws = [
        RawMessage(uid=i + 1, raw=path.read_bytes(), received_at=now)
        for i, (path, _) in enumerate(catalog)
    ]
    results = []
    for start in range(0, len(raws), 50):
        results.extend(triage.process_batch(1, raws[start : start + 50]))

    assert len(results) == len(catalog)
    by_outcome = {o: sum(r.outcome == o for r in results) for o in Outcome}
    with db.reader() as session:
        stored = session.scalar(select(func.count(Message.id)))
        acked_uids = set(
            session.scalars(
                select(Message.uid)
                .join(Outbox, Outbox.case_id == Message.case_id)
                .where(Message.outcome == "created")
            )
        )
        quarantined = list(session.scalars(select(Message).where(Message.outcome == "quarantined")))
        overflow = [i for i, (p, _) in enumerate(catalog) if p.name == "stack-overflow.txt"]
        kept = session.scalar(select(Message.raw).where(Message.uid == overflow[0] + 1))
    # Every message is stored except exact duplicates of one already stored.
    assert stored == len(catalog) - by_outcome[Outcome.DUPLICATE]
    for (path, category), result in zip(catalog, results, strict=True):
        if category in ROBOTS:
            assert result.uid not in acked_uids, f"{path.name} ({category}) was answered"
            assert result.outcome != Outcome.CREATED, f"{path.name} opened a case"
    assert quarantined == []
    # What is read cut short is kept byte for byte all the same.
    assert kept == (CORPUS / "public/mimekit/stack-overflow.txt").read_bytes()
    assert by_outcome[Outcome.CREATED] > 100


def test_corpus_through_the_daemon_and_dovecot(setup: Setup) -> None:
    catalog = corpus_catalog()
    client = setup.imap()
    appended: list[tuple[Path, str]] = []
    try:
        for path, category in catalog:
            try:
                client.append("INBOX", path.read_bytes())
            except Exception:  # Dovecot refuses a few (e.g. NUL bytes): not our input then
                continue
            appended.append((path, category))
    finally:
        client.logout()
    result = setup.cli("run", "--once", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    flags = setup.flags()
    assert len(flags) == len(appended)
    assert all(b"$CandourTriaged" in f or b"$CandourQuarantined" in f for f in flags.values())
    robot_senders = set()
    for path, category in appended:
        if category in ROBOTS:
            parsed = parse_message(path.read_bytes())
            robot_senders.update({parsed.sender, parsed.reply_to or ""})
    answered = {r for m in setup.outgoing() for r in m.rcpt_tos}
    assert not (answered & robot_senders)
    # stderr is only JSON lines: no library chatter, no message content.
    for line in result.stderr.splitlines():
        assert line.startswith("{"), line

"""Staff replies from a table of .eml files (tests/mail/staff/): relayed, noted, applied or
refused, and always answered when not relayed. In-process on SQLite (no IMAP, no SMTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from classifiers.baseline import KeywordBaseline
from daemon.clock import SettableClock
from daemon.mail.values import RawMessage
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import InlinePreparer
from models.database import Database
from models.schema import Case, CaseEvent, Outbox
from replies.addresses import case_address
from tests.conftest import make_mailbox

STAFF = Path(__file__).parent / "mail" / "staff"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SECRET = b"staff-replies-secret-0123"
JANE = "jane.citizen@example.net"


@pytest.fixture
def triage(tmp_path: Path) -> Triage:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.upgrade()
    mailbox = make_mailbox(staff_domains=["example.org"], routes={"complaint": "team@example.org"})
    triage = Triage(
        mailbox, db, InlinePreparer(KeywordBaseline()), SettableClock(NOW), secret=SECRET
    )
    complaint = (
        f"From: Jane Citizen <{JANE}>\r\nTo: complaints@example.org\r\n"
        "Subject: Complaint about my appointment\r\nMessage-ID: <c1@example.net>\r\n\r\n"
        "I waited three hours and nobody told me why. I want a formal response.\r\n"
    ).encode()
    triage.process_batch(1, [RawMessage(1, complaint, NOW)])
    return triage


def _send(triage: Triage, name: str) -> str:
    with triage.db.reader() as session:
        reference = session.scalars(select(Case.reference)).one()
    text = (STAFF / name).read_text()
    text = text.replace("{case_address}", case_address(triage.mailbox.address, reference, SECRET))
    raw = text.replace("{reference}", reference).replace("\n", "\r\n").encode()
    [result] = triage.process_batch(1, [RawMessage(2, raw, NOW)])
    return str(result.reason)


def _after(triage: Triage) -> tuple[Case, list[str], list[Outbox]]:
    with triage.db.reader() as session:
        case = session.scalars(select(Case)).one()
        events = [e.kind for e in session.scalars(select(CaseEvent).order_by(CaseEvent.id))]
        mail = list(session.scalars(select(Outbox).order_by(Outbox.id)))
        session.expunge_all()
    return case, events, mail


# file -> (result reason, relayed to the complainant?, answered to staff?, a case event it
#          leaves, and a word the answer or the note must carry)
CASES = [
    ("relay.eml", "relayed", True, False, "relay", "sorry for the wait"),
    ("note-one-line.eml", "note", False, True, "note", "called Sam on 07700 900555"),
    ("note-below.eml", "note", False, True, "note", "Spoke to the ward manager"),
    ("interim-on-top.eml", "relayed", True, False, "relay", "write by Friday"),
    ("interim-at-the-end.eml", "rejected", False, True, "staff.reply_rejected", "first lines"),
    ("commands-only.eml", "commands", False, True, "assigned", "#assign pat@example.org"),
    ("reopen-with-text.eml", "rejected", False, True, "staff.reply_rejected", "takes nothing"),
    ("unknown-command.eml", "rejected", False, True, "staff.reply_rejected", "unknown command"),
    ("close-referred.eml", "commands", False, True, "case.referred", "#close referred"),
    ("empty.eml", "commands", False, True, "staff.reply_empty", "no text of yours"),
]


@pytest.mark.parametrize(("name", "reason", "relayed", "answered", "event", "words"), CASES)
def test_a_staff_reply(
    triage: Triage,
    name: str,
    reason: str,
    relayed: bool,
    answered: bool,
    event: str,
    words: str,
) -> None:
    assert _send(triage, name).startswith(reason)
    case, events, mail = _after(triage)
    relays = [m for m in mail if m.kind == "relay"]
    answers = [m for m in mail if m.recipient == "sam.lee@example.org"]
    assert bool(relays) is relayed
    assert len(answers) == (1 if answered else 0)
    assert event in events
    where = answers[0].raw.decode() if answered else relays[0].raw.decode()
    history_or_mail = where + " ".join(events)
    if event == "note":
        with triage.db.reader() as session:
            notes = [e.detail for e in session.scalars(select(CaseEvent)) if e.kind == "note"]
        history_or_mail = " ".join(notes)
    assert words in history_or_mail.replace("=\r\n", "")
    if relayed:
        assert "#interim" not in relays[0].raw.decode()
    if name == "interim-on-top.eml":
        assert case.responded_at is None  # an interim reply leaves the stage unanswered
    if name == "relay.eml":
        assert case.status == "responded"

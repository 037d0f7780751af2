"""The pipeline in-process on SQLite: the decisions that need a database, without IMAP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from classifiers.baseline import KeywordBaseline
from daemon.clock import SettableClock
from daemon.mail.values import Outcome, RawMessage
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import InlinePreparer
from models.database import Database
from models.schema import Case, Outbox
from tests.conftest import make_mail, make_mailbox

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def _triage(tmp_path: Path, **mailbox: object) -> tuple[Triage, SettableClock]:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.upgrade()
    clock = SettableClock(NOW)
    return Triage(make_mailbox(**mailbox), db, InlinePreparer(KeywordBaseline()), clock), clock


class Feeder:
    def __init__(self, triage: Triage) -> None:
        self.triage = triage
        self.uid = 0

    def __call__(self, raw: bytes, received: datetime = NOW) -> Outcome:
        self.uid += 1
        [result] = self.triage.process_batch(1, [RawMessage(self.uid, raw, received)])
        return result.outcome

    def acks(self) -> list[Outbox]:
        with self.triage.db.reader() as session:
            return list(session.scalars(select(Outbox).order_by(Outbox.id)))

    def cases(self) -> list[Case]:
        with self.triage.db.reader() as session:
            return list(session.scalars(select(Case).order_by(Case.id)))


@pytest.fixture
def feed(tmp_path: Path) -> Feeder:
    return Feeder(_triage(tmp_path)[0])


def test_references_count_up_per_prefix_and_year(tmp_path: Path) -> None:
    triage, _ = _triage(tmp_path, reference_prefix="FDB")
    feed = Feeder(triage)
    for n in range(3):
        feed(make_mail(sender=f"p{n}@example.net")[0])
    feed(make_mail(sender="late@example.net")[0], received=datetime(2027, 1, 4, 10, tzinfo=UTC))
    assert [c.reference for c in feed.cases()] == [
        "FDB-2026-00001",
        "FDB-2026-00002",
        "FDB-2026-00003",
        "FDB-2027-00001",
    ]


def test_ack_deadline_is_one_working_day_by_the_counting_rule(feed: Feeder) -> None:
    friday_evening = datetime(2026, 3, 6, 18, 30, tzinfo=UTC)
    feed(make_mail()[0], received=friday_evening)
    [case] = feed.cases()
    # Counts as received Monday 09:00; one working day later is Tuesday 17:00 (GMT).
    assert case.ack_due_at == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


def test_one_sender_gets_at_most_three_automatic_replies_a_day(feed: Feeder) -> None:
    for n in range(5):
        assert (
            feed(make_mail(sender="flood@example.net", subject=f"complaint {n}")[0])
            == Outcome.CREATED
        )
    assert len(feed.acks()) == 3
    assert [c.no_ack_reason for c in feed.cases()] == [
        None,
        None,
        None,
        "rate-limited",
        "rate-limited",
    ]


def test_backlog_mail_older_than_the_limit_is_recorded_not_acknowledged(feed: Feeder) -> None:
    feed(make_mail()[0], received=NOW - timedelta(days=90))
    [case] = feed.cases()
    assert case.no_ack_reason == "too-old"
    assert feed.acks() == []


def test_reply_to_is_where_the_acknowledgement_goes(feed: Feeder) -> None:
    feed(make_mail(headers={"Reply-To": "Advocate <advocate@example.com>"})[0])
    assert [a.recipient for a in feed.acks()] == ["advocate@example.com"]


def test_same_message_twice_is_a_duplicate(feed: Feeder) -> None:
    raw, _ = make_mail()
    assert feed(raw) == Outcome.CREATED
    assert feed(raw) == Outcome.DUPLICATE
    assert len(feed.cases()) == 1


def test_reference_in_subject_threads_only_for_the_same_complainant(feed: Feeder) -> None:
    feed(make_mail(sender="owner@example.net")[0])
    reference = feed.cases()[0].reference
    follow = make_mail(sender="owner@example.net", subject=f"More about {reference}")[0]
    assert feed(follow) == Outcome.FOLLOWUP
    stranger = make_mail(sender="stranger@example.net", subject=f"Re: {reference}")[0]
    assert feed(stranger) == Outcome.CREATED
    assert len(feed.cases()) == 2
    assert len(feed.acks()) == 2


def test_a_reply_to_our_acknowledgement_threads_by_references(feed: Feeder) -> None:
    feed(make_mail(sender="owner@example.net")[0])
    [ack] = feed.acks()
    reply = make_mail(
        sender="someone.else@example.net",
        subject="Re: something",
        headers={"References": f"<{ack.message_id}>"},
    )[0]
    assert feed(reply) == Outcome.FOLLOWUP
    assert len(feed.acks()) == 1


def test_an_out_of_office_answering_our_ack_joins_the_case_silently(feed: Feeder) -> None:
    feed(make_mail(sender="owner@example.net")[0])
    [ack] = feed.acks()
    ooo = make_mail(
        sender="owner@example.net",
        subject="Automatic reply: We have received",
        headers={"In-Reply-To": f"<{ack.message_id}>", "Auto-Submitted": "auto-replied"},
    )[0]
    assert feed(ooo) == Outcome.AUTOMATIC
    assert len(feed.acks()) == 1


def test_a_message_that_breaks_the_pipeline_is_quarantined_not_lost(
    feed: Feeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("template store unavailable")

    monkeypatch.setattr("replies.compose.automatic_reply", broken)
    raw, _ = make_mail()
    assert feed(raw) == Outcome.QUARANTINED
    with feed.triage.db.reader() as session:
        from models.cases import quarantined

        [kept] = quarantined(session)
        assert kept.raw == raw
        assert "template store unavailable" in (kept.reason or "")
    assert feed.cases() == []  # the half-made case was rolled back with its savepoint


def _batch(feed: Feeder, raws: list[bytes]) -> list[Outcome]:
    first = feed.uid + 1
    feed.uid += len(raws)
    items = [RawMessage(first + i, raw, NOW) for i, raw in enumerate(raws)]
    return [r.outcome for r in feed.triage.process_batch(1, items)]


def test_one_bad_message_in_a_batch_is_quarantined_alone_and_no_reference_is_skipped(
    feed: Feeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from replies import compose

    real = compose.automatic_reply

    def breaks_on_one(*args: object, **kwargs: object) -> compose.OutgoingMail:
        original = kwargs["original"]
        if "poison" in original.subject:  # type: ignore[attr-defined]
            raise RuntimeError("cannot render")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("replies.compose.automatic_reply", breaks_on_one)
    raws = [make_mail(sender=f"p{i}@example.net", subject=f"Complaint {i}")[0] for i in range(5)]
    raws[2] = make_mail(sender="p2@example.net", subject="Complaint poison")[0]
    outcomes = _batch(feed, raws)
    assert outcomes == [Outcome.CREATED] * 2 + [Outcome.QUARANTINED] + [Outcome.CREATED] * 2
    references = [c.reference for c in feed.cases()]
    # The fast path failed as a whole; the per-message path rolled back only the poison
    # message's savepoint, including its reference number, which the next case got.
    assert references == [f"CMP-2026-0000{n}" for n in range(1, 5)]
    assert len(feed.acks()) == 4


def test_a_follow_up_in_the_same_batch_as_its_first_message_joins_that_case(
    feed: Feeder,
) -> None:
    first, mid = make_mail(sender="ann@example.net")
    follow_up = make_mail(
        sender="ann@example.net",
        subject="Re: Complaint about my appointment",
        body="One more thing: the phone line was engaged all day.",
        headers={"In-Reply-To": f"<{mid}>", "References": f"<{mid}>"},
    )[0]
    other = make_mail(sender="bob@example.net")[0]
    assert _batch(feed, [first, follow_up, other]) == [
        Outcome.CREATED,
        Outcome.FOLLOWUP,
        Outcome.CREATED,
    ]
    assert [c.complainant for c in feed.cases()] == ["ann@example.net", "bob@example.net"]


def test_losing_the_database_is_raised_not_blamed_on_the_messages(
    feed: Feeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    def gone(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr("models.lifecycle.on_opened", gone)
    with pytest.raises(OperationalError):
        _batch(feed, [make_mail()[0]])
    with feed.triage.db.reader() as session:
        from models.cases import quarantined

        assert quarantined(session) == []
    assert feed.cases() == []


ROUTES = {"complaint": "team@example.org", "safeguarding": "lead@example.org"}


def _copies(feed: Feeder, kind: str = "followup_copy") -> list[str]:
    return [o.recipient for o in feed.acks() if o.kind == kind]


def _events(feed: Feeder, case: Case) -> list[tuple[str, str]]:
    from models.schema import CaseEvent

    with feed.triage.db.reader() as session:
        rows = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
        return [(e.kind, e.detail) for e in rows]


def _routed_case(tmp_path: Path) -> tuple[Feeder, Outbox]:
    """A mailbox with a complaints team and a safeguarding lead, one ordinary complaint
    in it; returns the feeder and the complaint's acknowledgement."""
    feed = Feeder(_triage(tmp_path, routes=ROUTES)[0])
    feed(make_mail(sender="owner@example.net", body="My appointment was cancelled twice.")[0])
    [ack] = [o for o in feed.acks() if o.kind == "acknowledgement"]
    return feed, ack


def _follow_up(ack: Outbox, body: str) -> bytes:
    return make_mail(
        sender="owner@example.net",
        subject="Re: My appointment",
        body=body,
        headers={"In-Reply-To": f"<{ack.message_id}>"},
    )[0]


def test_a_disclosure_in_a_follow_up_flags_the_case_and_tells_the_safeguarding_lead(
    tmp_path: Path,
) -> None:
    feed, ack = _routed_case(tmp_path)
    [case] = feed.cases()
    assert "safeguarding" not in case.flags
    assert _copies(feed, "staff_copy") == ["team@example.org"]
    disclosure = "Since then my carer has hit me twice and I do not feel safe at home."
    assert feed(_follow_up(ack, disclosure)) == Outcome.FOLLOWUP
    [case] = feed.cases()
    assert case.flags.split(",").count("safeguarding") == 1
    assert _copies(feed) == ["team@example.org", "lead@example.org"]
    assert [kind for kind, _ in _events(feed, case)].count("safeguarding.flagged") == 1
    [copy] = [o for o in feed.acks() if o.recipient == "lead@example.org"]
    assert b"SAFEGUARDING" in copy.raw

    # Later follow-ups on the flagged case go to the lead too; the flag is not repeated.
    assert feed(_follow_up(ack, "Is anyone going to call me back?")) == Outcome.FOLLOWUP
    [case] = feed.cases()
    assert case.flags.split(",").count("safeguarding") == 1
    assert _copies(feed) == ["team@example.org", "lead@example.org"] * 2
    assert [kind for kind, _ in _events(feed, case)].count("safeguarding.flagged") == 1


def test_an_ordinary_follow_up_goes_to_the_handler_alone(tmp_path: Path) -> None:
    feed, ack = _routed_case(tmp_path)
    assert feed(_follow_up(ack, "Any news on this? It has been a week.")) == Outcome.FOLLOWUP
    [case] = feed.cases()
    assert "safeguarding" not in case.flags
    assert _copies(feed) == ["team@example.org"]


def test_our_own_templates_never_trip_the_safety_net() -> None:
    """A reply quoting our mail must not flag a case for what we wrote."""
    from classifiers.safety import SafetyNet, shipped_rules

    net = SafetyNet(shipped_rules())
    templates = sorted((Path(__file__).parent.parent / "replies" / "templates").glob("*.txt"))
    assert len(templates) >= 10
    assert {t.name: net.rule_hits(t.read_text()) for t in templates} == {
        t.name: () for t in templates
    }

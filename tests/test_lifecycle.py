"""The case lifecycle on SQLite: every transition, its clock and its recorded event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from daemon.casework.deadlines import acknowledgement_limit, calendar_for, procedure_for
from daemon.casework.workdays import TimeLimit
from daemon.config import MailboxConfig
from models import lifecycle, outbox
from models.cases import case_events
from models.database import Database
from models.schema import Case
from tests.conftest import make_mailbox, queue_reply

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday 2 March 2026, 10:00 GMT
COMMUNITY_STAGES = [
    {"name": "response", "respond_within": "10 working days"},
    {
        "name": "chief executive review",
        "respond_within": "20 working days",
        "request_within": "20 working days",
    },
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'lifecycle.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.transaction() as open_session:
        yield open_session


MAILBOX = make_mailbox()
CALENDAR = calendar_for(MAILBOX)
PROCEDURE = procedure_for(MAILBOX, CALENDAR)


def new_case(
    session: Session,
    *,
    label: str = "complaint",
    received: datetime = NOW,
    mailbox: MailboxConfig = MAILBOX,
    needs_review: bool = False,
) -> Case:
    case = Case(
        reference=f"CMP-2026-{session.query(Case).count() + 1:05d}",
        mailbox=mailbox.name,
        status="new",
        label=label,
        confidence=0.9,
        needs_review=needs_review,
        flags="",
        model_version="test",
        complainant="jane.citizen@example.net",
        subject="My appointment",
        received_at=received,
        created_at=received,
        ack_due_at=calendar_for(mailbox).due(received, acknowledgement_limit(mailbox)),
    )
    session.add(case)
    session.flush()
    return case


def kinds(session: Session, case: Case) -> list[str]:
    session.flush()
    return [event.kind for event in case_events(session, case.id)]


def working_days(n: int) -> TimeLimit:
    return TimeLimit(n, "working_days")


# -- opening ---------------------------------------------------------------------------------


@pytest.mark.parametrize("needs_review", [False, True])
def test_a_complaint_starts_stage_one_from_its_receipt(
    session: Session, needs_review: bool
) -> None:
    received = NOW - timedelta(hours=30)  # Saturday: counts from Monday 09:00
    case = new_case(session, received=received, needs_review=needs_review)
    lifecycle.on_opened(session, case, PROCEDURE, NOW)
    assert case.stage == 1
    assert case.stage_started_at == received
    assert case.stage_due_at == CALENDAR.due(received, working_days(10))
    assert case.status == "new"  # until the acknowledgement is delivered
    assert kinds(session, case) == ["stage.started"]


@pytest.mark.parametrize("label", ["feedback", "data_protection", "safeguarding", "hr"])
def test_other_labels_run_no_stage(session: Session, label: str) -> None:
    case = new_case(session, label=label)
    lifecycle.on_opened(session, case, PROCEDURE, NOW)
    assert (case.stage, case.stage_due_at) == (0, None)
    assert kinds(session, case) == []


def test_opening_twice_does_not_restart_the_clock(session: Session) -> None:
    case = new_case(session)
    lifecycle.on_opened(session, case, PROCEDURE, NOW)
    due = case.stage_due_at
    lifecycle.on_opened(session, case, PROCEDURE, NOW + timedelta(days=3))
    assert case.stage_due_at == due
    assert kinds(session, case) == ["stage.started"]


def test_the_first_stage_is_the_policys_own(session: Session) -> None:
    mailbox = make_mailbox(
        policy={"stages": [{"name": "resolution", "respond_within": "15 working days"}]}
    )
    case = new_case(session, mailbox=mailbox)
    lifecycle.on_opened(session, case, procedure_for(mailbox, CALENDAR), NOW)
    assert case.stage_due_at == CALENDAR.due(NOW, working_days(15))
    assert procedure_for(mailbox, CALENDAR).stage_name(1) == "resolution"


# -- the automatic reply ---------------------------------------------------------------------


def test_an_acknowledged_complaint_is_in_its_stage(session: Session) -> None:
    case = new_case(session)
    lifecycle.on_opened(session, case, PROCEDURE, NOW)
    sent = NOW + timedelta(minutes=1)
    lifecycle.on_automatic_reply_sent(session, case, "acknowledgement", sent)
    assert (case.status, case.acknowledged_at, case.ack_breached) == ("in_stage", sent, False)
    assert kinds(session, case) == ["stage.started", "case.acknowledged"]


def test_acknowledged_feedback_is_acknowledged(session: Session) -> None:
    case = new_case(session, label="feedback")
    lifecycle.on_automatic_reply_sent(session, case, "thanks", NOW)
    assert case.status == "acknowledged"


def test_a_reply_sent_after_its_deadline_is_a_breach(session: Session) -> None:
    case = new_case(session)
    assert case.ack_due_at is not None
    late = case.ack_due_at + timedelta(seconds=1)
    lifecycle.on_automatic_reply_sent(session, case, "acknowledgement", late)
    assert case.ack_breached
    assert kinds(session, case) == ["case.acknowledged", "acknowledgement.late"]


def test_a_signposted_case_waits_open_for_staff_to_confirm_the_referral(session: Session) -> None:
    case = new_case(session, label="safeguarding")
    lifecycle.on_automatic_reply_sent(session, case, "signpost", NOW)
    assert (case.status, case.close_reason) == ("referral_pending", None)
    assert case.closed_at is None
    assert kinds(session, case) == ["case.acknowledged"]
    lifecycle.close(session, case, NOW, reason="referred", actor="dpo@example.org")
    assert (case.status, case.close_reason) == ("referred", "referred")


def test_unopposed_referrals_close_only_after_their_time(session: Session) -> None:
    case = new_case(session, label="hr")
    lifecycle.on_automatic_reply_sent(session, case, "signpost", NOW)
    case.referral_due_at = NOW + timedelta(days=2)
    session.flush()
    assert lifecycle.close_unopposed_referrals(session, "main", NOW + timedelta(days=1)) == 0
    assert lifecycle.close_unopposed_referrals(session, "main", NOW + timedelta(days=3)) == 1
    assert (case.status, case.close_reason) == ("referred", "referred")


def test_a_referred_case_relabelled_a_complaint_is_back_in_the_procedure(
    session: Session,
) -> None:
    case = new_case(session, label="data_protection")
    case.automatic_reply = "signpost"
    lifecycle.on_automatic_reply_sent(session, case, "signpost", NOW)
    lifecycle.close(session, case, NOW, reason="referred", actor="staff")
    case.label = "complaint"
    later = NOW + timedelta(days=30)
    lifecycle.on_relabelled(session, case, PROCEDURE, later, "staff")
    assert (case.status, case.stage, case.closed_at) == ("in_stage", 1, None)
    # The clock counts from the original receipt: a month later it is overdue already.
    assert case.stage_due_at == PROCEDURE.due(case.received_at, "10 working days")
    assert case.stage_due_at < later
    case.label = "feedback"
    lifecycle.on_relabelled(session, case, PROCEDURE, later, "staff")
    assert (case.status, case.stage) == ("acknowledged", 0)
    assert case.stage_due_at is None  # the clock stopped


def test_only_automatic_replies_acknowledge(session: Session) -> None:
    case = new_case(session)
    with pytest.raises(ValueError, match="not an automatic reply"):
        lifecycle.on_automatic_reply_sent(session, case, "relay", NOW)


def _queue(session: Session, case: Case, kind: str) -> None:
    """Queue one reply of `kind` to the case's complainant."""
    queue_reply(
        session,
        recipient=case.complainant,
        message_id=f"{kind}-{case.id}@example.org",
        now=NOW,
        kind=kind,
        case_id=case.id,
        once_key=f"ack:{case.id}",
    )


def _deliver(session: Session, case: Case, kind: str, at: datetime) -> None:
    """Queue, claim and mark sent one outbox row for the case, as the sender does."""
    _queue(session, case, kind)
    session.flush()
    [delivery] = outbox.claim_due(session, at, 10)
    outbox.start_sending(session, [delivery.id])
    outbox.mark_sent(session, delivery.id, at)


def test_the_outbox_records_the_acknowledgement_through_the_lifecycle(session: Session) -> None:
    case = new_case(session)
    lifecycle.on_opened(session, case, PROCEDURE, NOW)
    _deliver(session, case, "acknowledgement", NOW + timedelta(seconds=5))
    assert case.status == "in_stage"
    assert case.acknowledged_at == NOW + timedelta(seconds=5)
    assert kinds(session, case) == ["stage.started", "acknowledgement.sent", "case.acknowledged"]


def test_a_batch_of_mixed_replies_is_recorded_case_by_case(session: Session) -> None:
    """Acknowledgements, thanks and signposts sent together, as the outbox sender records
    them: one UPDATE for the rows, the cases' changes flushed a kind at a time."""
    kinds_sent = ["acknowledgement", "signpost", "acknowledgement", "thanks", "signpost"]
    cases = [
        new_case(session, label="feedback" if k == "thanks" else "complaint") for k in kinds_sent
    ]
    for case, kind in zip(cases, kinds_sent, strict=True):
        if kind == "acknowledgement":
            lifecycle.on_opened(session, case, PROCEDURE, NOW)
        _queue(session, case, kind)
    session.flush()
    sent_at = NOW + timedelta(seconds=3)
    deliveries = outbox.claim_due(session, sent_at, 10)
    assert [d.attempts for d in deliveries] == [1] * 5
    assert [d.id for d in deliveries] == sorted(d.id for d in deliveries)
    outbox.start_sending(session, [d.id for d in deliveries])
    outbox.mark_sent_many(session, [d.id for d in deliveries], sent_at)

    assert [c.status for c in cases] == [
        "in_stage",
        "referral_pending",
        "in_stage",
        "acknowledged",
        "referral_pending",
    ]
    assert all(c.acknowledged_at == sent_at for c in cases)
    assert [c.closed_at is not None for c in cases] == [False] * 5  # the model closes nothing
    assert kinds(session, cases[1]) == ["signpost.sent", "case.acknowledged"]
    rows = outbox.rows(session)
    assert {(r.status, r.sent_copy, r.attempts, r.sent_at) for r in rows} == {
        ("sent", "pending", 1, sent_at)
    }
    assert outbox.claim_due(session, sent_at, 10) == []


def test_a_daemon_restarting_late_sends_at_once_and_records_the_breach(session: Session) -> None:
    # Received Friday 17:30: due Tuesday 17:00. The daemon comes back on Wednesday.
    case = new_case(session, received=datetime(2026, 3, 6, 17, 30, tzinfo=UTC))
    restarted = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    assert case.ack_due_at is not None
    assert restarted > case.ack_due_at
    _deliver(session, case, "acknowledgement", restarted)
    assert case.ack_breached
    assert "acknowledgement.late" in kinds(session, case)


def test_an_unsent_acknowledgement_is_flagged_once_when_its_deadline_passes(
    session: Session,
) -> None:
    owed = new_case(session)
    withheld = new_case(session)
    withheld.no_ack_reason = "rate-limited"
    assert owed.ack_due_at is not None
    before = owed.ack_due_at - timedelta(minutes=1)
    after = owed.ack_due_at + timedelta(minutes=1)
    assert lifecycle.record_late_acknowledgements(session, "main", before) == 0
    assert lifecycle.record_late_acknowledgements(session, "main", after) == 1
    assert lifecycle.record_late_acknowledgements(session, "main", after) == 0
    assert (owed.ack_breached, withheld.ack_breached) == (True, False)
    # When the reply finally goes out, the breach is not recorded a second time.
    lifecycle.on_automatic_reply_sent(session, owed, "acknowledgement", after)
    assert kinds(session, owed).count("acknowledgement.late") == 1


# -- responses and escalation ----------------------------------------------------------------


def _in_stage(session: Session, mailbox: MailboxConfig = MAILBOX) -> Case:
    case = new_case(session, mailbox=mailbox)
    lifecycle.on_opened(session, case, procedure_for(mailbox, CALENDAR), NOW)
    lifecycle.on_automatic_reply_sent(session, case, "acknowledgement", NOW)
    return case


def test_a_staff_response_opens_the_window_to_ask_for_stage_two(session: Session) -> None:
    case = _in_stage(session)
    answered = NOW + timedelta(days=7)
    lifecycle.on_staff_response(session, case, answered, PROCEDURE)
    assert (case.status, case.responded_at) == ("responded", answered)
    assert case.request_due_at == CALENDAR.due(answered, working_days(20))
    assert kinds(session, case)[-1] == "stage.responded"


def test_a_second_staff_reply_keeps_the_first_response(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.on_staff_response(session, case, NOW + timedelta(days=1), PROCEDURE)
    lifecycle.on_staff_response(session, case, NOW + timedelta(days=2), PROCEDURE)
    assert case.responded_at == NOW + timedelta(days=1)
    assert kinds(session, case).count("stage.responded") == 1


def test_the_complainant_asks_for_stage_two_in_time(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.on_staff_response(session, case, NOW + timedelta(days=7), PROCEDURE)
    asked = NOW + timedelta(days=10)
    problem = lifecycle.escalate(
        session, case, asked, PROCEDURE, actor="complainant", by_complainant=True
    )
    assert problem is None
    assert (case.stage, case.status, case.stage_started_at) == (2, "in_stage", asked)
    assert case.stage_due_at == CALENDAR.due(asked, working_days(25))
    assert (case.responded_at, case.request_due_at, case.late_request) == (None, None, False)
    assert kinds(session, case)[-1] == "stage.escalated"


def test_a_late_request_is_flagged_not_refused(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.on_staff_response(session, case, NOW, PROCEDURE)
    assert case.request_due_at is not None
    asked = case.request_due_at + timedelta(minutes=1)
    problem = lifecycle.escalate(
        session, case, asked, PROCEDURE, actor="complainant", by_complainant=True
    )
    assert problem is None
    assert (case.stage, case.late_request) == (2, True)
    assert kinds(session, case)[-2:] == ["escalation.late_request", "stage.escalated"]


def test_staff_may_escalate_at_any_time_without_a_late_flag(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.on_staff_response(session, case, NOW, PROCEDURE)
    later = NOW + timedelta(days=90)
    assert (
        lifecycle.escalate(
            session, case, later, PROCEDURE, actor="lead@example.org", by_complainant=False
        )
        is None
    )
    assert (case.stage, case.late_request) == (2, False)
    assert case_events(session, case.id)[-1].actor == "lead@example.org"


def test_there_is_no_stage_after_the_last(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.escalate(session, case, NOW, PROCEDURE, actor="staff", by_complainant=False)
    assert case.stage == 2
    problem = lifecycle.escalate(session, case, NOW, PROCEDURE, actor="staff", by_complainant=False)
    assert problem is not None
    assert "stage 2 is the last stage" in problem


def test_responding_to_the_last_stage_opens_no_window(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.escalate(session, case, NOW, PROCEDURE, actor="staff", by_complainant=False)
    lifecycle.on_staff_response(session, case, NOW + timedelta(days=20), PROCEDURE)
    assert (case.status, case.request_due_at) == ("responded", None)


def test_a_closed_case_cannot_be_escalated(session: Session) -> None:
    case = _in_stage(session)
    lifecycle.close(session, case, NOW, reason="withdrawn", actor="complainant")
    problem = lifecycle.escalate(
        session, case, NOW, PROCEDURE, actor="complainant", by_complainant=True
    )
    assert problem is not None
    assert "withdrawn" in problem
    assert case.stage == 1


def test_staff_can_start_the_procedure_for_feedback(session: Session) -> None:
    case = new_case(session, label="feedback")
    lifecycle.escalate(session, case, NOW, PROCEDURE, actor="staff", by_complainant=False)
    assert (case.stage, case.status) == (1, "in_stage")
    assert case.stage_due_at == CALENDAR.due(NOW, working_days(10))


# -- closing and reopening -------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["closed", "withdrawn", "referred"])
def test_closing_records_the_reason(session: Session, reason: str) -> None:
    case = _in_stage(session)
    lifecycle.close(session, case, NOW, reason=reason, actor="staff")
    assert (case.status, case.close_reason, case.closed_at) == (reason, reason, NOW)
    assert kinds(session, case)[-1] == f"case.{reason}"
    lifecycle.close(session, case, NOW + timedelta(days=1), reason="closed", actor="staff")
    assert case.closed_at == NOW  # closing a closed case changes nothing


def test_an_unknown_close_reason_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="close reason"):
        lifecycle.close(session, _in_stage(session), NOW, reason="solved", actor="staff")


@pytest.mark.parametrize(("responded", "status"), [(False, "in_stage"), (True, "responded")])
def test_reopening_returns_the_case_where_it_was(
    session: Session, responded: bool, status: str
) -> None:
    case = _in_stage(session)
    if responded:
        lifecycle.on_staff_response(session, case, NOW, PROCEDURE)
    due = case.stage_due_at
    lifecycle.close(session, case, NOW, actor="staff")
    lifecycle.reopen(session, case, NOW + timedelta(days=1), actor="staff")
    assert (case.status, case.closed_at, case.close_reason) == (status, None, None)
    assert case.stage_due_at == due
    assert kinds(session, case)[-1] == "case.reopened"


def test_a_whole_procedure_records_every_transition_with_its_time(session: Session) -> None:
    community = make_mailbox(
        region="WLS", policy={"acknowledge": "24 hours", "stages": COMMUNITY_STAGES}
    )
    calendar = calendar_for(community)
    case = new_case(session, mailbox=community)
    assert case.ack_due_at == NOW + timedelta(hours=24)
    steps = [NOW + timedelta(days=d) for d in (0, 1, 8, 12, 30, 40)]
    lifecycle.on_opened(session, case, procedure_for(community, calendar), steps[0])
    lifecycle.on_automatic_reply_sent(session, case, "acknowledgement", steps[1])
    lifecycle.on_staff_response(session, case, steps[2], procedure_for(community, calendar))
    lifecycle.escalate(
        session,
        case,
        steps[3],
        procedure_for(community, calendar),
        actor="complainant",
        by_complainant=True,
    )
    lifecycle.on_staff_response(session, case, steps[4], procedure_for(community, calendar))
    lifecycle.close(session, case, steps[5], actor="chief.executive@example.org")
    session.flush()
    history = [(e.kind, e.at) for e in case_events(session, case.id)]
    assert history == [
        ("stage.started", steps[0]),
        ("case.acknowledged", steps[1]),
        ("stage.responded", steps[2]),
        ("stage.escalated", steps[3]),
        ("stage.responded", steps[4]),
        ("case.closed", steps[5]),
    ]
    assert case.ack_breached is False
    assert "chief executive review" in case_events(session, case.id)[3].detail

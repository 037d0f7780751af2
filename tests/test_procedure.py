"""The whole procedure from staff commands and complainants' replies, in-process on SQLite
(no IMAP, no SMTP): early resolution, acceptance, extensions, escalation on an overdue
stage to the next stage's handler, outcomes with the complainant's rights, remedies,
lessons, and a second stage answered by someone else. Dates worked by hand below."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from classifiers.baseline import KeywordBaseline
from daemon.clock import SettableClock
from daemon.mail.values import RawMessage
from daemon.triage.pipeline import Triage
from daemon.triage.prepare import InlinePreparer
from models.database import Database
from models.schema import Case, CaseEvent, Extension, Lesson, Outbox, Remedy
from replies.addresses import case_address
from tests.conftest import make_mailbox

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # GMT: 10:00 local, a working day
SECRET = b"procedure-tests-secret-0123"
JANE = "jane.citizen@example.net"
POLICY: dict[str, Any] = {
    "stages": [
        {"name": "stage 1", "respond_within": "10 working days"},
        {
            "name": "stage 2",
            "respond_within": "25 working days",
            "request_within": "20 working days",
            "handler": "investigator@example.org",
        },
    ],
    "early_resolution": {"respond_within": "5 working days"},
    "final_rights": "You may ask the Local Government and Social Care Ombudsman.",
    "same_handler": "hold",
}


class Run:
    """One mailbox's pipeline and a clock; messages in, the database read back."""

    def __init__(self, tmp_path: Path, **policy: Any) -> None:
        self.db = Database(f"sqlite:///{tmp_path / 'p.db'}")
        self.db.upgrade()
        self.clock = SettableClock(MONDAY)
        mailbox = make_mailbox(
            staff_domains=["example.org"],
            routes={"complaint": "team@example.org"},
            policy={**POLICY, **policy},
        )
        self.triage = Triage(
            mailbox, self.db, InlinePreparer(KeywordBaseline()), self.clock, secret=SECRET
        )
        self.uid = 0
        self.send(
            JANE, "complaints@example.org", "I want to make a formal complaint: I waited 9 hours."
        )

    def send(self, sender: str, to: str, body: str, subject: str = "Re: Complaint") -> str:
        self.uid += 1
        raw = (
            f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <m{self.uid}@example.net>\r\n\r\n{body}\r\n"
        ).encode()
        [result] = self.triage.process_batch(1, [RawMessage(self.uid, raw, self.clock.now())])
        return str(result.reason)

    def staff(self, body: str, sender: str = "sam@example.org") -> str:
        address = case_address(self.triage.mailbox.address, self.case().reference, SECRET)
        return self.send(sender, address, body)

    def case(self) -> Case:
        with self.db.reader() as session:
            case = session.scalars(select(Case)).one()
            session.expunge(case)
            return case

    def rows(self, model: type[Any]) -> list[Any]:
        with self.db.reader() as session:
            found = list(session.scalars(select(model).order_by(model.id)))
            session.expunge_all()
            return found

    def mail_to(self, recipient: str) -> list[str]:
        return [r.raw.decode() for r in self.rows(Outbox) if r.recipient == recipient]

    def events(self) -> list[str]:
        return [e.kind for e in self.rows(CaseEvent)]


def local(year: int, month: int, day: int, hour: int = 17) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)  # GMT until 29 March


def test_an_extension_moves_the_deadline_tells_the_complainant_and_is_limited(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path)
    # Received Mon 2 Mar (day 0): 10 working days -> Mon 16 Mar 17:00.
    assert run.case().stage_due_at == local(2026, 3, 16)
    assert run.staff("#extend 5 we are waiting for the ward's notes") == "commands"
    # 5 working days after Mon 16 Mar: Mon 23 Mar 17:00.
    assert run.case().stage_due_at == local(2026, 3, 23)
    [extension] = run.rows(Extension)
    assert (extension.working_days, extension.reason) == (5, "we are waiting for the ward's notes")
    [notice] = [m for m in run.mail_to(JANE) if "More time needed" in m]
    assert "waiting for the ward's notes" in notice
    assert "Mon 23 Mar 2026 17:00" in notice
    run.staff("#extend 3 still waiting")  # the policy allows one per stage
    assert run.case().stage_due_at == local(2026, 3, 23)
    receipts = run.mail_to("sam@example.org")
    assert "limit" in receipts[-1]
    assert "command.refused" in run.events()


def test_a_closing_response_records_the_outcome_and_states_the_rights(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.staff("#close upheld the wait was too long\n#remedy apology we apologised\nDear Jane, ...")
    case = run.case()
    assert (case.status, case.outcome) == ("closed", "upheld")
    assert case.outcome_summary == "the wait was too long"
    [relay] = [m for m in run.mail_to(JANE) if "Dear Jane" in m]
    assert "you can ask for stage 2 within 20 working days" in relay
    [remedy] = run.rows(Remedy)
    assert (remedy.kind, remedy.text) == ("apology", "we apologised")


def test_early_resolution_then_acceptance_starts_stage_one_from_acceptance(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path)
    run.staff("#early")
    case = run.case()
    assert (case.status, case.stage, case.stage_due_at) == ("early_resolution", 0, None)
    assert case.early_due_at == local(2026, 3, 9)  # 5 working days after Mon 2 Mar
    run.clock.set(datetime(2026, 3, 5, 11, tzinfo=UTC))  # Thu 5 Mar
    run.staff("#accept")
    case = run.case()
    assert (case.status, case.stage) == ("new", 1)  # in_stage once the ack is delivered
    assert case.stage_due_at == local(2026, 3, 19)  # 10 working days after Thu 5 Mar


def test_a_complainant_may_escalate_an_overdue_stage_to_its_handler(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.clock.set(datetime(2026, 3, 17, 10, tzinfo=UTC))  # stage 1 was due Mon 16 Mar
    reference = run.case().reference
    asked = "Nobody has answered. I want this escalated to stage 2."
    run.send(JANE, "complaints@example.org", asked, f"Re: Complaint [{reference}]")
    case = run.case()
    assert (case.stage, case.assigned_to) == (2, "investigator@example.org")
    # 25 working days after Tue 17 Mar: 18-20 (3), 23-27 (8), 30 Mar-2 Apr (12); Good Friday
    # 3 Apr and Easter Monday 6 Apr are bank holidays; 7-10 (16), 13-17 (21), 20-23 (25).
    # The clocks went forward on 29 Mar: Thu 23 Apr 17:00 BST is 16:00 UTC.
    assert case.stage_due_at == datetime(2026, 4, 23, 16, tzinfo=UTC)
    assert "not answered in time" in " ".join(e.detail for e in run.rows(CaseEvent))
    assert run.mail_to("investigator@example.org")  # the follow-up reached the handler


def test_the_previous_stages_responder_is_held_back_at_the_next_stage(tmp_path: Path) -> None:
    run = Run(tmp_path)
    assert run.staff("Dear Jane, our stage 1 answer.") == "relayed"
    run.staff("#stage 2")
    assert run.staff("Dear Jane, our stage 2 answer.").startswith("rejected")
    assert "someone else" in run.mail_to("sam@example.org")[-1]
    assert run.staff("Dear Jane, the investigator's answer.", "inv@example.org") == "relayed"
    relay = run.mail_to(JANE)[-1]
    assert "Local Government and Social Care Ombudsman" in relay  # after the last stage


def test_lessons_are_recorded_and_done(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.staff("#lesson check discharge letters owner ward@example.org due 2026-03-20")
    [lesson] = run.rows(Lesson)
    assert (lesson.text, lesson.owner, lesson.due_at) == (
        "check discharge letters",
        "ward@example.org",
        local(2026, 3, 20),
    )
    run.staff(f"#done L-{lesson.id}")
    assert run.rows(Lesson)[0].done_at is not None
    assert run.staff("#done L-999") == "commands"
    assert "no lesson L-999" in run.mail_to("sam@example.org")[-1]


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("#extend five days", "give working days and a reason"),
        ("#close splendid", "give an outcome"),
        ("#remedy cake", "give one of"),
        ("#lesson fix the rota owner nobody", "give an email address"),
        ("#done twelve", "give the lesson's number"),
    ],
)
def test_bad_procedure_commands_are_refused_with_the_reason(
    tmp_path: Path, command: str, problem: str
) -> None:
    run = Run(tmp_path)
    assert run.staff(command).startswith("rejected")
    assert problem in run.mail_to("sam@example.org")[-1].replace("=\r\n", "")

"""No complaint leaves the process on the model's word: end to end on Dovecot and a real
SMTP sink. A confident wrong out-of-scope label on a complaint; a referred case relabelled
a complaint; a complaint in Welsh; a complaint that also discloses harm; a complaint that
also asks for the person's data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.message import Message

import pytest

from classifiers.types import Classification, ClassifierInput
from daemon.service.worker import Worker
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import ROUTES, _addr, _body, _configure, _msg, _run, _to

JANE = "Jane Citizen <jane.safe@example.net>"
WELSH = 'reply_languages = ["en", "cy"]\n' + ROUTES


class Confidently:
    """A classifier sure of one wrong label, with a complaint probability it was not sure of."""

    version = "test-confident"

    def __init__(self, label: str, confidence: float, complaint_probability: float) -> None:
        self.label, self.confidence, self.complaint = label, confidence, complaint_probability

    def classify(self, items: Sequence[ClassifierInput]) -> list[Classification]:
        return [
            Classification(
                self.label,
                self.confidence,
                False,
                self.version,
                complaint_probability=self.complaint,
                language="en",
            )
            for _ in items
        ]


def _case(setup: Setup) -> dict[str, object]:
    [case] = setup.cases()
    return case


def _only(setup: Setup, address: str) -> Message:
    [mail] = _to(setup, address)
    return _msg(mail)


def test_a_confident_wrong_out_of_scope_label_does_not_send_a_complaint_away(
    setup: Setup,
) -> None:
    _configure(setup)
    body = "The receptionist shouted at my father and refused to book his appointment."
    setup.append(make_mail(sender=JANE, subject="Reception", body=body)[0])
    worker = Worker.build(setup.config, classifier=Confidently("hr", 0.97, 0.4))
    assert asyncio.run(worker.run_once()) == 0
    case = _case(setup)
    assert (case["label"], case["needs_review"], case["status"]) == ("complaint", True, "in_stage")
    assert case["automatic_reply"] == "acknowledgement"
    assert case["stage"] == 1
    assert case["stage_due_at"]
    assert case["flags"] == ["hr"]
    ack = _only(setup, "jane.safe@example.net")
    assert "We have received your message" in str(ack["Subject"])
    assert "People team" not in _body(ack)  # not the HR signpost
    # To review, and the HR route sees it too; the history says why.
    assert _to(setup, "triage@example.org")
    assert _to(setup, "people@example.org")
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "screened" in history
    assert "complaint-probability:0.40" in history


def test_a_clear_request_is_signposted_and_waits_for_staff(setup: Setup) -> None:
    _configure(setup)
    body = (
        "Under the Data Protection Act please send me a copy of all the personal data you "
        "hold about me, including emails and call notes. My date of birth is 3 May 1980."
    )
    setup.append(make_mail(sender=JANE, subject="Subject access request", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["status"]) == ("data_protection", "referral_pending")
    assert case["automatic_reply"] == "signpost"
    assert case["referral_due_at"]
    pending = setup.cli("cases", "list", "--status", "referral_pending", "--json").stdout
    assert str(case["reference"]) in pending
    sla = setup.cli("sla", "--json").stdout
    assert "referral to confirm" in sla


def test_relabelling_a_referred_case_puts_it_back_in_the_procedure(setup: Setup) -> None:
    _configure(setup)
    body = "Please send me a copy of all the personal data you hold about me (subject access)."
    setup.append(make_mail(sender=JANE, subject="My data", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert case["status"] == "referral_pending"
    dpo_copy = _only(setup, "dpo@example.org")
    reply_to = _addr(dpo_copy["Reply-To"])
    # The DPO reads it: it is really a complaint about how the request was handled before.
    staff, _ = make_mail(
        sender="Dana DPO <dana@example.org>",
        to=reply_to,
        subject=f"Re: {dpo_copy['Subject']}",
        body="#label complaint\n",
        headers={"In-Reply-To": dpo_copy["Message-ID"]},
    )
    setup.append(staff)
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["status"], case["stage"]) == ("complaint", "in_stage", 1)
    assert case["stage_due_at"]
    assert case["automatic_reply"] == "acknowledgement"
    to_jane = _to(setup, "jane.safe@example.net")
    assert len(to_jane) == 2  # the signpost, then the acknowledgement it should have been
    assert "treating it as a complaint" in _body(_msg(to_jane[1]))
    relabelled = _only(setup, "team@example.org")
    assert "relabelled from data_protection to complaint by dana@example.org" in _body(relabelled)
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "label.changed" in history
    assert "stage.started" in history


def test_a_complaint_in_welsh_is_acknowledged_in_welsh_and_goes_to_review(setup: Setup) -> None:
    _configure(setup, WELSH)
    body = (
        "Rydw i eisiau gwneud cwyn ffurfiol. Arhosodd fy mam am chwe awr yn yr adran achosion "
        "brys heb gael dŵr na gwybodaeth, ac roedd y staff yn anghwrtais wrthi. Hoffwn gael "
        "esboniad ac ymddiheuriad."
    )
    setup.append(make_mail(sender=JANE, subject="Cwyn am yr adran achosion brys", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["needs_review"], case["stage"]) == ("complaint", True, 1)
    ack = _only(setup, "jane.safe@example.net")
    assert "Rydym wedi derbyn eich neges" in str(ack["Subject"])
    assert "Eich cyfeirnod yw" in _body(ack)
    assert _to(setup, "triage@example.org")


def test_a_complaint_that_discloses_harm_stays_a_complaint_and_tells_the_lead(
    setup: Setup,
) -> None:
    _configure(setup)
    body = (
        "I want to make a formal complaint about the mental health team. My son was discharged "
        "without a care plan, nobody has called us back in three weeks, and last night he told "
        "me he wants to kill himself. This is unacceptable."
    )
    setup.append(make_mail(sender=JANE, subject="Complaint about the crisis team", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["stage"]) == ("complaint", 1)
    assert "safeguarding" in case["flags"]  # type: ignore[operator]
    assert case["automatic_reply"] == "acknowledgement"
    assert _to(setup, "lead@example.org")  # the safeguarding lead's copy
    ack = _only(setup, "jane.safe@example.net")
    assert "We have received your message" in str(ack["Subject"])


def test_a_complaint_that_asks_for_records_is_a_complaint_with_a_data_request(
    setup: Setup,
) -> None:
    _configure(setup)
    body = (
        "I am making a formal complaint about the way the ward treated my late father in "
        "March: he was left without pain relief overnight and nobody answered the call bell. "
        "I also want copies of all his medical records and nursing notes from that admission."
    )
    setup.append(make_mail(sender=JANE, subject="Complaint - Ward 4", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["stage"]) == ("complaint", 1)
    assert "data_request" in case["flags"]  # type: ignore[operator]
    assert _to(setup, "team@example.org")
    assert _to(setup, "dpo@example.org")
    assert case["automatic_reply"] == "acknowledgement"


def test_moving_a_signposted_message_into_the_complaint_folder_re_triages_it(
    setup: Setup,
) -> None:
    _configure(setup)
    body = "Please send me a copy of all the personal data you hold about me (subject access)."
    setup.append(make_mail(sender=JANE, subject="My data", body=body)[0])
    _run(setup)  # signposted; also creates the Candour/Label/* folders
    assert _case(setup)["status"] == "referral_pending"
    client = setup.imap()
    try:
        client.select_folder("INBOX")
        client.move(client.search("ALL"), "Candour/Label/complaint")
    finally:
        client.logout()
    _run(setup)
    case = _case(setup)
    assert (case["label"], case["status"], case["stage"]) == ("complaint", "in_stage", 1)
    assert len(_to(setup, "jane.safe@example.net")) == 2  # the signpost, then the acknowledgement
    assert _to(setup, "team@example.org")  # the complaint route hears of it


def test_a_wrong_imap_password_exits_78_under_once_as_the_daemon_does(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(setup)
    monkeypatch.setenv("CANDOUR_TEST_IMAP_PASSWORD", "not the password")
    result = setup.cli("run", "--once", check=False)
    assert result.returncode == 78, result.stderr[-2000:]


def test_outbox_and_cases_lists_say_to_whom_when_and_what_was_due(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender=JANE, subject="Ward 7", body="I want to complain.")[0])
    _run(setup)
    listed = setup.cli("outbox", "list").stdout
    assert "to jane.safe@example.net" in listed
    assert "sent 20" in listed
    assert (
        "no outgoing mail in status failed"
        in setup.cli("outbox", "list", "--status", "failed").stdout
    )
    bogus = setup.cli("outbox", "list", "--status", "bogus", check=False)
    assert bogus.returncode == 2
    assert "bogus" in bogus.stderr
    [line] = setup.cli("cases", "list").stdout.splitlines()
    assert "(due 20" in line  # the acknowledgement's deadline, kept once it was met


def test_the_review_queue_lists_why_and_a_case_is_settled_from_the_cli(setup: Setup) -> None:
    _configure(setup)
    body = "The receptionist shouted at my father and refused to book his appointment."
    setup.append(make_mail(sender=JANE, subject="Reception", body=body)[0])
    worker = Worker.build(setup.config, classifier=Confidently("hr", 0.97, 0.4))
    asyncio.run(worker.run_once())
    reference = str(_case(setup)["reference"])
    queue = setup.cli("review").stdout
    assert reference in queue
    assert "complaint-probability:0.40" in queue
    done = setup.cli("review", "done", reference, "complaint")
    assert "out of the review queue" in done.stdout
    assert setup.cli("review").stdout.strip() == "nothing waiting for review"
    assert "review.done" in setup.cli("cases", "show", reference).stdout

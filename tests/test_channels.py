"""Who may complain and how (issue 21), end to end on Dovecot and the SMTP sink: a complaint
past the time limit flagged and waived, a fraud report routed to its officer, web forms
from no-reply senders (with a Reply-To, a form field, or anonymous)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Setup, make_mail
from tests.test_staff_loop import ROUTES, _addr, _body, _configure, _msg, _run, _to

JANE = "Jane Citizen <jane.chan@example.net>"


OFFICERS = '[mailbox.routes]\nfraud = "finance@example.org"\nwhistleblowing = "ftsu@example.org"\n'


def _configure_here(setup: Setup, extra: str = "") -> None:
    routes = ROUTES.replace("[mailbox.routes]\n", OFFICERS)
    _configure(setup, f'form_email_field = "Email"\n{routes}{extra}')


def _case(setup: Setup) -> dict[str, object]:
    [case] = setup.cases()
    return case


def test_a_complaint_about_events_long_ago_is_flagged_and_can_be_waived(setup: Setup) -> None:
    _configure_here(setup)
    then = datetime.now(UTC) - timedelta(days=14 * 30.5)  # some 14 months ago
    body = (
        f"I want to make a formal complaint about my care on {then:%d %B %Y}. "
        "I was discharged without my medication."
    )
    setup.append(make_mail(sender=JANE, subject="Complaint", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert "time_limit" in case["flags"]  # type: ignore[operator]
    assert _to(setup, "jane.chan@example.net")  # flagged, never refused: acknowledged
    copy = _msg(_to(setup, "team@example.org")[0])
    assert "time_limit" in _body(copy)
    staff, _ = make_mail(
        sender="Sam <sam@example.org>",
        to=_addr(copy["Reply-To"]),
        subject=f"Re: {copy['Subject']}",
        body="#waive time-limit she was in hospital until last month",
    )
    setup.append(staff)
    _run(setup)
    assert "time_limit" not in _case(setup)["flags"]  # type: ignore[operator]
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "time_limit.flagged" in history
    assert "time_limit.waived" in history


def test_a_fraud_report_goes_to_the_fraud_officer(setup: Setup) -> None:
    _configure_here(setup)
    body = "I saw your shop manager stealing donations from the till on Saturday. Please act."
    setup.append(make_mail(sender=JANE, subject="Report", body=body)[0])
    _run(setup)
    case = _case(setup)
    assert "fraud" in case["flags"]  # type: ignore[operator]
    assert case["automatic_reply"] != "signpost"
    assert _to(setup, "finance@example.org")


def test_web_forms_from_no_reply_senders_are_cases(setup: Setup) -> None:
    _configure_here(setup)
    form = "Web form <no-reply@forms.example>"
    with_reply_to = make_mail(
        sender=form,
        subject="Complaint form",
        body="Complaint: nobody called me back about my housing.",
        headers={"Reply-To": "Ann Person <ann@example.net>"},
    )[0]
    with_field = make_mail(
        sender=form,
        subject="Complaint form",
        body="Name: Bo\nEmail: bo@example.net\nComplaint: the bins were not collected again.",
    )[0]
    anonymous = make_mail(
        sender=form, subject="Complaint form", body="Complaint: staff were rude to me at reception."
    )[0]
    for raw in (with_reply_to, with_field, anonymous):
        setup.append(raw)
    _run(setup)
    found = setup.cases()
    assert len(found) == 3  # all three are complaints in the register
    assert _to(setup, "ann@example.net")  # the Reply-To
    assert _to(setup, "bo@example.net")  # the form's Email field
    [anon] = [c for c in found if "anonymous" in c["flags"]]  # type: ignore[operator]
    assert anon["no_ack_reason"] == "no-recipient"
    assert not _to(setup, "no-reply@forms.example")


def _reply_as_staff(setup: Setup, text: str) -> None:
    copy = _msg(_to(setup, "team@example.org")[0])
    staff, _ = make_mail(
        sender="Sam <sam@example.org>",
        to=_addr(copy["Reply-To"]),
        subject=f"Re: {copy['Subject']}",
        body=text,
    )
    setup.append(staff)
    _run(setup)


def test_a_restricted_senders_repeat_is_recorded_unanswered_and_the_review_lapses(
    setup: Setup,
) -> None:
    _configure_here(setup)
    setup.append(make_mail(sender=JANE, subject="Parking fines", body="I want to complain.")[0])
    _run(setup)
    reference = str(_case(setup)["reference"])
    _reply_as_staff(setup, "#restrict until 2099-01-01 six identical complaints a day")
    assert "restricted" in _case(setup)["flags"]  # type: ignore[operator]
    acks = len(_to(setup, "jane.chan@example.net"))
    repeat = "I want to complain again about the parking fines."
    setup.append(make_mail(sender=JANE, subject="Parking fines", body=repeat)[0])
    _run(setup)
    assert len(setup.cases()) == 1  # recorded on the open case
    assert len(_to(setup, "jane.chan@example.net")) == acks  # and not acknowledged
    assert "restricted.repeat" in setup.cli("cases", "show", reference).stdout
    new = "A different matter: the lift in my block has been broken for a month."
    setup.append(make_mail(sender=JANE, subject="Broken lift", body=new)[0])
    _run(setup)
    [second] = [c for c in setup.cases() if c["reference"] != reference]
    assert "restricted" in second["flags"]  # type: ignore[operator]
    assert len(_to(setup, "jane.chan@example.net")) == acks + 1  # a new matter: answered
    _reply_as_staff(setup, "#restrict until 2026-01-01 renewed, then reviewed")
    _run(setup)  # the review date has passed: the manager is told, the restriction lapses
    [review] = [
        m
        for m in _to(setup, "triage@example.org")
        if "Restriction review" in str(_msg(m)["Subject"])
    ]
    assert reference in _body(_msg(review))
    assert "contact.restriction_lapsed" in setup.cli("cases", "show", reference).stdout


def test_a_sender_opening_many_cases_is_flagged_for_staff(setup: Setup) -> None:
    _configure_here(setup)
    for n in range(4):
        body = f"I want to complain about problem number {n}."
        setup.append(make_mail(sender=JANE, subject=f"Problem {n}", body=body)[0])
    _run(setup)
    flagged = [c for c in setup.cases() if "repeat_contact" in c["flags"]]  # type: ignore[operator]
    assert len(flagged) == 1  # the fourth, beyond three in seven days

"""The five published procedures (daemon/presets/), each end to end on Dovecot and a real
SMTP sink: a complaint that reached the mailbox on Mon 16 Nov 2026 at 10:00 (its IMAP
INTERNALDATE), its acknowledgement and stage deadlines worked by hand, an extension told to
the complainant, and a closing response with the outcome, the complainant's rights and a
lesson. The escalation of an overdue stage and a change of handler are in
tests/test_procedure.py, on a settable clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Setup, make_mail
from tests.test_staff_loop import _addr, _body, _configure, _msg, _run, _to

RECEIVED = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # Mon, GMT
JANE = "jane.proc@example.net"
ROUTES = """staff_domains = ["example.org"]
[mailbox.routes]
complaint = "team@example.org"
review = "team@example.org"
"""


def at(month: int, day: int, hour: int = 17) -> str:
    return datetime(2026, month, day, hour, tzinfo=UTC).isoformat()


# preset -> (ack due, stage 1 due or None until #accept, due after #extend 5, rights words)
PRESETS: dict[str, tuple[str, str | None, str | None, str]] = {
    # 24 hours on the clock; 10 working days: 17-20, 23-27, 30 Nov; +5: 1-4, 7 Dec.
    "childrens-services-company": (
        at(11, 17, 10),
        at(11, 30),
        at(12, 7),
        "ask for stage 2 within 20 working days",
    ),
    # 3 working days; stage 1 counts from #accept (now), so no date by hand.
    "community-interest-company": (at(11, 19), None, None, "ask for appeal to the board"),
    # 1 working day; 20 working days: to Mon 14 Dec; +5: to Mon 21 Dec.
    "peer-support-community": (at(11, 17), at(12, 14), at(12, 21), "CEO's final response"),
    # 3 working days; 10 working days: Mon 30 Nov; +5: Mon 7 Dec.
    "homelessness-charity": (at(11, 19), at(11, 30), at(12, 7), "stage 2 (senior manager)"),
    # 3 working days; 25 working days: Mon 21 Dec; +5: 22, 23, 24 Dec, then Christmas Day
    # and Boxing Day's substitute (Mon 28) are bank holidays: 29, 30 Dec.
    "nhs-trust": (at(11, 19), at(12, 21), at(12, 30), "Parliamentary and Health Service Ombudsman"),
}


def _case(setup: Setup) -> dict[str, Any]:
    [case] = setup.cases()
    return case


def _staff(setup: Setup, text: str) -> None:
    copy = _msg(_to(setup, "team@example.org")[0])
    raw, _ = make_mail(
        sender="Sam Lee <sam@example.org>",
        to=_addr(copy["Reply-To"]),
        subject=f"Re: {copy['Subject']}",
        body=text,
        headers={"In-Reply-To": copy["Message-ID"]},
    )
    setup.append(raw)
    _run(setup)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_published_procedure_from_first_email_to_final_response(
    setup: Setup, preset: str
) -> None:
    ack_due, stage_due, extended, rights = PRESETS[preset]
    _configure(setup, f'{ROUTES}[mailbox.policy]\npreset = "{preset}"\n')
    explained = setup.cli("check-config", "--explain").stdout
    assert f"(preset {preset})" in explained
    body = "I want to make a formal complaint: my support worker did not turn up three times."
    setup.append(
        make_mail(sender=f"Jane <{JANE}>", subject="Complaint", body=body)[0], when=RECEIVED
    )
    _run(setup)
    case = _case(setup)
    assert case["ack_due_at"] == ack_due
    assert case["stage_due_at"] == stage_due
    if stage_due is None:  # the clock starts when the nature of the complaint is established
        _staff(setup, "#accept")
        assert _case(setup)["stage"] == 1
    _staff(setup, "#extend 5 we are waiting for the visit records")
    case = _case(setup)
    if extended is not None:
        assert case["stage_due_at"] == extended
    notice = [m for m in _to(setup, JANE) if "More time needed" in str(_msg(m)["Subject"])]
    assert len(notice) == 1
    assert "waiting for the visit records" in _body(_msg(notice[0]))
    _staff(
        setup,
        "#close upheld visits were missed\n"
        "#remedy apology we have apologised\n"
        "#lesson check visit rotas weekly owner rota@example.org due 2027-01-15\n"
        "Dear Jane, we are sorry: the visits were missed and we have changed the rota.",
    )
    record = json.loads(setup.cli("cases", "show", str(case["reference"]), "--json").stdout)
    assert (record["status"], record["outcome"]) == ("closed", "upheld")
    assert record["outcome_summary"] == "visits were missed"
    assert [e["working_days"] for e in record["extensions"]] == [5]
    assert [r["kind"] for r in record["remedies"]] == ["apology"]
    assert [lesson["owner"] for lesson in record["lessons"]] == ["rota@example.org"]
    final = _body(_msg(_to(setup, JANE)[-1]))
    assert "the visits were missed" in final
    assert rights in final.replace("\n", " ")
    kinds = {event["kind"] for event in record["history"]}
    assert {"stage.extended", "outcome", "remedy", "lesson", "case.closed"} <= kinds


@pytest.mark.parametrize(
    "preset", ["childrens-services-company", "community-interest-company", "homelessness-charity"]
)
def test_early_resolution_then_resolved_early(setup: Setup, preset: str) -> None:
    _configure(setup, f'{ROUTES}[mailbox.policy]\npreset = "{preset}"\n')
    raw, _ = make_mail(sender=f"Jane <{JANE}>", subject="Complaint", body="I want to complain.")
    setup.append(raw, when=RECEIVED)
    _run(setup)
    _staff(setup, "#early")
    case = _case(setup)
    assert (case["status"], case["stage"]) == ("early_resolution", 0)
    assert case["early_due_at"] == at(11, 23)  # 5 working days after Mon 16 Nov
    _staff(setup, "#close resolved-early\nDear Jane, as we agreed on the phone, it is sorted.")
    case = _case(setup)
    assert (case["status"], case["outcome"]) == ("closed", "resolved-early")
    assert "as we agreed on the phone" in _body(_msg(_to(setup, JANE)[-1]))


def test_an_overdue_stage_goes_to_the_next_stages_handler(setup: Setup) -> None:
    stages = (
        '{ name = "stage 1", respond_within = "10 working days" },\n'
        '{ name = "stage 2", respond_within = "25 working days", '
        'request_within = "20 working days", handler = "investigator@example.org" },'
    )
    policy = f'[mailbox.policy]\npreset = "childrens-services-company"\nstages = [\n{stages}\n]\n'
    _configure(setup, ROUTES + policy)
    raw, _ = make_mail(sender=f"Jane <{JANE}>", subject="Complaint", body="I want to complain.")
    setup.append(raw, when=RECEIVED)
    _run(setup)
    reference = str(_case(setup)["reference"])
    assert _case(setup)["stage_due_at"] == at(11, 30)  # overdue by now (Dec 2026)
    asked = "Nobody has answered my complaint. I want it escalated to stage 2."
    setup.append(make_mail(sender=JANE, subject=f"Re: Complaint [{reference}]", body=asked)[0])
    _run(setup)
    case = _case(setup)
    assert (case["stage"], case["handler"]) == (2, "investigator@example.org")
    assert _to(setup, "investigator@example.org")  # the request reached the new handler
    history = setup.cli("cases", "show", reference).stdout
    assert "stage 1 was not answered in time" in history

"""Complaints made by phone, letter, web form or in person, logged by staff writing to the
mailbox's signed new-case address (issue 21): the commands read purely, then end to end on
Dovecot and the SMTP sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.casework import representatives
from daemon.casework.directory import DirectoryError, load_service_users
from daemon.triage import imports
from daemon.triage.other_channels import Logged, read_logged
from replies.addresses import is_new_case_address, new_case_address
from tests.conftest import Setup, make_mail
from tests.test_staff_loop import ROUTES, _addr, _body, _configure, _msg, _run, _to

LONDON = ZoneInfo("Europe/London")
SECRET = b"0123456789abcdef0123456789abcdef"
SAM = "Sam Staff <sam@example.org>"
PHONE_CALL = (
    "Mrs Okafor rang to complain that her son's care plan review was cancelled three times "
    "and nobody explained why. She wants a formal response and a date for the review."
)


def test_the_commands_read_into_a_logged_complaint() -> None:
    text = (
        "#channel Phone\n#from Ada Okafor <Ada.Okafor@example.net>\n"
        "#received 2026-12-03 14:30\n\n" + PHONE_CALL
    )
    logged = read_logged(text, LONDON)
    assert logged == Logged(
        "phone",
        "Ada Okafor",
        "ada.okafor@example.net",
        datetime(2026, 12, 3, 14, 30, tzinfo=LONDON),
        "",
        PHONE_CALL,
    )


def test_a_name_and_postal_address_are_enough_for_a_letter() -> None:
    text = "#channel letter\n#from Mr B Jones\n#post 1 High Street, Town AB1 2CD\nThe bins."
    logged = read_logged(text, LONDON)
    assert isinstance(logged, Logged)
    assert (logged.name, logged.address, logged.postal) == (
        "Mr B Jones",
        "",
        "1 High Street, Town AB1 2CD",
    )
    assert logged.received is None


def test_what_is_missing_is_said_not_guessed() -> None:
    problems = read_logged("#channel fax\n#received last tuesday\n", LONDON)
    assert isinstance(problems, list)
    joined = "\n".join(problems)
    for expected in ("#channel", "#from", "#received last tuesday", "below the commands"):
        assert expected in joined


def test_the_new_case_address_is_signed() -> None:
    address = new_case_address("complaints@example.org", SECRET)
    assert address.startswith("complaints+new.")
    assert is_new_case_address([address.upper()], "complaints@example.org", SECRET)
    assert not is_new_case_address(
        ["complaints+new.0000000000@example.org"], "complaints@example.org", SECRET
    )
    assert not is_new_case_address([address], "complaints@example.org", b"another" * 4)
    assert not is_new_case_address(["né@exämple.org"], "complaints@example.org", SECRET)


def _new_case_address(setup: Setup) -> str:
    out = setup.cli("addresses").stdout
    line = next(x for x in out.splitlines() if x.startswith("main: "))
    return line.removeprefix("main: ").strip()


def test_a_phone_complaint_opens_a_case_counted_from_when_it_was_made(setup: Setup) -> None:
    _configure(setup)
    made = (datetime.now(UTC) - timedelta(days=2)).astimezone(LONDON).replace(microsecond=0)
    body = (
        f"#channel phone\n#from Ada Okafor <ada.okafor@example.net>\n"
        f"#received {made:%Y-%m-%d %H:%M}\n\n{PHONE_CALL}"
    )
    to = _new_case_address(setup)
    setup.append(make_mail(sender=SAM, to=to, subject="Phone call", body=body)[0])
    _run(setup)
    [case] = setup.cases()
    assert case["channel"] == "phone"
    assert case["label"] == "complaint"
    assert datetime.fromisoformat(str(case["received"])) == made.replace(second=0)
    [ack] = _to(setup, "ada.okafor@example.net")  # acknowledged by email, as if she wrote
    assert str(case["reference"]) in str(_msg(ack)["Subject"])
    assert "sam@example.org" not in ack.data.decode(errors="replace")  # not the staff's mail
    copy = _msg(_to(setup, "team@example.org")[0])
    assert "Mrs Okafor rang" in _body(copy)
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "logged" in history
    assert "phone complaint from Ada Okafor" in history


def test_a_letter_without_email_gets_a_letter_to_post(setup: Setup) -> None:
    _configure(setup)
    body = "#channel letter\n#from Mr B Jones\n#post 1 High Street, Town AB1 2CD\n\n" + (
        "I am writing to complain formally that my mother's care visits were missed on five "
        "days last month and nobody from the agency told us."
    )
    to = _new_case_address(setup)
    setup.append(make_mail(sender=SAM, to=to, subject="Letter received", body=body)[0])
    _run(setup)
    [case] = setup.cases()
    assert case["channel"] == "letter"
    assert "by_post" in case["flags"]  # type: ignore[operator]
    copy = _msg(_to(setup, "team@example.org")[0])
    [pdf] = [p for p in copy.walk() if p.get_content_type() == "application/pdf"]
    data = pdf.get_payload(decode=True)
    assert isinstance(data, bytes)
    assert data.startswith(b"%PDF")
    assert "acknowledgement-letter.pdf" in _body(copy)


def test_a_badly_logged_complaint_is_answered_with_what_is_wrong(setup: Setup) -> None:
    _configure(setup)
    to = _new_case_address(setup)
    setup.append(make_mail(sender=SAM, to=to, subject="Call", body="#channel phone\n")[0])
    _run(setup)
    assert setup.cases() == []
    [answer] = _to(setup, "sam@example.org")
    text = _body(_msg(answer))
    assert "#from" in text
    assert "below the commands" in text


def test_the_public_writing_to_the_new_case_address_is_just_mail(setup: Setup) -> None:
    _configure(setup)
    to = _new_case_address(setup)
    body = "#channel phone\n#from Someone <victim@example.net>\n\nI want to complain."
    sender = "Jane Citizen <jane.other@example.net>"
    setup.append(make_mail(sender=sender, to=to, subject="Complaint", body=body)[0])
    _run(setup)
    [case] = setup.cases()
    assert case["channel"] == "email"
    assert not _to(setup, "victim@example.net")  # nobody can open a case in another's name


def _with_directory(setup: Setup, handling: str) -> None:
    directory = setup.config_path.parent / "service-users.csv"
    directory.write_text("address,name\n# current residents\njane.citizen@example.net,Jane\n")
    _configure(setup, f'service_users = "{directory}"\nnon_service_users = "{handling}"\n{ROUTES}')


def test_a_non_service_user_is_acknowledged_and_logged_without_a_stage(setup: Setup) -> None:
    _with_directory(setup, "acknowledge")
    setup.append(make_mail(sender="Jane Citizen <jane.citizen@example.net>")[0])
    setup.append(make_mail(sender="Passer By <passer.by@example.net>")[0])
    _run(setup)
    resident, outsider = sorted(setup.cases(), key=lambda c: str(c["reference"]))
    assert "non_service_user" not in resident["flags"]  # type: ignore[operator]
    assert resident["stage"] == 1
    assert "non_service_user" in outsider["flags"]  # type: ignore[operator]
    assert outsider["stage"] == 0  # kept for analysis, not investigated
    assert outsider["stage_due_at"] is None
    assert _to(setup, "passer.by@example.net")  # but acknowledged
    history = setup.cli("cases", "show", str(outsider["reference"])).stdout
    assert "non_service_user" in history


def test_a_mailbox_can_log_non_service_users_without_replying(setup: Setup) -> None:
    _with_directory(setup, "log")
    setup.append(make_mail(sender="Passer By <passer.by@example.net>")[0])
    _run(setup)
    [case] = setup.cases()
    assert "non_service_user" in case["flags"]  # type: ignore[operator]
    assert not _to(setup, "passer.by@example.net")
    assert _to(setup, "team@example.org")  # staff still see it


def test_a_directory_line_that_is_no_address_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "users.txt"
    directory.write_text("Jane.Citizen@Example.net\n\nJane Citizen\n")
    with pytest.raises(DirectoryError, match="line 3 is not an address"):
        load_service_users(directory)
    directory.write_text("Jane.Citizen@Example.net\n# a comment\n")
    assert load_service_users(directory) == frozenset({"jane.citizen@example.net"})


PRIVATE = "Your GP records show the referral letter of 3 May was never sent"


def _staff_answers(setup: Setup, body: str) -> None:
    copy = _msg(_to(setup, "team@example.org")[0])
    reply = make_mail(
        sender=SAM, to=_addr(copy["Reply-To"]), subject=f"Re: {copy['Subject']}", body=body
    )[0]
    setup.append(reply)
    _run(setup)


def test_a_representative_without_authority_gets_no_personal_details(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender="Jane Citizen <jane.citizen@example.net>")[0])
    _run(setup)
    _staff_answers(
        setup,
        "#representative Tom Advocate <tom@advocacy.example> authority=pending\n\n" + PRIVATE,
    )
    [case] = setup.cases()
    assert "representative" in case["flags"]  # type: ignore[operator]
    assert case["representative"] == "tom@advocacy.example"
    assert case["representative_authority"] == "pending"
    to_jane = [m for m in _to(setup, "jane.citizen@example.net") if PRIVATE in _body(_msg(m))]
    assert len(to_jane) == 1  # the complainant has the reply
    [to_tom] = _to(setup, "tom@advocacy.example")
    assert PRIVATE not in to_tom.data.decode(errors="replace")
    assert "written consent" in _body(_msg(to_tom))
    [receipt] = _to(setup, "sam@example.org")
    assert "authority" in _body(_msg(receipt))  # the staff member is told
    history = setup.cli("cases", "show", str(case["reference"])).stdout
    assert "relay.withheld" in history

    _staff_answers(setup, "#representative authority=received\n\nAn update: " + PRIVATE)
    assert setup.cases()[0]["representative_authority"] == "received"
    to_tom_now = [m for m in _to(setup, "tom@advocacy.example") if PRIVATE in _body(_msg(m))]
    assert len(to_tom_now) == 1  # copied on the reply, now that authority is recorded


def test_a_representative_command_without_an_address_is_refused(setup: Setup) -> None:
    _configure(setup)
    setup.append(make_mail(sender="Jane Citizen <jane.citizen@example.net>")[0])
    _run(setup)
    _staff_answers(setup, "#representative Tom Advocate authority=maybe\n\nHello")
    [case] = setup.cases()
    assert case["representative"] is None
    [error] = _to(setup, "sam@example.org")
    assert "authority=maybe" in _body(_msg(error))


def test_the_representative_command_reads_who_and_their_authority() -> None:
    assert representatives.read("Tom <Tom@Advocacy.example> authority=POA") == (
        representatives.Representation("Tom", "tom@advocacy.example", "poa")
    )
    assert representatives.read("tom@advocacy.example") == (
        representatives.Representation("", "tom@advocacy.example", None)
    )
    assert representatives.read("authority=received") == (
        representatives.Representation("", "", "received")
    )
    for bad in ("", "Tom Advocate", "tom@advocacy.example authority=maybe"):
        assert isinstance(representatives.read(bad), str)


FORM_EXPORT = """name,email,received,subject,text
Ada Okafor,ada.okafor@example.net,2026-12-01 09:15,Care plan,"I complain: his review was cancelled."
Bo Li,,2026-12-02 10:00,Bins,"The bins on Mill Lane have not been collected for three weeks."
"""


def test_a_web_form_export_is_imported_as_logged_complaints(setup: Setup) -> None:
    _configure(setup)
    export = setup.config_path.parent / "form.csv"
    export.write_text(FORM_EXPORT.replace("Bo Li,,", "Bo Li,bo.li@example.net,"))
    out = setup.cli("cases", "import", str(export), "--by", "sam@example.org").stdout
    assert "2 complaint(s) queued" in out
    _run(setup)
    made = sorted(setup.cases(), key=lambda c: str(c["received"]))
    assert [c["channel"] for c in made] == ["web", "web"]
    assert str(made[0]["received"]).startswith("2026-12-01T09:15")
    assert _to(setup, "ada.okafor@example.net")
    assert _to(setup, "bo.li@example.net")
    setup.cli("cases", "import", str(export), "--by", "sam@example.org")
    _run(setup)
    assert len(setup.cases()) == 2  # importing the same file again opens nothing twice


def test_an_import_with_a_bad_row_imports_nothing(setup: Setup) -> None:
    _configure(setup)
    export = setup.config_path.parent / "form.csv"
    export.write_text(FORM_EXPORT)  # Bo Li has neither email nor postal address
    result = setup.cli("cases", "import", str(export), "--by", "sam@example.org", check=False)
    assert result.returncode == 1
    assert "row 2: give an email address" in result.stderr
    refused = setup.cli("cases", "import", str(export), "--by", "jane@example.net", check=False)
    assert "not staff" in refused.stderr
    _run(setup)
    assert setup.cases() == []


def test_import_files_are_read_as_csv_json_or_json_lines() -> None:
    rows = imports.read_rows("x.jsonl", '{"name": "Ada", "email": "a@example.net", "text": "t"}\n')
    assert rows[0].commands() == "#channel web\n#from Ada <a@example.net>\n\nt\n"
    assert imports.read_rows("x.json", '[{"name": "Ada", "post": "1 High St", "text": "t"}]')
    with pytest.raises(imports.ImportProblem, match="unknown field"):
        imports.read_rows("x.json", '[{"nmae": "Ada"}]')
    with pytest.raises(imports.ImportProblem, match=r"\.csv, \.json or \.jsonl"):
        imports.read_rows("x.xlsx", "")

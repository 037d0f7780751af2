"""Loop prevention: machine-written mail is recognised; people's mail is not mistaken for it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from daemon.mail.automatic import automatic_reason
from daemon.mail.parse import parse_message
from replies.policy import automatic_reply_decision, deliverable
from tests.conftest import make_mail

OWN = frozenset({"complaints@example.org"})


def _mail(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body + "\r\n").encode()


PERSON = "From: Ann <ann@example.net>\r\nTo: complaints@example.org\r\nSubject: My bin\r\n"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto-submitted:auto-replied"),
        ("Auto-Submitted: auto-generated", "auto-submitted:auto-generated"),
        ("Precedence: bulk", "precedence:bulk"),
        ("Precedence: junk", "precedence:junk"),
        ("Precedence: list", "precedence:list"),
        ("List-Id: <parents.lists.example.net>", "mailing-list"),
        ("List-Unsubscribe: <mailto:leave@example.net>", "mailing-list"),
        ("Mailing-List: contact list-help@example.net; run by ezmlm", "mailing-list"),
        ("Return-Path: <>", "null-return-path"),
        ("X-Auto-Response-Suppress: OOF, AutoReply", "x-auto-response-suppress"),
        ("X-Autoreply: yes", "header:x-autoreply"),
        ("X-Failed-Recipients: gone@example.net", "header:x-failed-recipients"),
        ("X-Loop: complaints@example.org", "x-loop"),
        (
            "Content-Type: multipart/report; report-type=delivery-status; boundary=x",
            "delivery-report",
        ),
    ],
)
def test_machine_markers(extra: str, reason: str) -> None:
    parsed = parse_message(_mail(PERSON + extra))
    assert automatic_reason(parsed, OWN) == reason


@pytest.mark.parametrize(
    ("sender", "subject", "reason"),
    [
        ("MAILER-DAEMON@mx.example.net", "Undelivered Mail Returned to Sender", "daemon-sender"),
        ("postmaster@example.net", "Delivery report", "daemon-sender"),
        ("no-reply@shop.example", "Your order", None),  # a web form's sender: see intake
        ("complaints@example.org", "Copy", "own-address"),
        ("pat@example.net", "Automatic reply: Re: your letter", "auto-reply-subject"),
        ("pat@example.net", "Out of Office: back Monday", "auto-reply-subject"),
        ("pat@example.net", "AUTO: Smith, John is out of the office.", "auto-reply-subject"),
        ("pat@example.net", "Abwesenheitsnotiz: Urlaub", "auto-reply-subject"),
        ("pat@example.net", "Réponse automatique : absent", "auto-reply-subject"),
    ],
)
def test_machine_senders_and_subjects(sender: str, subject: str, reason: str) -> None:
    parsed = parse_message(
        _mail(f"From: {sender}\r\nTo: complaints@example.org\r\nSubject: {subject}")
    )
    assert automatic_reason(parsed, OWN) == reason


@pytest.mark.parametrize(
    "subject",
    [
        "Complaint about my holiday club booking",
        "Vacation scheme placement cancelled without notice",
        "I was away from home when your carer called",
        "Auto-enrolment pension deducted twice",  # a person, about payroll
        "Auto-Submitted form did not work",
        "",
    ],
)
def test_people_are_not_mistaken_for_machines(subject: str) -> None:
    parsed = parse_message(_mail(PERSON.replace("My bin", subject) + "Auto-Submitted: no"))
    assert automatic_reason(parsed, OWN) is None


def test_mail_without_a_sender_is_not_automatic_but_cannot_be_answered() -> None:
    parsed = parse_message(_mail("To: complaints@example.org\r\nSubject: help"))
    assert automatic_reason(parsed, OWN) is None
    decision = automatic_reply_decision(
        automatic=None,
        is_new_case=True,
        recipient=parsed.sender,
        own_addresses=OWN,
        replies_to_recipient_today=0,
        max_per_day=3,
        age=timedelta(0),
        max_age=timedelta(days=30),
    )
    assert (decision.send, decision.reason) == (False, "no-recipient")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (True, "new-case")),
        ({"automatic": "precedence:bulk"}, (False, "automatic:precedence:bulk")),
        ({"is_new_case": False}, (False, "follow-up")),
        ({"recipient": "complaints@example.org"}, (False, "own-address")),
        ({"recipient": "not an address@x.org"}, (False, "undeliverable-address")),
        ({"replies_to_recipient_today": 3}, (False, "rate-limited")),
        ({"replies_to_recipient_today": 2}, (True, "new-case")),
        ({"age": timedelta(days=31)}, (False, "too-old")),
    ],
)
def test_reply_decision(kwargs: dict[str, object], expected: tuple[bool, str]) -> None:
    base: dict[str, object] = {
        "automatic": None,
        "is_new_case": True,
        "recipient": "ann@example.net",
        "own_addresses": OWN,
        "replies_to_recipient_today": 0,
        "max_per_day": 3,
        "age": timedelta(hours=2),
        "max_age": timedelta(days=30),
    }
    decision = automatic_reply_decision(**{**base, **kwargs})  # type: ignore[arg-type]
    assert (decision.send, decision.reason) == expected


def test_deliverable_addresses() -> None:
    assert deliverable("a.b+c@mail.example.org")
    assert not deliverable("big bug bb@bug.com")
    assert not deliverable("x@localhost")
    assert not deliverable("")


@pytest.mark.parametrize(
    ("reply_to", "body", "expected"),
    [
        ("Jo Bloggs <jo@example.net>", "Complaint from the web form: nobody called.", None),
        (None, "Name: Jo\nEmail: jo@example.net\nComplaint: nobody called.", None),
        ("no-reply@forms.example", "Your message could not be delivered.", "no-reply-sender"),
        (None, "Your mail could not be delivered: the mailbox is full.", "no-reply-sender"),
    ],
)
def test_a_no_reply_sender_is_a_machine_only_when_the_message_says_so(
    reply_to: str | None, body: str, expected: str | None
) -> None:
    headers = {"Reply-To": reply_to} if reply_to else {}
    raw, _ = make_mail(sender="Web form <no-reply@forms.example>", body=body, headers=headers)
    assert automatic_reason(parse_message(raw), OWN) == expected

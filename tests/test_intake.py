"""The intake decision for a new message, from a table of .eml files (tests/mail/).

Pure: a parsed message, its classification and the mailbox's configuration in; who the
complainant is, their pseudonym, flags, review, route and the automatic reply out.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from classifiers.config import ClassifierConfig
from classifiers.types import Classification
from daemon.mail.parse import ParsedMessage, parse_message
from daemon.triage.intake import decide
from tests.conftest import make_mailbox

MAIL = Path(__file__).parent / "mail"
ROUTES = {
    "complaint": "complaints-team@example.org",
    "feedback": "feedback@example.org",
    "data_protection": "dpo@example.org",
    "safeguarding": "safeguarding@example.org",
    "review": "review@example.org",
}


def parsed(name: str) -> ParsedMessage:
    return parse_message((MAIL / name).read_bytes())


def labelled(label: str, confidence: float = 0.9, *flags: str) -> Classification:
    """A classification as the model gives it, with a complaint probability to match."""
    complaint = confidence if label == "complaint" else 0.02
    return Classification(
        label, confidence, confidence < 0.5, "test", flags=flags, complaint_probability=complaint
    )


COMPLAINT = labelled("complaint")

# (file, classification, mailbox fields, replies already sent today, age in days) ->
# (complainant, pseudonym, needs review, flags, route recipients, reply template, sent/why)
CASES: list[tuple[str, Classification, dict[str, Any], dict[str, int], int, tuple[Any, ...]]] = [
    (
        "plain-complaint.eml",
        COMPLAINT,
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "new-case",
        ),
    ),
    (
        "advocate-reply-to.eml",
        COMPLAINT,
        {},
        {},
        0,
        (
            "dana@advocacy.example.com",
            None,
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "new-case",
        ),
    ),
    (
        "reply-to-ourselves.eml",
        COMPLAINT,
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "new-case",
        ),
    ),
    (
        "plain-complaint.eml",
        labelled("feedback"),
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("feedback@example.org",),
            "thanks",
            "new-case",
        ),
    ),
    (
        "plain-complaint.eml",
        labelled("data_protection"),
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("dpo@example.org",),
            "signpost_data_protection",
            "new-case",
        ),
    ),
    (  # doubtful: a complaint for review, never a signpost; the DPO gets a copy
        "plain-complaint.eml",
        labelled("data_protection", 0.3),
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            True,
            ("data_request",),
            ("review@example.org", "dpo@example.org"),
            "acknowledgement",
            "new-case",
        ),
    ),
    (  # the safety net fired on a complaint: the lead gets a copy too
        "plain-complaint.eml",
        labelled("complaint", 0.9, "safeguarding"),
        {},
        {},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            ("safeguarding",),
            ("complaints-team@example.org", "safeguarding@example.org"),
            "acknowledgement",
            "new-case",
        ),
    ),
    (
        "plain-complaint.eml",
        COMPLAINT,
        {"max_replies_per_sender_per_day": 2},
        {"jane.citizen@example.net": 2},
        0,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "rate-limited",
        ),
    ),
    (
        "plain-complaint.eml",
        COMPLAINT,
        {},
        {},
        90,
        (
            "jane.citizen@example.net",
            None,
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "too-old",
        ),
    ),
    (
        "undeliverable-sender.eml",
        COMPLAINT,
        {},
        {},
        0,
        (
            "",
            None,
            False,
            ("anonymous",),  # no address to answer: recorded as an anonymous complaint
            ("complaints-team@example.org",),
            "acknowledgement",
            "no-recipient",
        ),
    ),
    (
        "member-with-username.eml",
        COMPLAINT,
        {"pseudonymous": True},
        {},
        0,
        (
            "alex.r@example.net",
            "bluebird_22",
            False,
            (),
            ("complaints-team@example.org",),
            "acknowledgement",
            "new-case",
        ),
    ),
    (  # a member who gave no username: to review, flagged, still acknowledged
        "member-without-username.eml",
        COMPLAINT,
        {"pseudonymous": True},
        {},
        0,
        (
            "alex.r@example.net",
            None,
            True,
            ("no-pseudonym",),
            ("review@example.org",),
            "acknowledgement",
            "new-case",
        ),
    ),
]


@pytest.mark.parametrize(
    ("name", "classification", "fields", "today", "age_days", "expected"), CASES
)
def test_the_intake_decision(
    name: str,
    classification: Classification,
    fields: dict[str, Any],
    today: dict[str, int],
    age_days: int,
    expected: tuple[Any, ...],
) -> None:
    mailbox = make_mailbox(routes=ROUTES, **fields)
    decision = decide(
        parsed(name),
        classification,
        mailbox,
        settings=ClassifierConfig(),
        registry={},
        replies_today=today,
        age=timedelta(days=age_days),
    )
    complainant, pseudonym, review, flags, recipients, template, why = expected
    assert decision.complainant == complainant
    assert decision.pseudonym == pseudonym
    assert decision.needs_review is review
    assert decision.flags == flags
    assert decision.route.recipients == recipients
    assert decision.reply_template == template
    assert decision.reply.send is (why == "new-case")
    assert decision.reply.reason == why


def test_the_registry_names_a_member_before_the_message_does() -> None:
    mailbox = make_mailbox(routes=ROUTES, pseudonymous=True)
    decision = decide(
        parsed("member-with-username.eml"),
        COMPLAINT,
        mailbox,
        settings=ClassifierConfig(),
        registry={"alex.r@example.net": "registered_name"},
        replies_today={},
        age=timedelta(0),
    )
    assert decision.pseudonym == "registered_name"

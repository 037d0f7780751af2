"""The triage gate, from a table: what the model may do alone, and what it may not."""

from __future__ import annotations

import pytest

from classifiers.config import ClassifierConfig
from classifiers.types import Classification
from daemon.triage.gate import gate_figures, screen

SETTINGS = ClassifierConfig()
ENGLISH = frozenset({"en"})


def c(
    label: str,
    confidence: float = 0.95,
    complaint: float = 0.01,
    *,
    cues: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    aspects: tuple[str, ...] = (),
    language: str | None = "en",
) -> Classification:
    return Classification(
        label,
        confidence,
        confidence < SETTINGS.review_below,
        "test",
        flags=flags,
        complaint_probability=complaint,
        cues=cues,
        aspects=aspects,
        language=language,
    )


@pytest.mark.parametrize(
    ("classification", "label", "reply", "review", "aspects"),
    [
        # The model may act alone: clear, confident, nothing says complaint, English.
        (c("data_protection"), "data_protection", "signpost_data_protection", False, ()),
        (c("hr", 0.7), "hr", "signpost_hr", False, ()),
        (c("social_care"), "social_care", "signpost_social_care", False, ()),
        (
            c("safeguarding", flags=("safeguarding",)),
            "safeguarding",
            "signpost_safeguarding",
            False,
            ("safeguarding",),
        ),
        (c("feedback"), "feedback", "thanks", False, ()),
        (c("complaint", 0.9, 0.9), "complaint", "acknowledgement", False, ()),
        # It may not: each reason alone makes it a complaint for review, aspect kept.
        (c("hr", 0.55), "complaint", "acknowledgement", True, ("hr",)),  # below 0.6
        (c("safeguarding", 0.7), "complaint", "acknowledgement", True, ("safeguarding",)),
        (c("data_protection", 0.99, 0.2), "complaint", "acknowledgement", True, ("data_request",)),
        (
            c("social_care", cues=("complaining",)),
            "complaint",
            "acknowledgement",
            True,
            ("social_care",),
        ),
        (c("hr", language="cy"), "complaint", "acknowledgement", True, ("hr",)),
        (c("feedback", complaint=0.3), "complaint", "acknowledgement", True, ()),
        (c("feedback", cues=("failed",)), "complaint", "acknowledgement", True, ()),
        (c("feedback", 0.4), "complaint", "acknowledgement", True, ()),
        # A complaint is a complaint: cues and a high probability only confirm it.
        (c("complaint", 0.9, 0.9, cues=("apology",)), "complaint", "acknowledgement", False, ()),
        (c("complaint", 0.4, 0.4), "complaint", "acknowledgement", True, ()),
        (c("complaint", language="pl"), "complaint", "acknowledgement", True, ()),
        # A disclosure the net found gets no signpost or thanks of another label's kind.
        (
            c("data_protection", flags=("safeguarding",)),
            "data_protection",
            "acknowledgement",
            False,
            ("safeguarding",),
        ),
        (
            c("feedback", flags=("safeguarding",)),
            "feedback",
            "acknowledgement",
            False,
            ("safeguarding",),
        ),
        # Second aspects: the safeguarding flag first, a data request kept.
        (
            c("complaint", 0.9, 0.9, flags=("safeguarding",), aspects=("data_request",)),
            "complaint",
            "acknowledgement",
            False,
            ("safeguarding", "data_request"),
        ),
    ],
)
def test_the_gate(
    classification: Classification, label: str, reply: str, review: bool, aspects: tuple[str, ...]
) -> None:
    screened = screen(classification, SETTINGS, ENGLISH)
    assert (screened.label, screened.reply, screened.needs_review) == (label, reply, review)
    assert screened.aspects == aspects
    own_reply = {"complaint": "acknowledgement", "feedback": "thanks"}.get(
        classification.label, f"signpost_{classification.label}"
    )
    acted_alone = (label, reply, review) == (classification.label, own_reply, False)
    assert bool(screened.reasons) is not acted_alone  # the history says why, when it did not


def test_a_mailbox_that_works_in_welsh_lets_the_model_act_on_welsh() -> None:
    screened = screen(c("hr", language="cy"), SETTINGS, frozenset({"en", "cy"}))
    assert screened.reply == "signpost_hr"


def test_gate_figures_count_against_the_truth() -> None:
    truth = ["complaint", "complaint", "data_protection", "hr", "feedback"]
    results = [
        c("complaint", 0.9, 0.9),
        c("data_protection", 0.99, 0.3),  # would have been signposted without the gate
        c("data_protection"),
        c("hr", 0.5),
        c("feedback"),
    ]
    figures = gate_figures(truth, results, SETTINGS, ENGLISH)
    assert (figures.complaints, figures.complaints_signposted) == (2, 0)
    assert figures.complaints_without_stage == 0
    assert (figures.out_of_scope, figures.out_of_scope_signposted) == (2, 1)
    assert figures.to_review == 2
    assert "0/2 (0.0%)" in figures.report()


def test_whistleblowing_and_fraud_go_to_their_officer_never_signposted() -> None:
    staff = screen(c("hr", aspects=("whistleblowing",)), SETTINGS, ENGLISH)
    assert (staff.label, staff.reply, staff.aspects) == ("hr", "concern", ("whistleblowing",))
    public = screen(c("complaint", 0.9, 0.9, aspects=("fraud",)), SETTINGS, ENGLISH)
    assert (public.label, public.reply, public.aspects) == (
        "complaint",
        "acknowledgement",
        ("fraud",),
    )

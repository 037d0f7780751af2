"""Explicit cues (classifiers.cues) and the one-pass pattern matcher they share with the
safeguarding rules (classifiers.patterns)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers import cues
from classifiers.patterns import PatternSet, literal_prefixes


@pytest.mark.parametrize(
    ("text", "dissatisfaction"),
    [
        ("I wish to make a formal complaint about the night staff.", ("complaining",)),
        ("I'm complaining because nobody has replied to me.", ("complaining", "failed")),
        ("I\u2019d like to complain about the wait.", ("complaining",)),
        ("I want an apology for how my mother was spoken to.", ("apology",)),
        ("This is simply   not\ngood enough.", ("failed",)),
        ("Thank you, the team were wonderful with Dad.", ()),
    ],
)
def test_dissatisfaction_in_the_senders_own_words(
    text: str, dissatisfaction: tuple[str, ...]
) -> None:
    assert cues.read(text).dissatisfaction == dissatisfaction
    assert cues.dissatisfaction(text) == dissatisfaction


def test_data_requests_and_concerns_are_read_in_the_same_pass() -> None:
    said = cues.read(
        "Please send me copies of all my care records and the personal data you hold "
        "on me. I also want to report that a manager is stealing donations."
    )
    assert said.data_request
    assert said.concerns == ("fraud",)
    assert said.dissatisfaction == ()
    assert cues.read("I am raising a protected disclosure.").concerns == ("whistleblowing",)
    assert not cues.read("The data were published in the annual report.").data_request


def test_most_cue_patterns_are_tried_only_where_their_first_words_occur() -> None:
    everywhere = [p for _, p in cues.PATTERNS if literal_prefixes(p) is None]
    assert len(everywhere) <= 1, everywhere


_WORDS = sorted(
    {
        word
        for _, pattern in cues.PATTERNS
        for word in re.findall(r"[a-z][a-z'-]+", re.sub(r"\\.", " ", pattern))
    }
    | {"the", "i", "i'm", "a", "not", "complaint", "records", "me", "money", "no", "one"}
)


_ALL = PatternSet(cues.PATTERNS)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=40))
def test_one_pass_finds_exactly_what_searching_every_pattern_finds(words: list[str]) -> None:
    text = " ".join(words)
    plain = {name for name, pattern in cues.PATTERNS if re.search(pattern, text)}
    assert set(_ALL.hits(text)) == plain


def test_hits_come_in_the_order_the_names_were_given() -> None:
    patterns = PatternSet([("second", r"\bbeta\b"), ("first", r"\balpha\b"), ("second", "zz")])
    assert patterns.names == ("second", "first")
    assert patterns.hits("alpha then beta") == ("second", "first")
    assert patterns.hits("nothing here") == ()

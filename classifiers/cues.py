"""Explicit signals in the sender's own words, beside the model's probabilities.

`read` gives every cue of a message in one pass. Dissatisfaction is where a sender says in
so many words that they are complaining about the organisation's service: they say it is a
complaint, ask for an apology or an explanation of what went wrong, call the service
unacceptable or say nobody answered them.
It is one of the two signals that stop an out-of-scope signpost (daemon.triage.gate): a
message that says it is a complaint is handled as one, whatever the model thinks. It is
read on the text the model reads (quoted history and signature removed), lower-cased.

A data request is an explicit request for the sender's own records or data, which makes a
complaint that also asks for them a complaint with the `data_request` aspect; concerns are
whistleblowing and fraud raised in so many words.

Every pattern is linear in the text's length (no nested quantifiers; bounded gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

from classifiers.patterns import PatternSet

_COMPLAINING = (
    r"\b(?:make|making|raise|raising|lodge|lodging|file|filing|submit|submitting|log|logging|"
    r"register|registering|put in|putting in)\s+(?:a\s+|an\s+|my\s+)?(?:formal\s+|official\s+)?"
    r"complaint\b",
    r"\b(?:this|my email|this email|this letter|this message)\s+is\s+(?:a\s+)?"
    r"(?:formal\s+|official\s+)?complaint\b",
    # The text is normalised (one space between words), so a space is any whitespace.
    r"\bi (?:am|wish|want|would like) (?:to )?complain(?:ing)?\b",
    r"\bi'(?:m|d like) (?:to )?complain(?:ing)?\b",
    r"\bformal\s+complaint\b",
    r"\bstage\s+(?:1|2|one|two)\b",
    r"\bescalat",
)
_APOLOGY = (
    r"\b(?:want|expect|deserve|demand|owed|like|need)\s+(?:a|an)\s+"
    r"(?:proper\s+|full\s+|formal\s+|written\s+)?(?:apology|explanation)\b",
    r"\bapolog(?:y|ise|ize)\s+(?:from|for)\b",
)
_FAILED = (
    r"\b(?:unacceptable|not\s+(?:good\s+enough|acceptable|on)|appalled|appalling|disgusted|"
    r"disgraceful|shocking|outrageous|let\s+(?:me|us|her|him|them)\s+down|fobbed\s+off)\b",
    r"\b(?:very|extremely|deeply|really|so)\s+(?:disappointed|unhappy|upset|angry|frustrated)\s+"
    r"(?:with|by|about|at)\s+(?:your|the\s+(?:way|service|staff|care|team))",
    r"\b(?:nobody|no\s+one|no-one)\s+(?:has\s+)?(?:got\s+back|replied|responded|rang|called|"
    r"answered|listened|bothered)\b",
    r"\bstill\s+(?:waiting|no\s+(?:reply|response|answer|word))\b",
)
_DATA_REQUEST = (
    r"\bsubject\s+access\b",
    r"\bcop(?:y|ies)\s+of\s+(?:all\s+)?(?:my|his|her|our|the)\s+"
    r"(?:\w+\s+){0,2}?(?:records?|notes|file|data|information)\b",
    # "personal data you hold on me" is found at "data".
    r"\b(?:data|information)\s+(?:you|that\s+you)\s+(?:hold|have)\s+(?:on|about)\s+"
    r"(?:me|him|her|us)\b",
)
# Concerns the policies keep apart from complaints and grievances, whoever raises them.
_WHISTLEBLOWING = (
    r"\bwhistle-?blow",
    r"\bpublic interest disclosure\b",
    r"\bprotected disclosure\b",
    r"\bspeak(?:ing)? up guardian\b",
)
_FRAUD = (
    r"\bfraud",
    r"\bembezzl",
    r"\bfinancial (?:impropriety|irregularit)",
    r"\bbrib(?:e|ery|ed)\b",
    r"\b(?:stealing|stole|theft of|misus\w*(?: of)?(?: the)?(?: charity\W?s)?)\s+"
    r"(?:money|funds|donations)\b",
    r"\bfalse (?:expense|mileage) claims?\b",
    r"\bfiddl\w* (?:the )?(?:books|accounts|expenses|mileage)\b",
)
DISSATISFACTION = ("complaining", "apology", "failed")
CONCERNS = ("whistleblowing", "fraud")
# Every cue's patterns, by name: one PatternSet reads them all in about one pass.
PATTERNS: tuple[tuple[str, str], ...] = tuple(
    (name, pattern)
    for name, patterns in (
        ("complaining", _COMPLAINING),
        ("apology", _APOLOGY),
        ("failed", _FAILED),
        ("data_request", _DATA_REQUEST),
        ("whistleblowing", _WHISTLEBLOWING),
        ("fraud", _FRAUD),
    )
    for pattern in patterns
)
_CUES = PatternSet(PATTERNS)


@dataclass(frozen=True)
class Cues:
    """What the sender says in so many words."""

    dissatisfaction: tuple[str, ...]  # "apology", "complaining", "failed", sorted
    data_request: bool  # asks for their (or someone's) own records or data
    concerns: tuple[str, ...]  # "whistleblowing", "fraud"


def read(text: str) -> Cues:
    """Every cue in `text`, in one pass."""
    found = set(_CUES.hits(_normalise(text)))
    return Cues(
        dissatisfaction=tuple(sorted(found.intersection(DISSATISFACTION))),
        data_request="data_request" in found,
        concerns=tuple(name for name in CONCERNS if name in found),
    )


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def dissatisfaction(text: str) -> tuple[str, ...]:
    """The kinds of explicit dissatisfaction in `text`: "complaining", "apology", "failed"."""
    return read(text).dissatisfaction

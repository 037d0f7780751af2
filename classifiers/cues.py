"""Explicit signals in the sender's own words, beside the model's probabilities.

`dissatisfaction` finds where a sender says in so many words that they are complaining
about the organisation's service: they say it is a complaint, ask for an apology or an
explanation of what went wrong, call the service unacceptable or say nobody answered them.
It is one of the two signals that stop an out-of-scope signpost (daemon.triage.gate): a
message that says it is a complaint is handled as one, whatever the model thinks. It is
read on the text the model reads (quoted history and signature removed), lower-cased.

`data_request` finds an explicit request for the sender's own records or data, which makes
a complaint that also asks for them a complaint with the `data_request` aspect.

Every pattern is linear in the text's length (no nested quantifiers; bounded gaps).
"""

from __future__ import annotations

import re

_COMPLAINING = (
    r"\b(?:make|making|raise|raising|lodge|lodging|file|filing|submit|submitting|log|logging|"
    r"register|registering|put in|putting in)\s+(?:a\s+|an\s+|my\s+)?(?:formal\s+|official\s+)?"
    r"complaint\b",
    r"\b(?:this|my email|this email|this letter|this message)\s+is\s+(?:a\s+)?"
    r"(?:formal\s+|official\s+)?complaint\b",
    r"\bi\s+(?:am|'m|wish|want|would like|'d like)\s+(?:to\s+)?complain(?:ing)?\b",
    r"\bformal\s+complaint\b|\bstage\s+(?:1|2|one|two)\b|\bescalat",
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
CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, patterns in (
        ("complaining", _COMPLAINING),
        ("apology", _APOLOGY),
        ("failed", _FAILED),
    )
    for pattern in patterns
)
_DATA_REQUEST = re.compile(
    r"\bsubject\s+access\b|\bcop(?:y|ies)\s+of\s+(?:all\s+)?(?:my|his|her|our|the)\s+"
    r"(?:\w+\s+){0,2}?(?:records?|notes|file|data|information)\b|"
    r"\b(?:personal\s+)?(?:data|information)\s+(?:you|that\s+you)\s+(?:hold|have)\s+"
    r"(?:on|about)\s+(?:me|him|her|us)\b"
)


# Concerns the policies keep apart from complaints and grievances, whoever raises them.
_CONCERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "whistleblowing",
        re.compile(
            r"\bwhistle-?blow|\bpublic interest disclosure\b|\bprotected disclosure\b|"
            r"\bspeak(?:ing)? up guardian\b"
        ),
    ),
    (
        "fraud",
        re.compile(
            r"\bfraud|\bembezzl|\bfinancial (?:impropriety|irregularit)|\bbrib(?:e|ery|ed)\b|"
            r"\b(?:stealing|stole|theft of|misus\w*(?: of)?(?: the)?(?: charity\W?s)?)\s+"
            r"(?:money|funds|donations)\b|\bfalse (?:expense|mileage) claims?\b|"
            r"\bfiddl\w* (?:the )?(?:books|accounts|expenses|mileage)\b"
        ),
    ),
)


def concerns(text: str) -> tuple[str, ...]:
    """Whistleblowing and fraud, when the text raises them in so many words."""
    found = _normalise(text)
    return tuple(name for name, pattern in _CONCERNS if pattern.search(found))


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def dissatisfaction(text: str) -> tuple[str, ...]:
    """The kinds of explicit dissatisfaction in `text`: "complaining", "apology", "failed"."""
    found = _normalise(text)
    return tuple(sorted({name for name, pattern in CUES if pattern.search(found)}))


def data_request(text: str) -> bool:
    """Whether `text` asks for the sender's (or someone's) own records or data."""
    return _DATA_REQUEST.search(_normalise(text)) is not None

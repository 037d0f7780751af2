"""Whether a complainant's follow-up asks for the next stage of the complaints procedure.

A pure predicate, tuned for precision: a wrong "yes" starts the next stage's clock
unasked, while a missed request still reaches staff (who can escalate by command). So:
- only the complainant's own words count (quoted text and forwarded headers are cut);
- a request must be explicit: "escalate", "take it further", "stage 2", "the next
  stage", "review by the chief executive", "appeal (to the board)", "refer it to the
  director"; being unhappy is not on its own a request;
- a negated mention ("I don't want this escalated", "no need to take it further")
  anywhere in the message makes the answer no;
- narrative, hypothetical and grateful mentions ("it was escalated", "what happens if I
  escalate", "thank you for escalating") are neither a request nor a refusal.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from enum import Enum

_SOME_WORDS = r"(?:\s+[\w'-]+){1,4}?"
_ANY_WORDS = r"(?:\s+[\w'-]+){0,4}?"
_SENIOR = r"(?:chief executive|ceo|board|trustees|directors?|senior \w+|independent \w+)"
_ORDINAL = r"(?:2|3|two|three|ii|iii)"

_TRIGGERS = re.compile(
    "|".join(
        [
            r"(?<![\w-])escalat(?:e|ed|es|ing|ion)\b",
            # "to stage 2", "a stage two review"; not "your stage 2 response".
            rf"\b(?:to|for|into|at|request|requesting|start|open|a)\s+(?:the\s+)?"
            rf"(?:stage|step|level)\s+{_ORDINAL}\b",
            r"\bnext\s+(?:stage|step|level)\b",
            rf"\b(?:take|taking|pursue|pursuing|push|pushing|progress|progressing){_SOME_WORDS}"
            r"\s+further\b",
            rf"\b(?:review|reviewed|looked at|look at|reconsidered){_ANY_WORDS}\s+by\s+"
            rf"(?:the\s+|a\s+|your\s+)?{_SENIOR}",
            r"\b(?:chief executive|ceo|board|trustees)(?:'s)?\s+review\b",
            rf"\b(?:refer|referred|send|sent|pass|passed|forward|forwarded){_SOME_WORDS}\s+to\s+"
            rf"(?:the\s+|your\s+|a\s+)?{_SENIOR}",
            r"\b(?:independent|formal|further|second)\s+review\b",
            r"\bappeal(?:s|ed|ing)?\b",
        ]
    )
)

# Unhappiness is the reason for a request, not a negation of it.
_DISSATISFACTION = re.compile(
    r"\b(?:not|n't|never|no longer)\s+(?:\w+\s+){0,2}?"
    r"(?:happ|satisf|content|pleas|resolv|answer|address|accept|adequa|good enough|listen|"
    r"investigat|heard|repl|respon|explain|fix|sort|dealt with|help|done|taken seriously)\w*"
)
_NEGATION = re.compile(
    r"\b(?:not|no|never|nor|neither|without|rather not|no longer|cannot)\b|n't\b|\bdont\b"
    r"|\bwont\b"
)
_NOT_A_REQUEST = re.compile(
    r"\b(?:if|unless|whether|in case|what|should i|do i need|might|considering|thinking|"
    r"thank|thanks|thankful|grateful|appreciate)\b"
)
_NARRATIVE = re.compile(r"\b(?:was|were|been|has|have|had)(?:\s+(?!to\b)\w+)?\s*$")
_CLAUSE_BREAK = re.compile(r",|:|\s-\s|\b(?:and|but|so|however|because|as)\b")
# Only the start of a reply is read: a request is made in the complainant's own words at
# the top, and a 5 MB reply of one repeated trigger would otherwise take 17 s.
MAX_CHARS = 20_000
# How far back a clause is read. Real clauses are far shorter; the bound keeps a reply of
# one endless clause repeating a trigger linear in its length rather than quadratic.
_CLAUSE_WINDOW = 240
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_BREAK = re.compile(r"[.!?;]+(?:\s+|$)")
_QUOTE_HEADER = re.compile(
    r"^\s*(?:on\b.{0,200}\bwrote:|-{2,}\s*original message\s*-{2,}|_{10,}|from:\s.+|"
    r"sent from my \w+)\s*$"
)


class _Mention(Enum):
    REQUEST = "request"
    REFUSAL = "refusal"
    OTHER = "other"


def _own_words(text: str) -> str:
    """The part of a reply the complainant wrote: no quoted lines, headers or signature."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        lowered = line.strip().lower()
        if lowered == "--" or _QUOTE_HEADER.match(lowered):
            break
        if not lowered.startswith(">"):
            kept.append(line)
    return "\n".join(kept)


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return _DISSATISFACTION.sub("unhappy", text)


def _mention(sentence: str, start: int, break_ends: list[int]) -> _Mention:
    """How the trigger at `start` is used, judged from its own clause before it.

    `break_ends` are the sorted end offsets of the sentence's clause breaks.
    """
    index = bisect_right(break_ends, start)
    after_break = break_ends[index - 1] if index else 0
    clause = sentence[max(after_break, start - _CLAUSE_WINDOW) : start]
    if _NEGATION.search(clause):
        return _Mention.REFUSAL
    if _NARRATIVE.search(clause) or _NOT_A_REQUEST.search(clause):
        return _Mention.OTHER
    return _Mention.REQUEST


def asks_for_escalation(text: str) -> bool:
    """True when the complainant's words ask for the next stage of the procedure.

    Returns False when nothing asks explicitly, or when any mention is negated. Reads the
    first MAX_CHARS characters, in time linear in their length whatever they repeat.
    """
    requested = False
    for paragraph in _PARAGRAPH_BREAK.split(_normalise(_own_words(text[:MAX_CHARS]))):
        for sentence in _SENTENCE_BREAK.split(" ".join(paragraph.split())):
            break_ends: list[int] | None = None
            for found in _TRIGGERS.finditer(sentence):
                if break_ends is None:
                    break_ends = [m.end() for m in _CLAUSE_BREAK.finditer(sentence)]
                mention = _mention(sentence, found.start(), break_ends)
                if mention is _Mention.REFUSAL:
                    return False
                requested = requested or mention is _Mention.REQUEST
    return requested

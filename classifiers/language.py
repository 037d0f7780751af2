"""Which language a message is written in, so that mail the model was not trained on goes
to a person instead of being labelled by a model that cannot read it.

The model was trained on English. `detect` answers with an ISO 639-1 code. Most mail is
plainly English: when common English words make up a good share of the text it is English
at once (no library loaded). Otherwise lingua-language-detector decides among the
languages most written in UK complaints mailboxes; its models (~25 MB) are loaded on the
first such message only, so an English-only mailbox never pays for them.
"""

from __future__ import annotations

import re
import threading
from typing import Any

# Words that are common in English and rare in Welsh and the other languages detected (no
# "a", "i", "am", "me": they are Welsh words too).
_ENGLISH = frozenset(
    [
        "the",
        "and",
        "to",
        "of",
        "is",
        "that",
        "it",
        "was",
        "for",
        "with",
        "have",
        "this",
        "my",
        "not",
        "but",
        "you",
        "are",
        "be",
        "on",
        "they",
        "we",
        "at",
        "from",
        "had",
        "been",
        "has",
        "would",
        "what",
        "there",
        "about",
        "which",
        "when",
        "your",
        "he",
        "she",
        "his",
        "her",
        "our",
        "will",
        "can",
        "all",
        "if",
        "no",
        "so",
        "an",
        "or",
        "were",
        "been",
        "would",
        "could",
        "should",
        "please",
        "thank",
    ]
)
_WORD = re.compile(r"[^\W\d_]+")
ENGLISH_SHARE = 0.15  # at least this share of the words: English without asking lingua
MIN_WORDS = 4  # fewer words than this: too short to tell (None)
READ_CHARS = 600  # the start of the text says which language it is in
_LANGUAGES = (
    "ENGLISH",
    "WELSH",
    "POLISH",
    "ROMANIAN",
    "ARABIC",
    "URDU",
    "PUNJABI",
    "BENGALI",
    "FRENCH",
    "SPANISH",
    "PORTUGUESE",
    "LITHUANIAN",
)
_detector: Any = None
_lock = threading.Lock()


def _lingua() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            languages = [getattr(Language, name) for name in _LANGUAGES]
            _detector = (
                LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()
            )
        return _detector


def detect(text: str) -> str | None:
    """The ISO 639-1 code of `text`'s language ("en", "cy", "pl"...), or None when it is too
    short to tell."""
    start = text[:READ_CHARS]
    words = _WORD.findall(start.lower())
    if len(words) < MIN_WORDS:
        return None
    if sum(w in _ENGLISH for w in words) >= ENGLISH_SHARE * len(words):
        return "en"
    found = _lingua().detect_language_of(start)
    return found.iso_code_639_1.name.lower() if found is not None else None

"""Splitting a body into replies (quoted history, sign-offs) with mail-parser-reply, in linear time.

mail-parser-reply finds reply headers and signatures with regular expressions that
backtrack quadratically on text anyone can send: a body of 20,000 blank lines took 35 s,
a 200 KB one would take an hour, and the daemon reads every complainant's and staff
member's mail with them (bench/adversarial.py measures each step). Its `EmailMessage`
takes prebuilt patterns, so this module hands it equivalent ones that cannot backtrack
that way:
- no leading `\\s*` before a line start (the parser strips the signature it finds, so
  where the match starts inside the whitespace never mattered);
- the Outlook separator's run of newlines is matched from its first newline only;
- "On <date>, <name> wrote:" headers are read line by line instead of trying every way
  to split a line in two;
- `[\\s\\S]*` instead of `(.|\\s)*` for "the rest of the message".
tests/test_quotes.py checks they split real mail (the shared corpus, the training set) and
generated mail exactly as the library's own do. One difference is known: where a header
could end on either of two lines ("On\nX wrote:\nwrote:"), these take the first. Other
languages' "wrote" headers use the library's patterns unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE
from mailparser_reply.parser import EmailMessage

_QUOTED = QUOTED_MATCH_INCLUDE  # "> > " quote markers at the start of a line
# The library's "On\s(.+?\s?.+?)\s?wrote:" tries every way to cut the line in two. The same
# set of strings, "On", two characters or a line break with text on both sides, then the
# rest up to "wrote:", tried line by line (earliest line end first, as the library's does):
_ON = r"On\s(?:..|.+\n.).*?"
_EN_WROTE_HEADER = rf"^(?!On[.\s]*{_ON}\swrote:)((?:> ?)*{_ON}\s?wrote:)$"
_GENERIC_SEPARATOR = r"^-{5,} ?Original Message ?-{5,}$"
_OUTLOOK_SEPARATOR = r"(?<!\n)\n{2,} ?[_-]{32,}"
_NEVER = re.compile(r"\A(?!)")


def _table(language: str, key: str) -> str:
    value = MAIL_LANGUAGES.get(language, {}).get(key, "")
    return "|".join(value) if isinstance(value, list) else str(value)


def header_regex(languages: Sequence[str]) -> re.Pattern[str]:
    """Reply headers ("On ... wrote:", a From:/Sent: block, "Original Message")."""
    wrote = [
        _EN_WROTE_HEADER if lang == "en" else _table(lang, "wrote_header") for lang in languages
    ]
    from_headers = [_table(lang, "from_header") for lang in languages]
    alternatives = [p for p in (*wrote, *from_headers) if p] + [f"({_GENERIC_SEPARATOR})"]
    return re.compile("|".join(alternatives), re.MULTILINE | re.IGNORECASE)


def signature_regex(languages: Sequence[str], *, keep_hyphen_lists: bool) -> re.Pattern[str]:
    """From the first sign-off line ("-- ", "Kind regards", "Sent from my ...") to the end.

    With `keep_hyphen_lists`, a line starting "- word" is a list item, not a signature.
    """
    sent_from = "|".join(p for p in (_table(lang, "sent_from") for lang in languages) if p)
    sign_offs = "|".join(p for p in (_table(lang, "signatures") for lang in languages) if p)
    dashes = r"[-_]{2}\n" if keep_hyphen_lists else r"[-_]{2}\n|- ?\w"
    return re.compile(
        rf"(?:^{_QUOTED}(?:{dashes}).*|{_OUTLOOK_SEPARATOR}"
        rf"|^{_QUOTED}(?:{sent_from}) ?[\w.<>:// ]+$"
        rf"|(?<!\A)^{_QUOTED}(?:{sign_offs}))[\s\S]*",
        re.MULTILINE | re.IGNORECASE,
    )


class ReplyReader:
    """Reads bodies with mail-parser-reply using the linear patterns, built once."""

    def __init__(self, languages: Sequence[str], *, keep_hyphen_lists: bool) -> None:
        self._languages = list(dict.fromkeys([*languages, "en"]))
        self._keep_hyphen_lists = keep_hyphen_lists
        self._patterns: dict[str, Any] = {
            "_header_regex": header_regex(self._languages),
            "_signature_regex": signature_regex(
                self._languages, keep_hyphen_lists=keep_hyphen_lists
            ),
            # Callers that need disclaimers find them themselves; the library's search
            # is slow and its result unused.
            "_disclaimers_regex": _NEVER,
        }

    def read(self, text: str) -> EmailMessage:
        """The body split into replies, newest first."""
        message = EmailMessage(
            text=text,
            languages=list(self._languages),
            keep_hyphen_lists=self._keep_hyphen_lists,
            **self._patterns,
        )
        return message.read()

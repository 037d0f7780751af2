"""The complaints time limit: "normally made within 12 months of the events or of becoming
aware of them" (the policies), so a complaint about older events is flagged, never refused.

`stale_events` finds the dates of the events a message describes (dateparser, the maintained
date-extraction library; only dates with a year, since "last week" says nothing of age) and
returns the latest one when even that is older than the limit. A message that names no year
old enough is answered at once without the library being loaded at all, so the daemon pays
for it only on the few messages that could be late.
"""

from __future__ import annotations

import re
from datetime import date, datetime

_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_QUOTED_HEADER = re.compile(r"(?:Sent|Date|Envoy\u00e9|Gesendet):\s", re.IGNORECASE)
_ATTRIBUTION = re.compile(r"On\s.*?\swrote:[ \t]*$", re.DOTALL | re.MULTILINE)
_ISO_TAIL = re.compile(r"-[01]\d-[0-3]\d\b")
_SETTINGS = {
    "PREFER_DATES_FROM": "past",
    "DATE_ORDER": "DMY",
    "REQUIRE_PARTS": ["year"],
    "RETURN_AS_TIMEZONE_AWARE": False,
}
READ_CHARS = 5_000  # the events are described at the start
WINDOW = 40  # characters before a year that a date naming it can take


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, 28))


def _windows(text: str, latest_year: int) -> str:
    """The stretches of `text` that end in a year no later than `latest_year` (a date names
    its year last: "3 March 2025", "March 3, 2025", "03/03/2025"; an ISO date, "2025-03-03",
    is taken whole), one per line. A year inside a reference (_in_reference) is skipped."""
    spans: list[list[int]] = []
    for match in _YEAR.finditer(text):
        if int(match.group(1)) > latest_year or _in_reference(text, match):
            continue
        if _in_reply_header(text, match):
            continue
        begin = max(0, match.start() - WINDOW)
        iso = _ISO_TAIL.match(text, match.end())  # 2025-03-03 names its year first
        end = iso.end() if iso else match.end()
        if spans and begin <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([begin, end])
    return "\n".join(text[a:b].replace("\n", " ") for a, b in spans)


def _in_reference(text: str, match: re.Match[str]) -> bool:
    """Whether the year is the middle of a hyphenated token, as in a case reference
    ("CMP-2025-00123") that complainants quote: no date is written so ("2025-03-03" and
    "03-03-2025" have a hyphen on one side only)."""
    return text[match.start() - 1 : match.start()] == "-" == text[match.end() : match.end() + 1]


def _in_reply_header(text: str, match: re.Match[str]) -> bool:
    """Whether the year dates quoted correspondence, not an event: a reply's attribution
    ("On Sat, 3 Jan 2026 08:33, Ann wrote:", its "wrote:" perhaps on the next line) or a
    quoted header ("Sent: 3 January 2026 08:33", "Date: ...")."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    after = text.find("\n", end + 1) if end >= 0 else -1
    line = text[start : len(text) if end < 0 else end].lstrip("> \t")
    two_lines = text[start : len(text) if after < 0 else after].lstrip("> \t")
    return bool(_QUOTED_HEADER.match(line) or _ATTRIBUTION.match(two_lines))


def latest_event(text: str, received: datetime) -> date | None:
    """The latest date, on or before `received`, that `text` names with its year; None
    when it names none. dateparser reads only the stretches that end in a year, so a
    message costs little however long it is; the preparer runs this, off the database's
    write path (daemon.triage.prepare)."""
    windows = _windows(text[:READ_CHARS], received.year)
    if not windows:
        return None  # no year: nothing to look up, and the library is never loaded
    from dateparser.search import search_dates  # ~23 MB: loaded only when it may matter

    found = search_dates(windows, languages=["en"], settings=_SETTINGS) or []
    dated = [d.date() for said, d in found if _YEAR.search(said) and d.date() <= received.date()]
    return max(dated) if dated else None


def stale_since(latest: date | None, received: datetime, months: int) -> date | None:
    """`latest` (the latest event a message names) when it is more than `months` before
    `received`, else None. Pure and cheap: the intake decision calls it."""
    if latest is None:
        return None
    return latest if latest < _months_before(received.date(), months) else None


def stale_events(text: str, received: datetime, months: int) -> date | None:
    """The latest event date `text` names, when it is more than `months` before
    `received`; None when the message names a later one, or none with a year."""
    return stale_since(latest_event(text, received), received, months)

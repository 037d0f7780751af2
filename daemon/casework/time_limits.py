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
_SETTINGS = {
    "PREFER_DATES_FROM": "past",
    "DATE_ORDER": "DMY",
    "REQUIRE_PARTS": ["year"],
    "RETURN_AS_TIMEZONE_AWARE": False,
}
READ_CHARS = 5_000  # the events are described at the start


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, 28))


def stale_events(text: str, received: datetime, months: int) -> date | None:
    """The latest event date `text` names, when it is more than `months` before
    `received`; None when the message names a later one, or none with a year."""
    start = text[:READ_CHARS]
    cutoff = _months_before(received.date(), months)
    if not any(int(y) <= cutoff.year for y in _YEAR.findall(start)):
        return None  # no year old enough: nothing to look up
    from dateparser.search import search_dates  # ~23 MB: loaded only when it may matter

    found = search_dates(start, languages=["en"], settings=_SETTINGS) or []
    dated = [d.date() for said, d in found if _YEAR.search(said) and d.date() <= received.date()]
    if not dated:
        return None
    latest = max(dated)
    return latest if latest < cutoff else None

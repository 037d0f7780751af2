"""A mailbox's working calendar and time limits, built from its configuration."""

from __future__ import annotations

from datetime import time

from daemon.casework.workdays import TimeLimit, WorkingCalendar
from daemon.config import MailboxConfig

_WEEKDAYS = {"Mon": 0, "Tue": 1, "Wed": 2, "Thu": 3, "Fri": 4, "Sat": 5, "Sun": 6}


def calendar_for(mailbox: MailboxConfig) -> WorkingCalendar:
    cal = mailbox.calendar
    return WorkingCalendar(
        region=mailbox.region,
        timezone=mailbox.timezone,
        opens=time.fromisoformat(cal.opens),
        closes=time.fromisoformat(cal.closes),
        weekdays=frozenset(_WEEKDAYS[d] for d in cal.working_days),
        closures=frozenset(cal.closures),
    )


def acknowledgement_limit(mailbox: MailboxConfig) -> TimeLimit:
    """`policy.acknowledge`, or the `ack_within_working_days` shorthand."""
    return TimeLimit.parse(mailbox.acknowledge_limit)

"""A mailbox's working calendar, time limits and procedure, built from its configuration."""

from __future__ import annotations

from datetime import time

from daemon.casework.workdays import TimeLimit, WorkingCalendar
from daemon.config import MailboxConfig
from models.lifecycle import Procedure, StageRule

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


def procedure_for(mailbox: MailboxConfig, calendar: WorkingCalendar) -> Procedure:
    """The mailbox's stages (`[mailbox.policy]`), counted on its working calendar."""
    policy = mailbox.policy
    early = policy.early_resolution
    return Procedure(
        stages=tuple(
            StageRule(s.name, s.respond_within, s.request_within, s.handler, s.rights)
            for s in policy.stages
        ),
        due=lambda start, limit: calendar.due(start, TimeLimit.parse(limit)),
        later_by=calendar.later_by,
        clock_starts=policy.clock_starts,
        early=StageRule("early resolution", early.respond_within, None, early.handler)
        if early
        else None,
        max_extensions=policy.max_extensions_per_stage,
        max_extension_days=policy.max_extension_working_days,
        final_rights=policy.final_rights,
        same_handler=policy.same_handler,
    )

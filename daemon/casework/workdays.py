"""Working-day arithmetic: when a deadline counted in working days (or hours) falls.

The counting rule, used everywhere in Candour:
- a message received outside working hours counts as received when the office next
  opens (before opening on a working day: opening time that day; after closing, or on a
  non-working day: opening time on the next working day);
- the day it counts as received is day 0;
- a deadline of N working days falls at closing time on the Nth working day after day 0;
- a deadline in hours is counted on the clock from the moment of receipt.
Bank holidays come from the `holidays` library per UK nation; deadlines are returned in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import holidays

Unit = Literal["working_days", "hours"]
_LIMIT = re.compile(r"^\s*(\d+)\s+(working\s+days?|hours?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class TimeLimit:
    """A limit as policies write it: "1 working day", "24 hours", "25 working days"."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        """Parse "N working day(s)" or "N hour(s)". Raises ValueError with an example."""
        match = _LIMIT.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a time limit like '10 working days' or '24 hours'")
        unit: Unit = "hours" if match.group(2).lower().startswith("hour") else "working_days"
        return cls(int(match.group(1)), unit)

    def __str__(self) -> str:
        word = "hour" if self.unit == "hours" else "working day"
        return f"{self.amount} {word}{'' if self.amount == 1 else 's'}"


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and hours of one mailbox's office, in its own time zone."""

    region: str = "ENG"
    timezone: str = "Europe/London"
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0
    closures: frozenset[date] = field(default_factory=frozenset)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _bank_holidays(self) -> holidays.HolidayBase:
        # Imported when a calendar is first used: the configuration (which parses time
        # limits with this module) is loaded by processes that never count working days,
        # such as the preparer children, and the holidays package costs each ~10 MB.
        import holidays

        return holidays.country_holidays("GB", subdiv=self.region)

    @cached_property
    def _known(self) -> dict[date, bool]:
        return {}

    @cached_property
    def _nth_after(self) -> dict[tuple[date, int], date]:
        return {}

    def is_working_day(self, day: date) -> bool:
        # Remembered per day: a backlog counts deadlines from the same few days thousands
        # of times, and each look-up in `holidays` costs ~4 us. A day's answer never
        # changes for a calendar (a new configuration builds a new calendar).
        known = self._known.get(day)
        if known is None:
            known = (
                day.weekday() in self.weekdays
                and day not in self.closures
                and day not in self._bank_holidays
            )
            self._known[day] = known
        return known

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        for _ in range(3660):  # a decade of closures would be a configuration error
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no working day within ten years: check weekdays and closures")

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone)

    def effective_receipt(self, received: datetime) -> datetime:
        """When a message counts as received under the rule, in local time.

        Raises ValueError for a naive datetime (it would be read as the server's local time).
        """
        if received.tzinfo is None:
            raise ValueError("received must be an aware datetime")
        local = received.astimezone(self.zone)
        day = local.date()
        if self.is_working_day(day):
            if local.timetz().replace(tzinfo=None) < self.opens:
                return self._at(day, self.opens)
            if local.timetz().replace(tzinfo=None) < self.closes:
                return local
        return self._at(self.next_working_day(day), self.opens)

    def add_working_days(self, received: datetime, days: int) -> datetime:
        """Closing time on the `days`th working day after day 0, in UTC."""
        if days < 0:
            raise ValueError("a deadline cannot be negative")
        start = self.effective_receipt(received).date()
        # Remembered like the days themselves: a stage of 25 working days walks ~35 days,
        # and a backlog asks it again for every case received the same day.
        day = self._nth_after.get((start, days))
        if day is None:
            day = start
            for _ in range(days):
                day = self.next_working_day(day)
            self._nth_after[(start, days)] = day
        return self._at(day, self.closes).astimezone(UTC)

    def later_by(self, deadline: datetime, days: int) -> datetime:
        """`deadline` moved on by `days` working days: closing time on the `days`th working
        day after the deadline's own day (an extension), in UTC."""
        day = deadline.astimezone(self.zone).date()
        for _ in range(days):
            day = self.next_working_day(day)
        return self._at(day, self.closes).astimezone(UTC)

    def due(self, received: datetime, limit: TimeLimit) -> datetime:
        """The instant (UTC) a limit counted from `received` runs out."""
        if received.tzinfo is None:
            raise ValueError("received must be an aware datetime")
        if limit.unit == "hours":
            # In UTC: adding hours to a zoned time is wall-clock arithmetic in Python, which
            # would make "24 hours" last 23 or 25 hours across a change of clocks.
            return received.astimezone(UTC) + timedelta(hours=limit.amount)
        return self.add_working_days(received, limit.amount)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Whole working days from the day `start` counts as to `end`'s day (negative if past).

        Raises ValueError for naive datetimes.
        """
        if end.tzinfo is None:
            raise ValueError("end must be an aware datetime")
        a = self.effective_receipt(start).date()
        b = end.astimezone(self.zone).date()
        sign = 1
        if b < a:
            a, b, sign = b, a, -1
        count, day = 0, a
        while day < b:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return sign * count

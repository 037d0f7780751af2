"""The counting rule, checked against a reference written here from the holidays library.

The reference does not step day by day like `WorkingCalendar`: it lists every working day
of 2019-2033 once per office and finds day 0 and the Nth working day by bisection.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from daemon.casework.deadlines import acknowledgement_limit, calendar_for
from daemon.casework.workdays import TimeLimit, WorkingCalendar
from daemon.config import parse_config
from tests.conftest import make_mailbox

LONDON = ZoneInfo("Europe/London")
REGIONS = ("ENG", "WLS", "SCT", "NIR")
FIRST, LAST = date(2019, 1, 1), date(2033, 12, 31)
MONDAY_TO_FRIDAY = frozenset(range(5))


@dataclass(frozen=True)
class Office:
    """The reference's view of a mailbox's office."""

    region: str = "ENG"
    zone: str = "Europe/London"
    opens: time = time(9)
    closes: time = time(17)
    weekdays: frozenset[int] = MONDAY_TO_FRIDAY
    closures: frozenset[date] = frozenset()

    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(
            self.region, self.zone, self.opens, self.closes, self.weekdays, self.closures
        )


@functools.cache
def _bank_holidays(region: str) -> frozenset[date]:
    return frozenset(
        holidays.country_holidays("GB", subdiv=region, years=range(FIRST.year, LAST.year + 1))
    )


@functools.cache
def _working_days(region: str, weekdays: frozenset[int], closures: frozenset[date]) -> list[date]:
    """Every working day from FIRST to LAST, in order."""
    closed = _bank_holidays(region) | closures
    span = (LAST - FIRST).days + 1
    days = (FIRST + timedelta(days=i) for i in range(span))
    return [d for d in days if d.weekday() in weekdays and d not in closed]


def _clock_tuple(moment: datetime) -> tuple[int, int, int, int]:
    return (moment.hour, moment.minute, moment.second, moment.microsecond)


def _hours_tuple(moment: time) -> tuple[int, int, int, int]:
    return (moment.hour, moment.minute, moment.second, moment.microsecond)


def reference_day0(received: datetime, office: Office) -> tuple[int, bool]:
    """(index of day 0 in the working-day list, whether receipt was inside working hours)."""
    days = _working_days(office.region, office.weekdays, office.closures)
    local = received.astimezone(ZoneInfo(office.zone))
    index = bisect_left(days, local.date())
    if days[index] == local.date():
        if _clock_tuple(local) < _hours_tuple(office.opens):
            return index, False
        if _clock_tuple(local) < _hours_tuple(office.closes):
            return index, True
        return index + 1, False
    return index, False


def reference_due(received: datetime, working_days: int, office: Office) -> datetime:
    """Closing time on the Nth working day after day 0, as a UTC instant."""
    days = _working_days(office.region, office.weekdays, office.closures)
    index, _ = reference_day0(received, office)
    due_day = days[index + working_days]
    return datetime.combine(due_day, office.closes, tzinfo=ZoneInfo(office.zone)).astimezone(UTC)


def reference_between(start: datetime, end: datetime, office: Office) -> int:
    """Working days from start's day 0 to end's local day, negative when end is before."""
    days = _working_days(office.region, office.weekdays, office.closures)
    index, _ = reference_day0(start, office)
    a = days[index]
    b = end.astimezone(ZoneInfo(office.zone)).date()
    if b >= a:
        return bisect_right(days, b) - bisect_right(days, a)
    return -(bisect_right(days, a) - bisect_right(days, b))


# -- strategies ----------------------------------------------------------------------------

BOUNDARY_TIMES = [time(0), time(8, 59, 59), time(9), time(12), time(16, 59, 59), time(17)]
local_dates = st.dates(date(2020, 1, 1), date(2030, 12, 31))
local_times = st.one_of(st.sampled_from(BOUNDARY_TIMES), st.times())


@st.composite
def london_moments(draw: st.DrawFn) -> datetime:
    """An aware instant in 2020-2030, often at the edges of the working day."""
    moment = datetime.combine(draw(local_dates), draw(local_times), tzinfo=LONDON)
    return moment.replace(fold=draw(st.integers(0, 1)))


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


@st.composite
def around_clock_changes(draw: st.DrawFn) -> datetime:
    """An instant within four days of a UK clock change (01:00 UTC on the last Sunday)."""
    year = draw(st.integers(2020, 2030))
    month = draw(st.sampled_from([3, 10]))
    change = datetime.combine(last_sunday(year, month), time(1), tzinfo=UTC)
    minutes = draw(st.integers(-4 * 24 * 60, 4 * 24 * 60))
    return change + timedelta(minutes=minutes, seconds=draw(st.integers(0, 59)))


@st.composite
def offices(draw: st.DrawFn) -> Office:
    """Any region, zone, working hours, working weekdays and closures."""
    opens = draw(st.integers(6 * 60, 11 * 60))
    closes = draw(st.integers(opens + 30, 20 * 60))
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    closures = draw(st.frozensets(st.dates(date(2020, 1, 1), date(2031, 6, 30)), max_size=40))
    return Office(
        region=draw(st.sampled_from(REGIONS)),
        zone=draw(st.sampled_from(["Europe/London", "Europe/Dublin", "Europe/Belfast"])),
        opens=time(opens // 60, opens % 60),
        closes=time(closes // 60, closes % 60),
        weekdays=weekdays,
        closures=closures,
    )


regions = st.sampled_from(REGIONS)
working_day_counts = st.integers(0, 60)


# -- the examples in the issue and in docs/deadlines.md --------------------------------------


@pytest.mark.parametrize(
    ("region", "received", "limit", "due"),
    [
        # Christmas 2026: Fri 25 and Mon 28 (Boxing Day observed) are bank holidays.
        ("ENG", "2026-12-24T10:00", "1 working day", "2026-12-29T17:00:00+00:00"),
        # Received after hours on the Friday before the clocks go forward: day 0 is Mon 30
        # March; Good Friday (3 Apr) everywhere and Easter Monday (6 Apr) outside Scotland.
        ("ENG", "2026-03-27T18:30", "10 working days", "2026-04-15T17:00:00+01:00"),
        ("SCT", "2026-03-27T18:30", "10 working days", "2026-04-14T17:00:00+01:00"),
        # St Patrick's Day is a bank holiday in Northern Ireland only.
        ("ENG", "2026-03-16T12:00", "1 working day", "2026-03-17T17:00:00+00:00"),
        ("NIR", "2026-03-16T12:00", "1 working day", "2026-03-18T17:00:00+00:00"),
        # 2 January is a bank holiday in Scotland only.
        ("ENG", "2025-12-31T16:00", "1 working day", "2026-01-02T17:00:00+00:00"),
        ("SCT", "2025-12-31T16:00", "1 working day", "2026-01-05T17:00:00+00:00"),
        # The State Funeral of Queen Elizabeth II, Mon 19 Sep 2022, in every nation.
        ("WLS", "2022-09-16T10:00", "1 working day", "2022-09-20T17:00:00+01:00"),
        # Before opening counts from 09:00 that day; 17:00 itself is after closing.
        ("ENG", "2026-03-02T08:00", "0 working days", "2026-03-02T17:00:00+00:00"),
        ("ENG", "2026-03-02T17:00", "0 working days", "2026-03-03T17:00:00+00:00"),
        # Hours run on the clock, across the night the clocks change: 24 real hours.
        ("ENG", "2026-03-28T12:00", "24 hours", "2026-03-29T13:00:00+01:00"),
        ("ENG", "2026-10-24T12:00", "24 hours", "2026-10-25T11:00:00+00:00"),
    ],
)
def test_worked_examples(region: str, received: str, limit: str, due: str) -> None:
    calendar = WorkingCalendar(region=region)
    moment = datetime.fromisoformat(received).replace(tzinfo=LONDON)
    result = calendar.due(moment, TimeLimit.parse(limit))
    assert result.utcoffset() == timedelta(0)
    assert result == datetime.fromisoformat(due)
    assert result.astimezone(LONDON).isoformat() == due


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=600)
@given(region=regions, received=london_moments(), working_days=working_day_counts)
@example(region="ENG", received=datetime(2026, 12, 24, 10, tzinfo=LONDON), working_days=1)
def test_due_matches_the_reference_in_every_nation(
    region: str, received: datetime, working_days: int
) -> None:
    calendar = WorkingCalendar(region=region)
    due = calendar.due(received, TimeLimit(working_days, "working_days"))
    assert due == reference_due(received, working_days, Office(region=region))
    assert due.tzinfo is UTC


# One calendar per nation for every example: what each remembers (a day's answer, the day
# n working days after another) must give what a fresh count gives, whatever came before.
_SHARED = {region: WorkingCalendar(region=region) for region in REGIONS}


@settings(max_examples=600)
@given(
    region=regions,
    received=london_moments(),
    working_days=st.lists(working_day_counts, min_size=1, max_size=4),
)
def test_a_calendar_asked_again_answers_as_a_fresh_count(
    region: str, received: datetime, working_days: list[int]
) -> None:
    calendar = _SHARED[region]
    for days in [*working_days, *reversed(working_days)]:
        due = calendar.due(received, TimeLimit(days, "working_days"))
        assert due == reference_due(received, days, Office(region=region))


@settings(max_examples=600)
@given(region=regions, received=around_clock_changes(), working_days=st.integers(0, 25))
def test_due_around_the_clock_changes(region: str, received: datetime, working_days: int) -> None:
    calendar = WorkingCalendar(region=region)
    due = calendar.due(received, TimeLimit(working_days, "working_days"))
    assert due == reference_due(received, working_days, Office(region=region))
    local = due.astimezone(LONDON)
    # Always 17:00 on the wall clock, whether that is 16:00 or 17:00 UTC.
    assert (local.hour, local.minute) == (17, 0)
    assert local.utcoffset() == LONDON.utcoffset(local.replace(tzinfo=None))


@settings(max_examples=400)
@given(
    received=st.one_of(around_clock_changes(), london_moments()),
    hours=st.integers(0, 24 * 30),
)
def test_hours_are_counted_on_the_clock_from_receipt(received: datetime, hours: int) -> None:
    due = WorkingCalendar().due(received, TimeLimit(hours, "hours"))
    assert due.tzinfo is UTC
    # Subtracting in UTC measures elapsed time, not a difference of wall clocks.
    assert due - received.astimezone(UTC) == timedelta(hours=hours)


@settings(max_examples=400)
@given(office=offices(), received=london_moments(), working_days=st.integers(0, 30))
def test_custom_hours_weekdays_closures_and_zones(
    office: Office, received: datetime, working_days: int
) -> None:
    due = office.calendar().due(received, TimeLimit(working_days, "working_days"))
    assert due == reference_due(received, working_days, office)


@settings(max_examples=400)
@given(office=offices(), received=st.one_of(london_moments(), around_clock_changes()))
def test_effective_receipt_is_the_next_opening_or_the_receipt_itself(
    office: Office, received: datetime
) -> None:
    effective = office.calendar().effective_receipt(received)
    index, inside_hours = reference_day0(received, office)
    day0 = _working_days(office.region, office.weekdays, office.closures)[index]
    if inside_hours:
        assert effective == received
    else:
        assert effective == datetime.combine(day0, office.opens, tzinfo=ZoneInfo(office.zone))
    assert effective >= received
    assert effective.astimezone(ZoneInfo(office.zone)).date() == day0


@settings(max_examples=300)
@given(
    region=regions,
    first=london_moments(),
    later_by=st.timedeltas(timedelta(0), timedelta(days=20)),
    working_days=st.integers(0, 25),
)
def test_later_receipt_never_gives_an_earlier_deadline(
    region: str, first: datetime, later_by: timedelta, working_days: int
) -> None:
    calendar = WorkingCalendar(region=region)
    second = first.astimezone(UTC) + later_by
    limit = TimeLimit(working_days, "working_days")
    assert calendar.due(first, limit) <= calendar.due(second, limit)
    one_more = calendar.due(first, TimeLimit(working_days + 1, "working_days"))
    assert one_more > calendar.due(first, limit)


@settings(max_examples=400)
@given(office=offices(), start=london_moments(), end=london_moments())
def test_working_days_between_matches_the_reference(
    office: Office, start: datetime, end: datetime
) -> None:
    assert office.calendar().working_days_between(start, end) == reference_between(
        start, end, office
    )


@settings(max_examples=300)
@given(region=regions, received=london_moments(), working_days=working_day_counts)
def test_a_deadline_is_its_number_of_working_days_away(
    region: str, received: datetime, working_days: int
) -> None:
    calendar = WorkingCalendar(region=region)
    due = calendar.due(received, TimeLimit(working_days, "working_days"))
    assert calendar.working_days_between(received, due) == working_days


# -- parsing, validation and configuration ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("1 working day", 1, "working_days"),
        ("10 working days", 10, "working_days"),
        ("  25 Working  Days ", 25, "working_days"),
        ("24 hours", 24, "hours"),
        ("1 hour", 1, "hours"),
    ],
)
def test_time_limits_parse_and_print_back(text: str, amount: int, unit: str) -> None:
    limit = TimeLimit.parse(text)
    assert (limit.amount, limit.unit) == (amount, unit)
    assert TimeLimit.parse(str(limit)) == limit


@pytest.mark.parametrize("text", ["ten working days", "3 days", "2 weeks", "-1 hours", ""])
def test_a_limit_policies_do_not_write_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="10 working days"):
        TimeLimit.parse(text)


def test_naive_times_are_refused_not_read_as_the_servers_zone() -> None:
    calendar = WorkingCalendar()
    naive = datetime(2026, 3, 2, 10)
    with pytest.raises(ValueError, match="aware"):
        calendar.due(naive, TimeLimit(1, "working_days"))
    with pytest.raises(ValueError, match="aware"):
        calendar.effective_receipt(naive)
    with pytest.raises(ValueError, match="aware"):
        calendar.working_days_between(datetime(2026, 3, 2, 10, tzinfo=UTC), naive)


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WorkingCalendar().add_working_days(datetime(2026, 3, 2, 10, tzinfo=UTC), -1)


def test_a_calendar_with_no_working_day_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no working day"):
        WorkingCalendar(weekdays=frozenset()).next_working_day(date(2026, 3, 2))


def test_calendar_for_takes_region_zone_hours_weekdays_and_closures() -> None:
    mailbox = make_mailbox(
        region="SCT",
        timezone="Europe/Dublin",
        calendar={
            "opens": "08:30",
            "closes": "16:00",
            "working_days": ["Mon", "Tue", "Wed", "Thu"],
            "closures": [date(2026, 12, 29)],
        },
    )
    calendar = calendar_for(mailbox)
    assert calendar == WorkingCalendar(
        "SCT",
        "Europe/Dublin",
        time(8, 30),
        time(16),
        frozenset({0, 1, 2, 3}),
        frozenset({date(2026, 12, 29)}),
    )
    assert not calendar.is_working_day(date(2026, 12, 29))  # the closure
    assert not calendar.is_working_day(date(2026, 3, 6))  # a Friday
    assert not calendar.is_working_day(date(2026, 11, 30))  # St Andrew's Day


def test_acknowledgement_limit_prefers_the_policy_over_the_shorthand() -> None:
    variants: list[tuple[str, dict[str, object]]] = [
        ("a", {"ack_within_working_days": 3}),
        ("b", {"ack_within_working_days": 3, "policy": {"acknowledge": "24 hours"}}),
        ("c", {}),
    ]
    config = parse_config(
        {
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [
                {
                    "name": name,
                    "address": f"{name}@example.org",
                    "organisation": "Example Trust",
                    "imap": {"host": "127.0.0.1", "username": "u"},
                    **fields,
                }
                for name, fields in variants
            ],
        },
        "test",
    )
    assert [acknowledgement_limit(m) for m in config.mailbox] == [
        TimeLimit(3, "working_days"),
        TimeLimit(24, "hours"),
        TimeLimit(1, "working_days"),
    ]

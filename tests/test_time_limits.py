"""The complaints time limit's date reading (daemon.casework.time_limits): pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

from daemon.casework.time_limits import latest_event, stale_since

RECEIVED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_the_latest_dated_event_is_read_in_the_forms_people_write() -> None:
    text = "It began on 3 March 2024, got worse by 14/06/2024 and ended 2024-09-01."
    assert latest_event(text, RECEIVED) == date(2024, 9, 1)


def test_a_case_reference_is_not_a_date() -> None:
    text = "Following up on reference CMP-2025-00123, nothing has happened."
    assert latest_event(text, RECEIVED) is None


def test_a_reference_beside_a_real_date_leaves_the_date() -> None:
    text = "Re CMP-2019-77777: the fall happened on 2 January 2019."
    assert latest_event(text, RECEIVED) == date(2019, 1, 2)


def test_dates_after_arrival_and_text_without_a_year_are_ignored() -> None:
    assert latest_event("The hearing is on 5 May 2026.", RECEIVED) is None
    assert latest_event("It happened last Tuesday, again.", RECEIVED) is None


def test_only_events_older_than_the_limit_are_stale() -> None:
    assert stale_since(date(2024, 9, 1), RECEIVED, 12) == date(2024, 9, 1)
    assert stale_since(date(2025, 9, 1), RECEIVED, 12) is None
    assert stale_since(None, RECEIVED, 12) is None


def test_the_dates_of_quoted_correspondence_are_not_events() -> None:
    text = (
        "I am still waiting for an answer.\n\n"
        "On Sat, 03 Jan 2024 08:33:54 +0000, Ann Green\n<ann@example.org> wrote:\n"
        "> The repair was promised for 4 January 2024.\n"
        "From: Complaints\nSent: Friday, 2 February 2024 10:01\nSubject: Your complaint\n"
    )
    assert latest_event(text, RECEIVED) == date(2024, 1, 4)


def test_a_sentence_starting_on_with_a_date_is_an_event() -> None:
    text = "On 3 March 2024 the carer did not arrive, and nobody wrote to explain."
    assert latest_event(text, RECEIVED) == date(2024, 3, 3)

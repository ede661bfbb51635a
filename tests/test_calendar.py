"""add_business_time: working hours in a calendar's time zone, across
evenings, weekends, holidays and clock changes, from starts outside hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowctl.engine.calendars import CalendarError, add_business_time, working_hours
from flowctl.model import Calendar

UTC_CAL = Calendar(path=())  # UTC, Monday to Friday, 09:00-17:00
MOSCOW = Calendar(path=(), timezone="Europe/Moscow", hours="09:00-18:00",
                  holidays=("2026-12-31", "2027-01-01", "2027-01-07"))
ALWAYS_BERLIN = Calendar(path=(), timezone="Europe/Berlin", hours="00:00-24:00",
                         workdays=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
NEW_YORK = Calendar(path=(), timezone="America/New_York")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def add(start: str, hours: float, cal: Calendar = UTC_CAL) -> str:
    moment = add_business_time(z(start), timedelta(hours=hours), cal)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("start", "hours", "end"), [
    ("2026-11-23T10:00:00Z", 2, "2026-11-23T12:00:00Z"),  # inside one day
    ("2026-11-23T09:00:00Z", 8, "2026-11-23T17:00:00Z"),  # ends exactly at closing
    ("2026-11-23T16:00:00Z", 2, "2026-11-24T10:00:00Z"),  # over the evening
    ("2026-11-27T16:00:00Z", 2, "2026-11-30T10:00:00Z"),  # Friday over the weekend
    ("2026-11-23T09:00:00Z", 40, "2026-11-27T17:00:00Z"),  # a working week
    ("2026-11-23T09:00:00Z", 24, "2026-11-25T17:00:00Z"),  # "24h" is three working days
    ("2026-11-28T12:00:00Z", 1, "2026-11-30T10:00:00Z"),  # starts on a Saturday
    ("2026-11-23T07:00:00Z", 1, "2026-11-23T10:00:00Z"),  # starts before opening
    ("2026-11-23T20:00:00Z", 1, "2026-11-24T10:00:00Z"),  # starts after closing
    ("2026-11-23T16:59:59Z", 0.5, "2026-11-24T09:29:59Z"),
])
def test_utc_working_week(start: str, hours: float, end: str) -> None:
    assert add(start, hours) == end


def test_holidays_and_time_zone() -> None:
    # Wednesday 2026-12-30 17:00 Moscow (14:00Z): 1h that day, then Dec 31 and
    # Jan 1 are holidays, Jan 2-3 a weekend: Monday Jan 4 10:00 Moscow.
    assert add("2026-12-30T14:00:00Z", 2, MOSCOW) == "2027-01-04T07:00:00Z"
    # Wednesday Jan 6 17:00 Moscow + 2h: Jan 7 is a holiday -> Friday Jan 8 10:00
    assert add("2027-01-06T14:00:00Z", 2, MOSCOW) == "2027-01-08T07:00:00Z"
    # Monday 09:00Z is 12:00 in Moscow: 48 working hours end next Monday 15:00 local
    assert add("2026-11-23T09:00:00Z", 48, MOSCOW) == "2026-11-30T12:00:00Z"


def test_clocks_going_back_make_a_longer_day() -> None:
    # Berlin, Sunday 2026-10-25: 25 hours long. 24 working hours from local
    # midnight end at 23:00 local that same day.
    start = "2026-10-24T22:00:00Z"  # 00:00 CEST
    assert add(start, 24, ALWAYS_BERLIN) == "2026-10-25T22:00:00Z"  # 23:00 CET


def test_clocks_going_forward_make_a_shorter_day() -> None:
    # Berlin, Sunday 2026-03-29: 23 hours long; 24 working hours from local
    # midnight end at 01:00 local the next day.
    start = "2026-03-28T23:00:00Z"  # 00:00 CET
    assert add(start, 24, ALWAYS_BERLIN) == "2026-03-29T23:00:00Z"  # 01:00 CEST, Monday


def test_office_hours_follow_the_local_clock_across_a_change() -> None:
    # New York changes to summer time on Sunday 2026-03-08. Friday 16:00 EST
    # (21:00Z) + 2h: Monday 10:00 EDT, which is 14:00Z (not 15:00Z).
    assert add("2026-03-06T21:00:00Z", 2, NEW_YORK) == "2026-03-09T14:00:00Z"


def test_naive_start_is_utc() -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    assert add_business_time(naive, timedelta(hours=1), UTC_CAL) == z("2026-11-23T11:00:00Z")


def test_a_calendar_without_working_time_is_refused() -> None:
    never = Calendar(path=(), workdays=())
    with pytest.raises(CalendarError, match="has no working time"):
        add_business_time(z("2026-11-23T10:00:00Z"), timedelta(hours=1), never)
    with pytest.raises(CalendarError, match="unknown time zone"):
        add_business_time(z("2026-11-23T10:00:00Z"), timedelta(hours=1),
                          Calendar(path=(), timezone="Mars/Olympus"))


@pytest.mark.parametrize(("hours", "message"), [
    ("09:00", "must be HH:MM-HH:MM"),
    ("18:00-09:00", "end before they start"),
    ("09:00-25:00", "not a time of day"),
    ("9-17", "must be HH:MM"),
])
def test_bad_working_hours(hours: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        working_hours(hours)

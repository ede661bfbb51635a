"""Business time: durations counted only in a process calendar's working hours.

    >>> from datetime import UTC, datetime, timedelta
    >>> from flowctl.model import Calendar
    >>> cal = Calendar(path=(), timezone="UTC", hours="09:00-17:00")
    >>> friday_4pm = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    >>> add_business_time(friday_4pm, timedelta(hours=2), cal).isoformat()
    '2026-11-30T10:00:00+00:00'

A working day is a weekday listed in ``workdays`` that is not a holiday; its
working window runs from the start to the end of ``hours`` in the calendar's
time zone (``24:00`` is midnight at the end of the day). Working time is real
elapsed time inside those windows, so on a day when the clocks change a
window that spans the change is an hour shorter or longer. A start outside
working hours counts from the next window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flowctl.model import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3700  # about ten years of calendar days: a calendar with no working day ends here


class CalendarError(ValueError):
    """The calendar cannot be used (unknown time zone, bad hours, no working day)."""


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone {name!r} in the calendar") from exc


def _clock(text: str) -> tuple[int, int]:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit():
        raise CalendarError(f"working hours {text!r} must be HH:MM")
    h, m = int(hh), int(mm)
    if not (0 <= m < 60 and (0 <= h < 24 or (h == 24 and m == 0))):
        raise CalendarError(f"working hours {text!r} are not a time of day")
    return h, m


@lru_cache(maxsize=32)
def working_hours(hours: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``"09:00-18:00"`` -> ``((9, 0), (18, 0))``."""
    start, sep, end = hours.partition("-")
    if not sep:
        raise CalendarError(f"working hours {hours!r} must be HH:MM-HH:MM")
    opens, closes = _clock(start), _clock(end)
    if closes <= opens:
        raise CalendarError(f"working hours {hours!r} end before they start")
    return opens, closes


def _local(day: date, hm: tuple[int, int], zone: ZoneInfo) -> datetime:
    if hm == (24, 0):
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return datetime.combine(day, time(hm[0], hm[1]), tzinfo=zone)


def is_workday(day: date, cal: Calendar) -> bool:
    return WEEKDAYS[day.weekday()] in cal.workdays and day.isoformat() not in cal.holidays


def window(day: date, cal: Calendar) -> tuple[datetime, datetime]:
    """The working window of ``day`` (a working day) as UTC times."""
    zone = _zone(cal.timezone)
    opens, closes = working_hours(cal.hours)
    return (
        _local(day, opens, zone).astimezone(UTC),
        _local(day, closes, zone).astimezone(UTC),
    )


def add_business_time(start: datetime, duration: timedelta, cal: Calendar) -> datetime:
    """The moment ``duration`` of working time after ``start`` (UTC-aware).

    Raises CalendarError when the calendar has no working time within ten years.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    moment = start.astimezone(UTC)
    remaining = duration
    day = start.astimezone(_zone(cal.timezone)).date()
    for _ in range(MAX_DAYS):
        if is_workday(day, cal):
            opens, closes = window(day, cal)
            begin = max(opens, moment)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += timedelta(days=1)
    raise CalendarError(
        f"the calendar ({cal.timezone}, {', '.join(cal.workdays) or 'no workdays'},"
        f" {cal.hours}) has no working time to count {duration} in"
    )

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

import calendar as _gregorian
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flowctl.definition.durations import Duration
from flowctl.model import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3700  # about ten years of calendar days: a calendar with no working day ends here


class CalendarError(ValueError):
    """The calendar cannot be used (unknown time zone, bad hours, no working day)."""


def zone(name: str) -> ZoneInfo:
    """The time zone ``name``; CalendarError when it is unknown."""
    return _zone(name)


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
    return _window(day, cal.timezone, cal.hours)


# Every SLA and escalation of every stage entered counts through the same few
# days: each day's window is worked out once (time zone rules included).
@lru_cache(maxsize=4096)
def _window(day: date, timezone: str, hours: str) -> tuple[datetime, datetime]:
    zone = _zone(timezone)
    opens, closes = working_hours(hours)
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


def business_seconds(start: datetime, end: datetime, cal: Calendar) -> float:
    """Seconds of working time between ``start`` and ``end`` (UTC-aware; 0 when
    ``end`` is not after ``start``): the inverse of :func:`add_business_time`."""
    if end <= start:
        return 0.0
    zone = _zone(cal.timezone)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        if is_workday(day, cal):
            opens, closes = window(day, cal)
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += (finish - begin).total_seconds()
        day += timedelta(days=1)
    return total


def add_months(start: datetime, months: int, zone_name: str = "UTC") -> datetime:
    """``start`` plus calendar months in the time zone: the same day and time
    of day, the month's last day when it is shorter (Jan 31 + 1 = Feb 28/29).

    >>> add_months(datetime(2028, 1, 31, 9, 0, tzinfo=UTC), 1).isoformat()
    '2028-02-29T09:00:00+00:00'
    >>> add_months(datetime(2027, 1, 31, 9, 0, tzinfo=UTC), 1).isoformat()
    '2027-02-28T09:00:00+00:00'
    """
    local = start.astimezone(_zone(zone_name))
    years, month0 = divmod(local.month - 1 + months, 12)
    year = local.year + years
    if not 1 <= year <= 9999:
        raise CalendarError(f"{months} months after {start.isoformat()} is past the year 9999")
    day = min(local.day, _gregorian.monthrange(year, month0 + 1)[1])
    return local.replace(year=year, month=month0 + 1, day=day).astimezone(UTC)


def add_working_days(start: datetime, days: int, cal: Calendar) -> datetime:
    """The same time of day on the ``days``-th working day after ``start``; a
    start outside working hours counts from the next working moment.

    >>> cal = Calendar(path=(), timezone="UTC", hours="09:00-17:00")
    >>> add_working_days(datetime(2026, 11, 27, 16, 0, tzinfo=UTC), 1, cal).isoformat()
    '2026-11-30T16:00:00+00:00'
    """
    zone = _zone(cal.timezone)
    local = add_business_time(start, timedelta(0), cal).astimezone(zone)
    day, clock = local.date(), local.timetz().replace(tzinfo=None)
    counted = 0
    for _ in range(days * 7 + MAX_DAYS):
        day += timedelta(days=1)
        if is_workday(day, cal):
            counted += 1
            if counted == days:
                return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
    raise CalendarError(
        f"the calendar ({cal.timezone}, {', '.join(cal.workdays) or 'no workdays'}) has no"
        f" {days} working days within ten years"
    )


def add_duration(start: datetime, duration: Duration, cal: Calendar,
                 business_hours: bool = False) -> datetime:
    """``start`` + ``duration``: calendar months (``y``, ``mo``) in the calendar's
    time zone, then working days (``bd``), then the fixed part (``w d h m s``),
    as working time of ``cal`` when ``business_hours`` (then a result outside
    working hours moves to the next working moment), else as elapsed time.
    Raises CalendarError when the calendar cannot count it."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    moment = start.astimezone(UTC)
    try:
        if duration.months:
            moment = add_months(moment, duration.months, cal.timezone)
        if duration.business_days:
            moment = add_working_days(moment, duration.business_days, cal)
        if business_hours:
            return add_business_time(moment, duration.fixed, cal)
        return moment + duration.fixed
    except OverflowError as exc:
        raise CalendarError(f"{duration.text} after {start.isoformat()} is past the year 9999"
                            ) from exc

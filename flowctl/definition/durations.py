"""Durations in definitions and on the command line: ``30d``, ``24h``, ``1mo``,
``2y``, ``5bd``, ``1d12h``, or ISO 8601 ``P1Y2M10DT2H30M``.

The short form is one or more ``<integer><unit>`` parts, units in this
order, each at most once: ``y`` years, ``mo`` months, ``w`` weeks, ``d``
days, ``bd`` working days, ``h`` hours, ``m`` minutes, ``s`` seconds (``d``
and ``bd`` not both). The ISO 8601 form is ``P[nY][nM][nW][nD][T[nH][nM][nS]]``
with integers. A duration must be longer than zero and at most 100 years.

What the units mean (``flowctl.engine.calendars.add_duration`` applies them):

- ``y`` and ``mo`` are calendar months (a year is 12): the same day of the
  month and time of day, months later, in the process calendar's time zone;
  a day the month does not have becomes its last day (Jan 31 + 1mo = Feb 28,
  or Feb 29 in a leap year).
- ``w``, ``d``, ``h``, ``m``, ``s`` are fixed lengths of time (a day is 24
  hours); counted in working time on an SLA with ``business_hours: true``.
- ``bd`` is working days of the process calendar: the same time of day on the
  n-th working day after (a start outside working hours counts from the next
  working moment).
"""

from __future__ import annotations

import re
from datetime import timedelta

from msgspec import Struct

_PART = re.compile(r"(\d{1,6})(mo|bd|[ywdhms])")
_UNITS = ("y", "mo", "w", "d", "bd", "h", "m", "s")
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_ISO = re.compile(
    r"P(?:(?P<y>\d{1,6})Y)?(?:(?P<mo>\d{1,6})M)?(?:(?P<w>\d{1,6})W)?(?:(?P<d>\d{1,6})D)?"
    r"(?:T(?=\d)(?:(?P<h>\d{1,6})H)?(?:(?P<m>\d{1,6})M)?(?:(?P<s>\d{1,6})S)?)?"
)
MAX_DAYS = 36525  # 100 years: longer is a mistake, and would leave the calendar
SYNTAX = (
    "an integer and a unit, such as 30m, 24h, 5d, 5bd, 2w, 1mo, 2y or 1d12h"
    " (units: y mo w d bd h m s), or ISO 8601 such as P1M or P1Y2M10DT2H30M"
)


class DurationError(ValueError):
    pass


class Duration(Struct, frozen=True):
    """A parsed duration: calendar months, working days and a fixed length."""

    text: str
    months: int = 0  # years * 12 + months
    business_days: int = 0
    seconds: int = 0  # weeks, days (24 h), hours, minutes, seconds
    weeks: int = 0  # as written (also counted in ``seconds``)
    days: int = 0  # as written, 24-hour days (also counted in ``seconds``)

    @property
    def fixed(self) -> timedelta:
        """The fixed-length part (``w d h m s``)."""
        return timedelta(seconds=self.seconds)

    @property
    def uses_days(self) -> bool:
        """Whether it is written with 24-hour days or weeks (``d``, ``w``, ``PnD``, ``PnW``)."""
        return bool(self.weeks or self.days)

    def approx(self) -> timedelta:
        """About how long it is, for comparing durations: a month is 30.44
        days, a working day 1.4 days (5 in a week)."""
        days = self.months * 30.436875 + self.business_days * 1.4
        return timedelta(days=days, seconds=self.seconds)


def parse_duration(text: str) -> Duration:
    """``"1mo2d"`` -> ``Duration(months=1, seconds=172800)``; raises DurationError."""
    if not isinstance(text, str) or not text:
        raise DurationError(f"{text!r} is not a duration: expected {SYNTAX}")
    parts = _iso(text) if text.startswith("P") else _short(text)
    if parts is None:
        raise DurationError(f"{text!r} is not a duration: expected {SYNTAX}")
    if "d" in parts and "bd" in parts:
        raise DurationError(
            f"{text!r} mixes d (24-hour days) and bd (working days); use one of them")
    months = parts.get("y", 0) * 12 + parts.get("mo", 0)
    seconds = sum(n * _SECONDS[u] for u, n in parts.items() if u in _SECONDS)
    business_days = parts.get("bd", 0)
    if months == 0 and seconds == 0 and business_days == 0:
        raise DurationError(f"{text!r} is zero: a duration must be longer than zero")
    dur = Duration(text, months, business_days, seconds, parts.get("w", 0), parts.get("d", 0))
    if dur.approx() > timedelta(days=MAX_DAYS):
        raise DurationError(f"{text!r} is longer than 100 years, the longest duration allowed")
    return dur


def _short(text: str) -> dict[str, int] | None:
    pos = 0
    last = -1
    parts: dict[str, int] = {}
    for m in _PART.finditer(text):
        unit_index = _UNITS.index(m.group(2))
        if m.start() != pos or unit_index <= last:
            return None
        parts[m.group(2)] = int(m.group(1))
        last = unit_index
        pos = m.end()
    return parts if pos == len(text) and parts else None


def _iso(text: str) -> dict[str, int] | None:
    m = _ISO.fullmatch(text)
    if m is None or text in ("P", "PT"):
        return None
    return {unit: int(value) for unit, value in m.groupdict().items() if value is not None}


class DateLimit(Struct, frozen=True):
    """A date field's ``minimum`` or ``maximum``: ``today`` or ``now`` moved by
    ``duration`` (``sign`` -1 or 1), or a fixed ``moment`` (ISO date or date-time)."""

    text: str
    base: str  # "today" | "now" | "fixed"
    sign: int = 1
    duration: Duration | None = None
    moment: str | None = None  # base "fixed": the ISO text


_LIMIT = re.compile(r"(today|now)(?:([+-])(.+))?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?)?")
LIMIT_SYNTAX = (
    "today or now, optionally plus or minus a duration without working days (today+1y,"
    " today-30d, now+2h), or a date such as \"2027-01-01\""
)


def parse_date_limit(text: str) -> DateLimit:
    """``"today+1y"`` -> ``DateLimit("today+1y", "today", 1, <1y>)``; raises DurationError."""
    m = _LIMIT.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        if isinstance(text, str) and _ISO_DATE.fullmatch(text) and _valid_iso(text):
            return DateLimit(text, "fixed", moment=text)
        raise DurationError(f"{text!r} is not a date limit: expected {LIMIT_SYNTAX}")
    base, sign, rest = m.groups()
    if sign is None:
        return DateLimit(text, base)
    try:
        dur = parse_duration(rest)
    except DurationError as exc:
        raise DurationError(f"{text!r} is not a date limit: {exc}") from None
    if dur.business_days:
        raise DurationError(
            f"{text!r} is not a date limit: working days (bd) are not counted in date limits;"
            " use d, w, mo or y")
    return DateLimit(text, base, -1 if sign == "-" else 1, dur)


def _valid_iso(text: str) -> bool:
    from datetime import date, datetime

    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True

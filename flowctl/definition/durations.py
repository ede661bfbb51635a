"""Durations in definitions: ``30d``, ``24h``, ``1d12h``, ``90m``, ``2w``.

A duration is one or more ``<integer><unit>`` parts, units in descending
order, each at most once: ``w`` weeks, ``d`` days, ``h`` hours, ``m``
minutes, ``s`` seconds. It must be longer than zero.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d{1,6})([wdhms])")
_UNITS = "wdhms"
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
SYNTAX = "an integer and a unit, such as 30m, 24h, 5d, 2w or 1d12h (units: w d h m s)"


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` -> ``timedelta(days=1, hours=12)``; raises DurationError."""
    if not isinstance(text, str) or not text:
        raise DurationError(f"{text!r} is not a duration: expected {SYNTAX}")
    pos = 0
    last = -1
    total = 0
    for m in _PART.finditer(text):
        unit_index = _UNITS.index(m.group(2))
        if m.start() != pos or unit_index <= last:
            break
        total += int(m.group(1)) * _SECONDS[m.group(2)]
        last = unit_index
        pos = m.end()
    if pos != len(text):
        raise DurationError(f"{text!r} is not a duration: expected {SYNTAX}")
    if total == 0:
        raise DurationError(f"{text!r} is zero: a duration must be longer than zero")
    return timedelta(seconds=total)

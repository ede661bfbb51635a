"""What a string field's ``format`` and ``pattern`` accept (docs/format.md,
"Patterns and formats"): the engine checks typed and set values with them,
the linter checks literal defaults and ``set:`` values.

The formats are deliberately simple, as a form would check: a typo is caught,
deliverability is not (that is what sending a message is for).

    >>> format_ok("phone", "+7 495 123-45-67"), format_ok("phone", "not a phone")
    (True, False)
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[0-9 ()./-]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
FORMATS = {
    "email": "an e-mail address such as name@example.com",
    "phone": "a phone number: 7 to 15 digits, an optional leading +, spaces, dashes, dots"
             " and parentheses, as in +7 495 123-45-67",
    "url": "a web address starting with http:// or https://, such as https://example.com/page",
    "date": "a date written YYYY-MM-DD",
}


def format_ok(fmt: str, value: str) -> bool:
    """Whether ``value`` has the form ``fmt`` (one of ``FORMATS``) names."""
    if fmt == "email":
        return _EMAIL.fullmatch(value) is not None
    if fmt == "phone":
        digits = sum(c.isdigit() for c in value)
        return _PHONE.fullmatch(value) is not None and 7 <= digits <= 15
    if fmt == "url":
        from urllib.parse import urlsplit  # only for a url field

        try:
            parts = urlsplit(value)
        except ValueError:
            return False
        return (parts.scheme in ("http", "https") and bool(parts.hostname)
                and not any(c.isspace() for c in value))
    try:
        return _DATE.fullmatch(value) is not None and bool(date.fromisoformat(value))
    except ValueError:
        return False


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def pattern_ok(pattern: str, value: str) -> bool:
    """Whether ``pattern`` matches the whole of ``value``; raises ``re.error``
    for a pattern that does not compile (the linter reports it: FL254)."""
    return _compiled(pattern).fullmatch(value) is not None

"""Text as a terminal shows it: how many columns it takes, and escaping what
must not reach a terminal raw.

The one width function of the package: tables (plain and rich), lint
carets and diagram labels all measure with :func:`display_width`, which
agrees with ``rich.cells.cell_len`` (the measure rich's tables use): wide
and fullwidth East Asian characters take two columns, combining marks,
format characters and control characters none, a zero-width joiner glues
the next character to the previous one, and an emoji variation selector
widens a narrow emoji to two.

A leaf module: the standard library only, no flowctl imports.
"""

from __future__ import annotations

import re
import unicodedata

_ZWJ = "\u200d"  # zero-width joiner: the next character joins the previous one
_VS16 = "\ufe0f"  # variation selector 16: the previous character as an emoji

_KEYCAP_BASES = frozenset("#*0123456789")
# Characters that must not reach a terminal raw: they could move the cursor,
# recolour the log or reorder the displayed line ("Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_CATEGORIES = frozenset(("Mn", "Me", "Mc", "Cc", "Cf", "Zl", "Zp"))
# (first, last, columns) where the category and East Asian width alone are
# wrong: the vowels and finals of a Hangul syllable and the Hangul fillers (0),
# emoji skin tones (0, they join the emoji before), marks written before a
# number (1), and symbols Unicode 16 made wide (2).
_RANGES = (
    (0x0600, 0x0605, 1), (0x06DD, 0x06DD, 1), (0x070F, 0x070F, 1), (0x0890, 0x0891, 1),
    (0x08E2, 0x08E2, 1), (0x1160, 0x11FF, 0), (0x2630, 0x2637, 2), (0x268A, 0x268F, 2),
    (0x3164, 0x3164, 0), (0x4DC0, 0x4DFF, 2), (0xD7B0, 0xD7FF, 0), (0xFFA0, 0xFFA0, 0),
    (0x110BD, 0x110BD, 1), (0x110CD, 0x110CD, 1), (0x1D300, 0x1D356, 2),
    (0x1D360, 0x1D376, 2), (0x1F3FB, 0x1F3FF, 0),
)


def char_width(ch: str) -> int:
    """Columns one character takes: 2 wide/fullwidth, 0 combining/format/control, else 1."""
    code = ord(ch)
    if 0x20 <= code < 0x7F:
        return 1
    for first, last, columns in _RANGES:
        if first <= code <= last:
            return columns
    if unicodedata.category(ch) in _ZERO_CATEGORIES and ch != "\xad":  # soft hyphen: 1
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _emoji_with_vs16(ch: str) -> bool:
    """Whether a variation selector 16 after ``ch`` makes it a two-column emoji:
    the keycap bases and narrow non-ASCII symbols (rich's table lists the exact
    emoji; text presentation selectors after other characters are rare)."""
    return ch in _KEYCAP_BASES or (not ch.isascii() and char_width(ch) == 1)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (as ``rich.cells.cell_len`` counts them)."""
    if text.isascii() and text.isprintable():
        return len(text)
    if _ZWJ not in text and _VS16 not in text:
        return sum(map(char_width, text))
    total = 0
    last = ""  # the last character that took columns, which a VS16 may widen
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == _ZWJ:
            i += 2  # the joined character adds nothing
            continue
        if ch == _VS16:
            if last and _emoji_with_vs16(last):
                total += 1
            last = ""
        elif width := char_width(ch):
            total += width
            last = ch
        i += 1
    return total


def is_unsafe(ch: str) -> bool:
    """A control character (other than tab), a bidi override, or a lone surrogate
    (a byte of a command line or file name that is not UTF-8, which no
    terminal can be sent as it is)."""
    category = unicodedata.category(ch)
    return (ch != "\t" and category == "Cc") or ch in _BIDI or category == "Cs"


# what ``is_unsafe`` reports, as one search: C0 but tab, DEL, C1, the bidi controls
_UNSAFE_RE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(_BIDI)) + "]"
)


def find_unsafe(text: str, *, allow: str = "\n") -> int:
    """Index of the first character of ``text`` that ``is_unsafe`` reports, other
    than those in ``allow`` (a newline by default), or -1 if there is none."""
    if text.isprintable():  # every unsafe character is unprintable: the common case, in C
        return -1
    for m in _UNSAFE_RE.finditer(text):
        if m.group() not in allow:
            return m.start()
    return -1


def json_safe(text: str) -> str:
    """Compact JSON text with every character ``is_unsafe`` reports written as a
    ``\\uXXXX`` escape: the same JSON value, nothing raw for a terminal (JSON
    escapes C0 controls itself, but not C1, bidi controls or lone surrogates).
    Not for indented JSON: its line breaks would be escaped too."""
    if text.isprintable():
        return text
    return _UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def describe_char(ch: str) -> str:
    """``U+001B (a control character)``, ``U+202E (a bidi override)``: for messages."""
    if ch in _BIDI:
        kind = "a bidi control"
    elif "\ud800" <= ch <= "\udfff":
        kind = "a byte that is not UTF-8"
    else:
        kind = "a control character"
    return f"U+{ord(ch):04X} ({kind})"


def escape_char(ch: str) -> str:
    """``\\x1b``, ``\\u202e``: how an unsafe character is shown."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(text: str, *, keep: str = "\n") -> str:
    """``text`` with control and bidi characters escaped (``\\x1b``), except ``keep``."""
    if text.isprintable():
        return text
    return "".join(escape_char(c) if is_unsafe(c) and c not in keep else c for c in text)

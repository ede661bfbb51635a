"""Label text helpers: wrapping by display width (CJK counts double; the
width is :func:`flowctl.text.display_width`, the package's one measure)."""

from __future__ import annotations

from flowctl.text import char_width, display_width

TITLE_WIDTH = 26  # columns for a stage name line
DECISION_WIDTH = 16  # columns for a decision's name (a diamond)
DETAIL_WIDTH = 44  # columns for a detail line (assignee, SLA...)
EDGE_WIDTH = 26  # columns for an edge label line


def _split_long(word: str, width: int) -> list[str]:
    """Cut a word wider than ``width`` into pieces (CJK text has no spaces)."""
    pieces: list[str] = []
    current = ""
    used = 0
    for ch in word:
        w = char_width(ch)
        if current and used + w > width:
            pieces.append(current)
            current, used = "", 0
        current += ch
        used += w
    if current:
        pieces.append(current)
    return pieces


QUOTES = "\"'"


def _closing_quote(text: str, i: int) -> int:
    """The index of the quote closing the one at ``i`` (backslash escapes
    skipped), or -1 when it is not closed."""
    quote = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return j
        j += 1
    return -1


def _words(text: str) -> list[tuple[str, bool]]:
    """The words of ``text`` split at whitespace outside quoted values, each with
    whether it holds a quoted value (``"key account"`` is one word, spaces kept).
    A quote opens a value only where a word or an operand starts (not the
    apostrophe of ``customer's``) and when it is closed."""
    words: list[tuple[str, bool]] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            if current:
                words.append(("".join(current), quoted))
                current, quoted = [], False
            i += 1
            continue
        if ch in QUOTES and (not current or not current[-1][-1:].isalnum()):
            end = _closing_quote(text, i)
            if end > 0:
                current.append(text[i:end + 1])
                quoted = True
                i = end + 1
                continue
        current.append(ch)
        i += 1
    if current:
        words.append(("".join(current), quoted))
    return words


def wrap(text: str, width: int) -> tuple[str, ...]:
    """Greedy word wrap to ``width`` display columns; whitespace collapses
    (outside quoted values).

    Lines break only at spaces outside quoted values: ``record.level == "key
    account"`` keeps ``"key account"`` on one line. Words wider than a line are
    cut between characters (CJK text has no spaces), except a word holding a
    quoted value, which stays whole on a line of its own; an empty text gives
    no lines.
    """
    lines: list[str] = []
    current = ""
    for word, quoted in _words(text):
        too_wide = display_width(word) > width and not quoted
        for piece in _split_long(word, width) if too_wide else [word]:
            candidate = f"{current} {piece}" if current else piece
            if current and display_width(candidate) > width:
                lines.append(current)
                current = piece
            else:
                current = candidate
    if current:
        lines.append(current)
    return tuple(lines)


def wrap_all(texts: list[str], width: int) -> tuple[str, ...]:
    """Each text wrapped on its own, lines concatenated."""
    out: list[str] = []
    for t in texts:
        out.extend(wrap(t, width))
    return tuple(out)

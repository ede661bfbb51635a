"""Label text helpers: wrapping by display width (CJK counts double)."""

from __future__ import annotations

import unicodedata

TITLE_WIDTH = 26  # columns for a stage name line
DECISION_WIDTH = 16  # columns for a decision's name (a diamond)
DETAIL_WIDTH = 44  # columns for a detail line (assignee, SLA...)
EDGE_WIDTH = 26  # columns for an edge label line


def char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(c) for c in text)


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


def wrap(text: str, width: int) -> tuple[str, ...]:
    """Greedy word wrap to ``width`` display columns; whitespace collapses.

    Words wider than a line are cut between characters; an empty text gives
    no lines.
    """
    lines: list[str] = []
    current = ""
    for word in text.split():
        for piece in _split_long(word, width) if display_width(word) > width else [word]:
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

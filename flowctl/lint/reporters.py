"""Lint reports: one ``LintResult`` rendered as text, JSON, GitHub or SARIF.

Every renderer is a pure function from a result to a string (the command
line decides where it goes), and the same result always renders to the same
bytes.

- ``text``: ``path:line:col: CODE message`` (``CODE [warning] message`` for
  warnings), the source line and a caret under the column, then a summary.
- ``json``: a versioned document for scripts (see ``json_document``).
- ``github``: GitHub Actions workflow commands, shown as annotations.
- ``sarif``: SARIF 2.1.0 for GitHub code scanning and other viewers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from flowctl import __version__
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.errors import UsageError
from flowctl.text import char_width, display_width, escape_char, is_unsafe, sanitize

if TYPE_CHECKING:  # the type only: reporting needs none of the lint run's machinery
    from flowctl.lint.run import LintResult

FORMATS = ("text", "json", "github", "sarif")
JSON_REPORT_VERSION = 1
HOMEPAGE = "https://github.com/flowctl/flowctl"
RULES_DOC = "docs/rules.md"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
TAB_SIZE = 4

# The line breaks the YAML reader counts (ruamel: \n, \r\n, lone \r, NEL,
# LS, PS), so that snippet line N is the line the loader called N.
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


# -- shared helpers ----------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ordered(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: (d.file, d.line, d.col, d.code, d.message))


def summary_line(result: LintResult) -> str:
    """One sentence for the end of a report: stable wording."""
    checked = len(result.files)
    if not result.diagnostics:
        if checked == 0:
            return "No YAML files found to lint."
        return f"All {_plural(checked, 'file')} passed."
    with_problems = len({d.file for d in result.diagnostics})
    return (
        f"Found {_plural(result.errors, 'error')} and {_plural(result.warnings, 'warning')}"
        f" in {_plural(with_problems, 'file')} ({checked} checked)."
    )


def _display(ch: str, cell: int) -> str:
    """How ``ch`` is shown when the line so far takes ``cell`` cells."""
    if ch == "\t":
        return " " * (TAB_SIZE - cell % TAB_SIZE)
    if is_unsafe(ch):
        return escape_char(ch)
    return ch


SNIPPET_WIDTH = 120  # cells of a source line shown under a diagnostic; longer lines are cut
CUT = "\u2026"  # "…" where a shown line was cut


def _cells_at_most(ch: str) -> int:
    """The most cells ``ch`` can take when shown (a tab: a whole tab stop)."""
    if ch == "\t":
        return TAB_SIZE
    return len(escape_char(ch)) if is_unsafe(ch) else char_width(ch)


def _fits(line: str, width: int) -> bool:
    if line.isascii() and line.isprintable():
        return len(line) <= width
    used = 0
    for ch in line:
        used += _cells_at_most(ch)
        if used > width:
            return False
    return True


def _window(line: str, start: int, stop: int, width: int) -> tuple[int, int]:
    """The code points ``[first, last)`` of ``line`` to show within ``width`` cells:
    the whole line when it fits; else the marked range ``[start, stop)`` (at
    least its first character) with as much context on each side as fits, two
    cells kept for the cut marks."""
    if _fits(line, width):
        return 0, len(line)
    budget = width - 2 * display_width(CUT)
    first = last = min(start, len(line))
    used = 0
    while last < len(line) and (last == first or last < stop):
        need = _cells_at_most(line[last])
        if last > first and used + need > budget:
            break
        used, last = used + need, last + 1
    grew = True
    while grew:
        grew = False
        if first > 0 and used + _cells_at_most(line[first - 1]) <= budget:
            first, used, grew = first - 1, used + _cells_at_most(line[first - 1]), True
        if last < len(line) and used + _cells_at_most(line[last]) <= budget:
            last, used, grew = last + 1, used + _cells_at_most(line[last]), True
    return first, last


def caret_lines(
    line: str, col: int, end_col: int | None = None, *, width: int = SNIPPET_WIDTH
) -> tuple[str, str]:
    """The source line as shown, and the marker line under it.

    ``col`` is the 1-based code-point column; ``end_col`` (exclusive, same
    line) widens the marker over a range. Tabs become spaces, control
    characters are escaped, and wide characters count two cells, so the
    marker sits under the right character in a terminal. A line wider than
    ``width`` cells is shown as a window around the column, its cut ends
    marked with "…".
    """
    start = max(col, 1) - 1
    stop = end_col - 1 if end_col is not None and end_col - 1 > start else start + 1
    first, last = _window(line, start, stop, width)
    shown: list[str] = [CUT] if first > 0 else []
    cell = display_width(CUT) if first > 0 else 0
    lead = marked = 0
    for i in range(first, last):
        piece = _display(line[i], cell)
        if i == start:
            lead = cell
        if start <= i < stop:
            marked += display_width(piece)
        shown.append(piece)
        cell += display_width(piece)
    if start >= last:
        lead = cell
    if last < len(line):
        shown.append(CUT)
    return "".join(shown), " " * lead + "^" * max(marked, 1)


def source_lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)


def _posix(path: str) -> str:
    return path.replace(os.sep, "/") if os.sep != "/" else path


def relative_to_root(path: str, root: str | None = None) -> str | None:
    """``path`` relative to ``root`` (default: cwd) with forward slashes; None if outside."""
    root = os.path.abspath(root if root is not None else os.getcwd())
    absolute = os.path.abspath(os.path.join(root, path))
    try:
        relative = os.path.relpath(absolute, root)
    except ValueError:  # another drive on Windows
        return None
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return _posix(relative)


# -- text --------------------------------------------------------------------


class Palette(Struct, frozen=True):
    """How the text report paints each part: plain callables from text to
    text. The command line builds the coloured one (``flowctl.cli.output``,
    the one module that imports rich); this module knows only :data:`PLAIN`."""

    location: Callable[[str], str]
    error: Callable[[str], str]
    warning: Callable[[str], str]
    gutter: Callable[[str], str]
    good: Callable[[str], str]


def _plain(s: str) -> str:
    return s


PLAIN = Palette(_plain, _plain, _plain, _plain, _plain)


def _headline(d: Diagnostic, p: Palette) -> str:
    where = p.location(f"{sanitize(d.file, keep='')}:{d.line}:{d.col}:")
    message = sanitize(d.message).replace("\n", "\n    ")
    if d.severity is Severity.WARNING:
        return f"{where} {p.warning(d.code)} {p.warning('[warning]')} {message}"
    return f"{where} {p.error(d.code)} {message}"


def _snippet(d: Diagnostic, lines: list[str] | None, p: Palette) -> list[str]:
    if lines is None or not 1 <= d.line <= len(lines):
        return []
    end_col = d.end_col if d.end_line in (None, d.line) else None
    shown, marker = caret_lines(lines[d.line - 1], d.col, end_col)
    number = str(d.line)
    paint = p.warning if d.severity is Severity.WARNING else p.error
    carets = marker.lstrip(" ")
    lead = marker[: len(marker) - len(carets)]
    return [
        f"{p.gutter(number + ' |')} {shown}".rstrip(),
        f"{p.gutter(' ' * len(number) + ' |')} {lead}{paint(carets)}",
    ]


def render_text(result: LintResult, *, palette: Palette = PLAIN) -> str:
    """ruff/actionlint style: location, code, message, snippet, caret, summary,
    painted by ``palette``."""
    p = palette
    cache: dict[str, list[str] | None] = {}
    out: list[str] = []
    for d in _ordered(result.diagnostics):
        if d.file not in cache:
            text = result.sources.get(d.file)
            cache[d.file] = None if text is None else source_lines(text)
        out.append(_headline(d, p))
        out.extend(_snippet(d, cache[d.file], p))
        out.append("")
    summary = summary_line(result)
    if result.errors:
        summary = p.error(summary)
    elif result.warnings:
        summary = p.warning(summary)
    else:
        summary = p.good(summary)
    out.append(summary)
    return "\n".join(out) + "\n"


# -- json --------------------------------------------------------------------


def json_document(result: LintResult) -> dict[str, Any]:
    """``{"version": 1, "files", "diagnostics", "summary"}``, keys in this order."""
    return {
        "version": JSON_REPORT_VERSION,
        "files": list(result.files),
        "diagnostics": [
            {
                "file": d.file,
                "line": d.line,
                "col": d.col,
                "end_line": d.end_line,
                "end_col": d.end_col,
                "code": d.code,
                "severity": d.severity.value,
                "message": d.message,
            }
            for d in _ordered(result.diagnostics)
        ],
        "summary": {
            "files": len(result.files),
            "files_with_problems": len({d.file for d in result.diagnostics}),
            "errors": result.errors,
            "warnings": result.warnings,
        },
    }


def render_json(result: LintResult) -> str:
    return json.dumps(json_document(result), indent=2, ensure_ascii=False) + "\n"


# -- github ------------------------------------------------------------------


def github_escape_data(s: str) -> str:
    """A workflow command's message, escaped as actions/toolkit ``escapeData``."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_escape_property(s: str) -> str:
    """A workflow command property, escaped as actions/toolkit ``escapeProperty``."""
    return github_escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _github_command(d: Diagnostic, root: str | None) -> str:
    path = relative_to_root(d.file, root) or _posix(d.file)
    props = [("file", sanitize(path, keep="")), ("line", str(d.line)), ("col", str(d.col))]
    if d.end_line is not None:
        props.append(("endLine", str(d.end_line)))
    if d.end_col is not None:
        props.append(("endColumn", str(d.end_col)))
    props.append(("title", d.code))
    joined = ",".join(f"{k}={github_escape_property(v)}" for k, v in props)
    kind = "warning" if d.severity is Severity.WARNING else "error"
    message = github_escape_data(sanitize(d.message, keep="\n\r"))
    return f"::{kind} {joined}::{message}"


def render_github(result: LintResult, *, root: str | None = None) -> str:
    """One ``::error``/``::warning`` command per diagnostic, then the summary.

    Paths are relative to ``root`` (default: cwd, the repository root in a
    workflow), as GitHub expects.
    """
    lines = [_github_command(d, root) for d in _ordered(result.diagnostics)]
    lines.append(github_escape_data(summary_line(result)))
    return "\n".join(lines) + "\n"


# -- sarif -------------------------------------------------------------------


def _rule_registry() -> dict[str, Any]:
    """``flowctl.lint.codes.RULES`` when it exists; empty otherwise."""
    import importlib

    try:
        module = importlib.import_module("flowctl.lint.codes")
    except ModuleNotFoundError as exc:
        if exc.name != "flowctl.lint.codes":
            raise
        return {}
    rules = getattr(module, "RULES", {})
    return dict(rules) if isinstance(rules, dict) else {}


def _level(severity: Any) -> str:
    value = getattr(severity, "value", severity)
    return "warning" if value == Severity.WARNING.value else "error"


def help_uri(code: str) -> str:
    return f"{HOMEPAGE}/blob/main/{RULES_DOC}#{code.lower()}"


def _sarif_rule(code: str, rule: Any, seen_level: str) -> dict[str, Any]:
    summary = getattr(rule, "summary", None) or code
    entry: dict[str, Any] = {
        "id": code,
        "name": getattr(rule, "name", None) or code,
        "shortDescription": {"text": summary},
    }
    description = getattr(rule, "description", None)
    if description:
        entry["fullDescription"] = {"text": description}
    entry["helpUri"] = help_uri(code)
    severity = getattr(rule, "severity", None)
    level = _level(severity) if severity is not None else seen_level
    entry["defaultConfiguration"] = {"level": level}
    return entry


def _artifact_location(path: str, root: str) -> dict[str, str]:
    from pathlib import Path
    from urllib.parse import quote

    relative = relative_to_root(path, root)
    if relative is None:
        return {"uri": Path(os.path.abspath(os.path.join(root, path))).as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}


def _sarif_result(d: Diagnostic, index: int, root: str) -> dict[str, Any]:
    region: dict[str, int] = {"startLine": max(d.line, 1), "startColumn": max(d.col, 1)}
    if d.end_line is not None and d.end_line >= region["startLine"]:
        region["endLine"] = d.end_line
    if d.end_col is not None and d.end_col >= 1:
        region["endColumn"] = d.end_col
    return {
        "ruleId": d.code,
        "ruleIndex": index,
        "level": _level(d.severity),
        "message": {"text": d.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(d.file, root),
                    "region": region,
                }
            }
        ],
    }


def sarif_document(result: LintResult, *, root: str | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; file URIs relative to ``root`` (default: cwd).

    Columns are code points (``columnKind: unicodeCodePoints``), as in
    ``Diagnostic.col``.
    """
    from pathlib import Path

    root = os.path.abspath(root if root is not None else os.getcwd())
    diags = _ordered(result.diagnostics)
    registry = _rule_registry()
    first_level: dict[str, str] = {}
    for d in diags:
        first_level.setdefault(d.code, _level(d.severity))
    codes = sorted(first_level)
    index = {code: i for i, code in enumerate(codes)}
    root_uri = Path(root).as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "flowctl",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": [_sarif_rule(c, registry.get(c), first_level[c]) for c in codes],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
                "columnKind": "unicodeCodePoints",
                "results": [_sarif_result(d, index[d.code], root) for d in diags],
            }
        ],
    }


def render_sarif(result: LintResult, *, root: str | None = None) -> str:
    return json.dumps(sarif_document(result, root=root), indent=2, ensure_ascii=False) + "\n"


# -- dispatch ----------------------------------------------------------------


def render(result: LintResult, fmt: str, *, palette: Palette = PLAIN) -> str:
    """The report in ``fmt`` (one of ``FORMATS``); ``palette`` paints the text one."""
    if fmt == "text":
        return render_text(result, palette=palette)
    if fmt == "json":
        return render_json(result)
    if fmt == "github":
        return render_github(result)
    if fmt == "sarif":
        return render_sarif(result)
    raise UsageError(
        f"unknown report format '{fmt}': the formats are {', '.join(FORMATS)}",
        hint="pass --format text, json, github or sarif",
    )


def use_color(choice: str, *, isatty: bool, environ: dict[str, str] | None = None) -> bool:
    """``always``/``never``, or ``auto``: a terminal, and ``NO_COLOR`` unset or empty."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    env = os.environ if environ is None else environ
    return isatty and not env.get("NO_COLOR")

"""What every command shares: domain errors become a message and an exit code.

    from flowctl.cli.output import handle_errors

    @app.command()
    def start(...) -> None:
        with handle_errors():
            ...  # call flowctl.api; raise SystemExit(code) for a chosen code

Exit codes: a ``FlowctlError`` exits with its ``exit_code`` (1, or 2 for a
usage error) after ``flowctl: error: <message>`` and an optional
``flowctl: hint: <hint>`` on stderr; any other exception is an internal
error: one line on stderr and exit 3, or the full traceback when the
environment has ``FLOWCTL_DEBUG=1``.

This is the one module that imports ``rich`` (an import-linter contract
keeps it so), and it imports it only inside the functions that draw on a
terminal: a table, a progress bar, colour. ``rich.console`` alone costs
~60 ms to import, every command imports this module, and output that is
piped or redirected is plain text that needs none of it.

- Colour only on a terminal, never with ``--no-color`` or ``NO_COLOR``.
- Tables (:func:`print_table`): a rich table fitted to the terminal's width
  on a terminal; piped, plain lines of columns padded with spaces, the same
  bytes every time, for scripts.
- Progress (:func:`progress`) only on stderr, only when it is a terminal.
- Every width is measured by :func:`flowctl.text.display_width` (CJK takes
  two columns), which agrees with rich's own measure.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple, NoReturn, Protocol

if TYPE_CHECKING:
    import threading

    from rich import progress as rich_progress
    from rich import table as rich_table
    from rich.console import Console

from flowctl.errors import FlowctlError
from flowctl.text import display_width, sanitize

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
DEBUG_ENV = "FLOWCTL_DEBUG"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, *, hint: str | None = None, code: int = 1) -> NoReturn:
    """Print ``flowctl: error: ...`` (and the hint) on stderr and exit with ``code``;
    control characters in them (from what was typed) are shown escaped."""
    print(f"flowctl: error: {sanitize(message)}", file=sys.stderr)
    if hint:
        print(f"flowctl: hint: {sanitize(hint)}", file=sys.stderr)
    raise SystemExit(code)


_color_disabled = False


def disable_color(disabled: bool = True) -> None:
    """``--no-color``: plain text even on a terminal (set for each command line)."""
    global _color_disabled
    _color_disabled = disabled


def color_disabled() -> bool:
    """``--no-color`` was given, or ``NO_COLOR`` is set (and not empty)."""
    return _color_disabled or os.environ.get("NO_COLOR", "") != ""


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is a terminal (tests replace this to pretend it is)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def color_enabled(stream: object = None) -> bool:
    """Colour only on a terminal, never with ``--no-color`` or ``NO_COLOR`` set."""
    return not color_disabled() and is_terminal(stream if stream is not None else sys.stdout)


def painter(style: str) -> Callable[[str], str]:
    """A function that paints text in a rich style (``"bold red"``) with ANSI
    codes of the 16 standard colours: for reports that are strings, such as
    lint's text report (``flowctl.cli.lint`` builds its palette from these)."""
    from rich.color import ColorSystem
    from rich.style import Style

    parsed = Style.parse(style)
    return lambda s: parsed.render(s, color_system=ColorSystem.STANDARD) if s else s


_consoles: dict[bool, tuple[object, bool, Console]] = {}


def console(*, err: bool = False) -> Console:
    """The rich console for standard output (or error), made on first use.

    It writes to the stream as it is now (tests swap ``sys.stdout``), is a
    terminal when :func:`is_terminal` says so, and has no colour system at
    all (so no escape code for colour or style) when colour is off.
    """
    stream = sys.stderr if err else sys.stdout
    terminal = is_terminal(stream)
    color = terminal and not color_disabled()
    cached = _consoles.get(err)
    if cached is not None and cached[0] is stream and cached[1] == color:
        return cached[2]
    from rich.console import Console

    made = Console(
        file=stream,
        force_terminal=terminal,
        color_system="auto" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
    )
    _consoles[err] = (stream, color, made)
    return made


def usage_error(message: str, usage: str | None, command_path: str) -> NoReturn:
    """A command line that typer refused: its usage line, then the error, exit 2."""
    if usage:
        print(usage, file=sys.stderr)
    fail(message, hint=f"see `{command_path} --help`", code=2)


def interrupted() -> NoReturn:
    print("flowctl: interrupted", file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


def echo(text: str = "", *, err: bool = False, end: str = "\n") -> None:
    """Print a line on standard output (or error), flushed, as a command's output."""
    print(text, end=end, file=sys.stderr if err else sys.stdout, flush=True)


def echo_bytes(data: bytes) -> None:
    """Write bytes as they are on standard output (a file's content), flushed."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _silence_stdout() -> None:
    """After a closed pipe (``flowctl lint | head``): no second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn ``FlowctlError`` and unexpected exceptions into a message and exit code."""
    try:
        yield
    except FlowctlError as exc:
        fail(exc.message, hint=exc.hint, code=exc.exit_code)
    except BrokenPipeError:
        _silence_stdout()
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:
        if debug_enabled():
            raise
        detail = _one_line(str(exc))
        what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        print(
            f"flowctl: internal error: {what} (this is a bug in flowctl; "
            f"set {DEBUG_ENV}=1 to see the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_INTERNAL) from None


# ------------------------------------------------------------------ tables

GAP = 2  # spaces between columns
PROSE_WIDTH = 16  # a prose column keeps this width while ids can still wrap at hyphens
# Where a word may break on a terminal: after a hyphen that a letter follows
# (``key-account-`` / ``filing-approval-1``; not inside ``2026-11-24``), and
# around a wide (CJK) character, as CJK text breaks between any two.
_WIDE = r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60]"
_BREAK = rf"(?<=-)(?=[^\W\d_])|(?<={_WIDE})(?=.)|(?<=.)(?={_WIDE})"


class Cell(NamedTuple):
    """A table cell. ``style``: how a terminal paints it (a rich style such
    as ``"bold red"``); ``shown``: what a terminal shows instead of ``text``
    (a time with a space, to wrap there). Plain output is ``text`` alone."""

    text: str
    style: str = ""
    shown: str | None = None


class Table(NamedTuple):
    """A listing: its column headers and rows of cells (strings or ``Cell``).
    ``prose``: the headers of columns of free text, which wrap first when the
    terminal is too narrow (ids and times keep their width longest)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str | Cell]]
    prose: Sequence[str] = ()


def _one_line_cell(text: str) -> str:
    """A cell that cannot drive the terminal or break the row: controls escaped,
    tabs as spaces."""
    return sanitize(text, keep="").replace("\t", " ")


def _plain_text(cell: str | Cell) -> str:
    return _one_line_cell(cell.text if isinstance(cell, Cell) else cell)


def _terminal_text(cell: str | Cell) -> str:
    if isinstance(cell, Cell):
        return _one_line_cell(cell.text if cell.shown is None else cell.shown)
    return _one_line_cell(cell)


def table_lines(table: Table) -> list[str]:
    """The plain table: columns padded to their widest cell (in display
    columns, so CJK lines up), two spaces apart, no trailing spaces."""
    grid = [list(table.headers), *([_plain_text(c) for c in row] for row in table.rows)]
    widths = [max(display_width(row[i]) for row in grid) for i in range(len(table.headers))]
    out = []
    for row in grid:
        cells = [c + " " * (w - display_width(c)) for c, w in zip(row, widths, strict=True)]
        out.append((" " * GAP).join(cells).rstrip())
    return out


def _pieces(word: str) -> list[str]:
    return re.split(_BREAK, word)  # compiled on first use: ~7 ms, only on a terminal


def _fold(piece: str, width: int) -> list[str]:
    """``piece`` cut between characters into lines of at most ``width`` columns
    (at least one character a line)."""
    lines: list[str] = []
    current = ""
    for ch in piece:
        if current and display_width(current + ch) > width:
            lines.append(current)
            current = ""
        current += ch
    return [*lines, current] if current else lines


def wrap_cell(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` display columns: broken between
    words, else after a hyphen inside an id, else between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        for i, piece in enumerate(_pieces(word)):
            joined = f"{current} {piece}" if current and i == 0 else current + piece
            if display_width(joined) <= width:
                current = joined
                continue
            if current:
                lines.append(current)
            *full, current = _fold(piece, width)
            lines.extend(full)
    return [*lines, current] if current or not lines else lines


def _longest_word(text: str, *, at_hyphens: bool) -> int:
    """The widest word of ``text`` (or piece of a word, ``at_hyphens``)."""
    words = text.split()
    if at_hyphens:
        words = [p for w in words for p in _pieces(w)]
    return max(map(display_width, words), default=0)


def fit_widths(natural: Sequence[int], floors: Sequence[Sequence[int]], room: int) -> list[int]:
    """Column widths that fit ``room`` columns in all (gaps excluded).

    Columns keep their ``natural`` width when all fit. Otherwise, for each
    list of ``floors`` in turn, the widest column that is above its floor
    gives up one column at a time, until the table fits.
    """
    widths = list(natural)
    for floor in floors:
        while sum(widths) > room:
            shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: (widths[i], -i))
            widths[widest] -= 1
    return widths


def column_widths(grid: Sequence[Sequence[str]], prose: Sequence[bool], room: int) -> list[int]:
    """Widths for the columns of ``grid`` (header row first) within ``room``.

    When the natural widths do not fit, cells wrap: first between words (a
    due time before its OVERDUE), then after the hyphens of ids and between
    CJK characters, and at last anywhere (down to eight columns, then to two:
    one wide character). Prose columns go first, but keep a comfortable
    width (``PROSE_WIDTH``) until ids have wrapped at their hyphens. Width a
    column does not use once wrapped goes back to the columns that were cut,
    prose first.
    """
    n = len(prose)
    natural = [max(display_width(row[i]) for row in grid) for i in range(n)]
    words = [max(_longest_word(row[i], at_hyphens=False) for row in grid) for i in range(n)]
    pieces = [max(_longest_word(row[i], at_hyphens=True) for row in grid) for i in range(n)]
    comfort = [max(w, PROSE_WIDTH) for w in words]
    steps = [  # (the floor of prose columns, the floor of the others)
        (comfort, natural), (comfort, words), (comfort, pieces), (words, pieces),
        (pieces, pieces), ([8] * n, pieces), ([8] * n, [8] * n), ([2] * n, [8] * n),
        ([2] * n, [2] * n),
    ]
    floors = [[min(natural[i], (p if prose[i] else o)[i]) for i in range(n)] for p, o in steps]
    widths = fit_widths(natural, floors, room)
    used = [max(display_width(line) for row in grid for line in wrap_cell(row[i], widths[i]))
            for i in range(n)]
    spare = room - sum(used)
    for i in sorted(range(n), key=lambda i: (not prose[i], i)):
        grow = min(spare, natural[i] - used[i])
        if grow > 0:
            used[i] += grow
            spare -= grow
    return used


def terminal_table(table: Table, width: int) -> rich_table.Table:
    """``table`` as a rich Table at most ``width`` terminal columns wide: its
    cells wrapped here (between words, after hyphens in ids), so that rich
    only draws them."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    grid = [list(table.headers), *([_terminal_text(c) for c in row] for row in table.rows)]
    prose = [h in table.prose for h in table.headers]
    room = max(width - GAP * (len(prose) - 1), len(prose))
    widths = column_widths(grid, prose, room)
    out = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                    padding=(0, GAP - 1, 0, 0), header_style="bold")
    for header, w in zip(table.headers, widths, strict=True):
        out.add_column("\n".join(wrap_cell(header, w)), width=w, overflow="fold")
    for row, texts in zip(table.rows, grid[1:], strict=True):
        out.add_row(*(
            Text("\n".join(wrap_cell(t, w)), style=c.style if isinstance(c, Cell) else "")
            for c, t, w in zip(row, texts, widths, strict=True)
        ))
    return out


def print_table(table: Table) -> None:
    """A table on standard output: rich, fitted to the width, on a terminal; else plain."""
    if not is_terminal(sys.stdout):
        echo("\n".join(table_lines(table)))
        return
    out = console()
    out.print(terminal_table(table, out.width))


# ---------------------------------------------------------------- progress

SHOW_AFTER = 2.0  # seconds of work before a bar appears
SHOW_AT_ONCE = 200  # items: work known to be this big shows its bar from the start
_REDRAW_EVERY = 0.05  # seconds: advance() hands its count to rich at most this often


class Progress(Protocol):
    """What :func:`progress` yields: call ``advance()`` as each item is done."""

    def advance(self, n: int = 1) -> None: ...


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass


_SILENT = _Silent()


class _Bar:
    """A rich progress bar on stderr that appears after ``SHOW_AFTER`` seconds
    (from a timer thread, so one slow item shows it too), or at once."""

    def __init__(self, total: int | None, description: str) -> None:
        self.total = total
        self.description = description
        import threading  # here: only a terminal's bar needs it

        self.completed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False
        self._drawn = 0.0
        self._task: rich_progress.TaskID | None = None
        self._rich: rich_progress.Progress | None = None  # once shown
        self._timer: threading.Timer | None = None

    def advance(self, n: int = 1) -> None:
        self.completed += n
        shown, task = self._rich, self._task
        if shown is not None and task is not None:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_EVERY:
                self._drawn = now
                shown.update(task, completed=self.completed)

    def show_later(self, delay: float) -> None:
        import threading

        self._timer = threading.Timer(delay, self.show)
        self._timer.daemon = True
        self._timer.start()

    def show(self) -> None:
        with self._lock:
            if self._closed or self._rich is not None:
                return
            from rich import progress as rp

            counted = self.total is not None
            columns: list[str | rp.ProgressColumn] = [
                rp.SpinnerColumn(),
                rp.TextColumn("{task.description}"),
                rp.BarColumn() if counted else rp.TextColumn("{task.completed} done"),
            ]
            if counted:
                columns.append(rp.MofNCompleteColumn())
            columns.append(_elapsed_column(self.started))
            err = console(err=True)
            # Lines the command prints meanwhile go above the bar: stderr's,
            # and stdout's when it is the terminal too (piped output is left
            # alone: it is not on the screen).
            bar = rp.Progress(
                *columns, console=err, transient=True,
                redirect_stdout=is_terminal(sys.stdout), redirect_stderr=True,
            )
            task = bar.add_task(self.description, total=self.total, completed=self.completed)
            bar.start()
            self._task = task
            self._rich = bar

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            shown = self._rich
            if shown is not None:
                shown.stop()
                self._rich = None


def _elapsed_column(started: float) -> rich_progress.ProgressColumn:
    """Time since the work began (rich's own column counts from when the bar appeared)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Elapsed(ProgressColumn):
        def render(self, task: rich_progress.Task) -> Text:
            seconds = int(time.monotonic() - started)
            return Text(f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                        style="progress.elapsed")

    return Elapsed()


@contextmanager
def progress(total: int | None, description: str, *, show: bool = True) -> Iterator[Progress]:
    """A progress bar on stderr for work of ``total`` items (``None``: unknown,
    a counter), for the ``with`` block; ``advance(n)`` as items are done.

    Nothing at all is printed unless stderr is a terminal (and ``show``).
    There, the bar appears once the work has taken ``SHOW_AFTER`` seconds,
    or at once for ``SHOW_AT_ONCE`` items or more, and is erased when the
    block ends. Lines printed meanwhile appear above it.
    """
    if not show or not is_terminal(sys.stderr):
        yield _SILENT
        return
    bar = _Bar(total, description)
    if total is not None and total >= SHOW_AT_ONCE:
        bar.show()
    else:
        bar.show_later(SHOW_AFTER)
    try:
        yield bar
    finally:
        bar.close()

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
- Progress (:func:`progress`) only on stderr, only when it is a terminal.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, Protocol

if TYPE_CHECKING:
    from rich import progress as rich_progress
    from rich.console import Console

from flowctl.errors import FlowctlError

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
DEBUG_ENV = "FLOWCTL_DEBUG"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, *, hint: str | None = None, code: int = 1) -> NoReturn:
    """Print ``flowctl: error: ...`` (and the hint) on stderr and exit with ``code``."""
    print(f"flowctl: error: {message}", file=sys.stderr)
    if hint:
        print(f"flowctl: hint: {hint}", file=sys.stderr)
    raise SystemExit(code)


_color_disabled = False


def disable_color() -> None:
    """``--no-color``: plain text even on a terminal."""
    global _color_disabled
    _color_disabled = True


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
def progress(total: int | None, description: str) -> Iterator[Progress]:
    """A progress bar on stderr for work of ``total`` items (``None``: unknown,
    a counter), for the ``with`` block; ``advance(n)`` as items are done.

    Nothing at all is printed unless stderr is a terminal. There, the bar
    appears once the work has taken ``SHOW_AFTER`` seconds, or at once for
    ``SHOW_AT_ONCE`` items or more, and is erased when the block ends.
    """
    if not is_terminal(sys.stderr):
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

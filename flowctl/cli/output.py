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
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

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


def color_enabled(stream: object = None) -> bool:
    """Colour only on a terminal, never with ``--no-color`` or ``NO_COLOR`` set."""
    if _color_disabled or os.environ.get("NO_COLOR", "") != "":
        return False
    isatty = getattr(stream if stream is not None else sys.stdout, "isatty", None)
    return bool(isatty and isatty())


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

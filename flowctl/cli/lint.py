"""``flowctl lint``: check definitions and report every problem at once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from flowctl.api import definitions
from flowctl.api import reports as report
from flowctl.api.definitions import LintResult
from flowctl.cli import output
from flowctl.cli.output import Progress, echo, handle_errors, progress
from flowctl.errors import UsageError


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


class ColorChoice(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


def lint(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="YAML files or folders (searched recursively). Default: processes/",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", "-f", help="Report format.", case_sensitive=False),
    ] = ReportFormat.text,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to FILE instead of standard output.",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            metavar="PATH",
            help="The org directory. Default: an org.yaml among or beside the linted files.",
        ),
    ] = None,
    color: Annotated[
        ColorChoice,
        typer.Option(
            "--color",
            help="Colour the text report: auto (a terminal, and NO_COLOR unset), always, never.",
            case_sensitive=False,
        ),
    ] = ColorChoice.auto,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither read nor write the lint cache (results of unchanged files, kept in "
            "$FLOWCTL_CACHE_DIR, else $XDG_CACHE_HOME/flowctl or ~/.cache/flowctl).",
        ),
    ] = False,
) -> None:
    """Lint process definitions and the org directory.

    Reports every problem at once as path:line:col: CODE message. Exit
    status: 0 no errors (warnings allowed), 1 errors (or warnings with
    --strict), 2 usage error or unreadable input, 3 internal error.

    Examples:

        flowctl lint

        flowctl lint processes/contract-approval.yaml --strict

        flowctl lint --format github

        flowctl lint --format sarif -o flowctl.sarif

        flowctl lint definitions/ --org definitions/org.yaml
    """
    with handle_errors():
        with _progress() as advance:
            result = definitions.lint_paths(paths or None, org=org, cache=not no_cache,
                                            progress=advance)
        _emit(result, fmt.value, output, color.value)
        raise SystemExit(result.exit_code(strict=strict))


@contextmanager
def _progress() -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for ``lint_paths``: a bar on stderr when lint takes long
    (``output.progress`` decides when, and only on a terminal).

    The bar, and the timer thread that shows it, start at lint's first report
    of files done, which comes after lint has forked its worker processes.
    """
    with ExitStack() as stack:
        bar: list[Progress] = []

        def advance(n: int) -> None:
            if not bar:
                bar.append(stack.enter_context(progress(None, "linting")))
            bar[0].advance(n)

        yield advance


def _emit(result: LintResult, fmt: str, output: str | None, color: str) -> None:
    if output is None:
        echo(report.render(result, fmt, palette=_palette(color, sys.stdout)), end="")
        return
    text = report.render(result, fmt, palette=_palette(color, None))
    try:
        with open(output, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {output}: {exc.strerror or exc}",
            hint="pass --output a file in a folder that exists and is writable",
        ) from exc
    echo(report.summary_line(result), err=True)


def _palette(choice: str, stream: object | None) -> report.Palette:
    """How ``--color CHOICE`` paints a text report written to ``stream`` (``None``:
    a file): ``always`` in colour, ``never`` plain, ``auto`` in colour on a
    terminal without ``NO_COLOR``; never in colour with ``flowctl --no-color``."""
    isatty = stream is not None and output.is_terminal(stream)
    if output.color_disabled() or not report.use_color(choice, isatty=isatty):
        return report.PLAIN
    paint = output.painter
    return report.Palette(location=paint("bold"), error=paint("bold red"),
                          warning=paint("bold yellow"), gutter=paint("blue"),
                          good=paint("bold green"))


def register(app: typer.Typer) -> None:
    app.command("lint")(lint)

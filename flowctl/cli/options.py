"""Options every runtime command shares, and small helpers for their values.

Each option is a function returning typer's declaration, used inside a
parameter's annotation: ``as_user: Annotated[str | None, opt.as_user()] = None``.
Annotations are only evaluated when typer builds the app, so importing
this module does not import typer (see ``flowctl.cli.declare``).
"""

from __future__ import annotations

from typing import Any

import typer
from typer import _click as click  # typer 0.28 carries its own click (pinned in pyproject)
from typer.core import TyperGroup

from flowctl.errors import UsageError


def as_user() -> Any:
    return typer.Option(
        "--as",
        metavar="USER",
        help="Act as USER (default: $FLOWCTL_USER, else your login name).",
        show_default=False,
    )


def db() -> Any:
    return typer.Option(
        "--db",
        metavar="PATH",
        help="The store: a SQLite file, or postgresql://HOST/DB for a team's server "
             "(default: $FLOWCTL_DB, else the workspace file's, else .flowctl/flowctl.db; "
             "only `start` creates a missing one).",
        show_default=False,
    )


def org() -> Any:
    return typer.Option(
        "--org",
        metavar="PATH",
        help="The org directory (default: $FLOWCTL_ORG, else the workspace file's, else "
             "<processes>/org.yaml).",
        show_default=False,
    )


def processes() -> Any:
    return typer.Option(
        "--processes",
        metavar="DIR",
        help="The folder of process definitions (default: $FLOWCTL_PROCESSES, else the "
             "workspace file's, else processes).",
        show_default=False,
    )


def sets() -> Any:
    return typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Set a record field (repeatable). An empty VALUE clears it.",
        show_default=False,
    )


def _version(value: int | None) -> int | None:
    # versions count from 1: anything less is a usage error (2), not a conflict (5)
    if value is not None and value < 1:
        raise typer.BadParameter(f"{value} is not a version: an instance's versions count from 1")
    return value


def expect_version() -> Any:
    return typer.Option(
        "--expect-version",
        metavar="N",
        help="Refuse (exit 5, nothing written) unless the instance is at version N.",
        show_default=False,
        callback=_version,
    )


def stage() -> Any:
    return typer.Option(
        "--stage",
        metavar="STAGE",
        help="Which active stage, when parallel branches have several (default: the one"
        " you hold).",
        show_default=False,
    )


def json_out() -> Any:
    return typer.Option("--json", help="Print JSON instead of text.")


def instance() -> Any:
    return typer.Argument(metavar="INSTANCE", help="An instance id.", show_default=False)


def now() -> Any:
    return typer.Option(
        "--now",
        metavar="TIME",
        help="Act as if it were TIME (ISO-8601; default: $FLOWCTL_NOW, else the clock).",
        show_default=False,
    )


def limit(what: str = "instances") -> Any:
    return typer.Option("--limit", "-n", metavar="N", help=f"Show at most N {what}.", min=0)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["level=key", "note=a=b"]`` -> ``{"level": "key", "note": "a=b"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(
                f"--set {item!r} is not FIELD=VALUE",
                hint="e.g. --set level=key (quote values with spaces)",
            )
        if name in out:
            raise UsageError(f"--set {name}=... is given twice")
        out[name] = value
    return out


class DefaultCommandGroup(TyperGroup):
    """A command group with a default subcommand (its first one): a command line
    whose first word is not one of its subcommands goes to the default, so
    ``flowctl journal X --json`` is ``flowctl journal entries X --json`` while
    ``flowctl journal verify`` is the ``verify`` subcommand with its own help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        default = next(iter(self.commands), None)
        first = args[0] if args else None
        if default and first not in self.commands and first not in ctx.help_option_names:
            args = [default, *args]
        return super().parse_args(ctx, args)

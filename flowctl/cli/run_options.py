"""Options every runtime command shares, and small helpers for their values."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.errors import UsageError

AsUser = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="USER",
        help="Act as USER (default: $FLOWCTL_USER, else your login name).",
        show_default=False,
    ),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help="The database (default: $FLOWCTL_DB, else .flowctl/flowctl.db; created if missing).",
        show_default=False,
    ),
]
Org = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="PATH",
        help="The org directory (default: $FLOWCTL_ORG, else <processes>/org.yaml).",
        show_default=False,
    ),
]
Processes = Annotated[
    str | None,
    typer.Option(
        "--processes",
        metavar="DIR",
        help="The folder of process definitions (default: $FLOWCTL_PROCESSES, else processes).",
        show_default=False,
    ),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Set a record field (repeatable). An empty VALUE clears it.",
        show_default=False,
    ),
]
ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        metavar="N",
        help="Refuse (exit 5, nothing written) unless the instance is at version N.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


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

"""``flowctl schema``: print a bundled JSON Schema."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api.definitions import SCHEMA_KINDS as KINDS
from flowctl.api.definitions import schema_text
from flowctl.cli.output import echo, handle_errors
from flowctl.errors import UsageError


def schema(
    kind: Annotated[
        str,
        typer.Argument(
            metavar="[process|org]",
            help="Which schema: a process definition (default) or the org directory.",
        ),
    ] = "process",
) -> None:
    """Print the JSON Schema of process definitions or of the org directory.

    Editors that speak the YAML language server give completion and help
    from it when a definition's first line is
    `# yaml-language-server: $schema=<path to the schema>`.

    Examples:

        flowctl schema > process.schema.json

        flowctl schema org > org.schema.json
    """
    with handle_errors():
        if kind not in KINDS:
            raise UsageError(
                f"unknown schema '{kind}': flowctl has schemas for {' and '.join(KINDS)}",
                hint="run `flowctl schema process` or `flowctl schema org`",
            )
        echo(schema_text(kind), end="")


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)

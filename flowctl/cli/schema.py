"""``flowctl schema``: print a bundled JSON Schema."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api.definitions import OTHER_SCHEMA_KINDS, SCHEMA_KINDS, schema_text
from flowctl.cli.output import echo, handle_errors
from flowctl.errors import UsageError

KINDS = (*SCHEMA_KINDS, *OTHER_SCHEMA_KINDS)


def schema(
    kind: Annotated[
        str,
        typer.Argument(
            metavar="[process|org|scenario]",
            help="Which schema: a process definition (default), the org directory, or a "
                 "scenario file of `flowctl test`.",
        ),
    ] = "process",
) -> None:
    """Print the JSON Schema of process definitions, the org directory or scenario files.

    Editors that speak the YAML language server give completion and help
    from it when a definition's first line is
    `# yaml-language-server: $schema=<path to the schema>`.

    Examples:

        flowctl schema > process.schema.json

        flowctl schema org > org.schema.json

        flowctl schema scenario > scenario.schema.json
    """
    with handle_errors():
        if kind not in KINDS:
            raise UsageError(
                f"unknown schema '{kind}': flowctl has schemas for {', '.join(KINDS)}",
                hint="run `flowctl schema process`, `flowctl schema org` or "
                     "`flowctl schema scenario`",
            )
        echo(schema_text(kind), end="")


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)

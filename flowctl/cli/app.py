"""The ``flowctl`` application: one module per command group.

Each command module has ``register(app)``. Start-up time matters (CI lints
on every pull request; operators run one command per action), so:

- heavy imports (the YAML parser, jsonschema, sqlite, graphviz) happen
  inside the command bodies;
- ``flowctl <command> ...`` imports only the module that registers
  ``<command>`` (``COMMAND_HOMES``); the top-level help, an unknown
  command or a command missing from that table builds the whole app;
- ``flowctl --version`` does not import typer at all;
- help is typer's plain (click) layout: rich's boxes cost ~100 ms of imports.
"""

from __future__ import annotations

import sys
from typing import Any

from flowctl import __version__

COMMAND_MODULES = ("lint", "schema", "render", "runtime")

# command name -> the module of flowctl.cli that registers it. Any other
# command (the operator commands of ``runtime``, a typo) builds the whole app,
# so a command missing here only costs its start-up a few milliseconds.
COMMAND_HOMES = {"lint": "lint", "schema": "schema", "render": "render"}

HELP = "Business processes as code: lint, draw and run YAML process definitions."


def _build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> Any:
    import importlib

    import typer

    app = typer.Typer(
        name="flowctl",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    def version_callback(value: bool) -> None:
        if value:
            print(f"flowctl {__version__}")
            raise typer.Exit()

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", callback=version_callback, is_eager=True,
            help="Print the version and exit.",
        ),
    ) -> None:
        """Business processes as code: lint, draw and run YAML process definitions."""

    for name in modules:
        try:
            module = importlib.import_module(f"flowctl.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flowctl.cli.{name}":
                raise
            continue
        module.register(app)
    return app


def modules_for(args: list[str]) -> tuple[str, ...]:
    """The command modules ``flowctl <args>`` needs: one for a known command, else all."""
    if args and args[0] in COMMAND_HOMES:
        return (COMMAND_HOMES[args[0]],)
    return COMMAND_MODULES


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # fast path: no typer import
        print(f"flowctl {__version__}")
        return
    app = _build_app(modules_for(args))
    app(args=args, prog_name="flowctl")

"""The ``flowctl`` application: one module per command group.

Each command module has ``register(app)``. Start-up time matters (CI lints
on every pull request; operators run one command per action), so:

- heavy imports (the YAML parser, jsonschema, sqlite, graphviz) happen
  inside the command bodies;
- a plain, valid command line runs without typer (``flowctl.cli.fast``
  parses it from the commands' parameters, generated from this app);
- anything else (help, a usage error) goes to typer, which builds only the
  module that registers the command; the top-level help or an unknown
  command builds the whole app;
- ``flowctl --version`` does not import typer at all;
- help is typer's plain (click) layout: rich's boxes cost ~100 ms of imports.
"""

from __future__ import annotations

import sys
from typing import Any

from flowctl import __version__

COMMAND_MODULES = ("lint", "schema", "render", "runtime")

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
    from flowctl.cli import fast

    module = fast.module_of(args)
    return (module,) if module else COMMAND_MODULES


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # fast path: no typer import
        print(f"flowctl {__version__}")
        return
    from flowctl.cli import fast

    if fast.root_help(args) or fast.run(args):
        return
    app = _build_app(modules_for(args))
    app(args=args, prog_name="flowctl")

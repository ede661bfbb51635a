"""The ``flowctl`` application: one module per command group.

Each command module has ``register(app)``. Heavy imports (the YAML parser,
jsonschema, sqlite, graphviz) happen inside the command bodies, so that
``flowctl --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import sys

from flowctl import __version__

COMMAND_MODULES = ("lint", "schema", "render", "runtime")


def _build_app():  # type: ignore[no-untyped-def]
    import importlib

    import typer

    app = typer.Typer(
        name="flowctl",
        help="Business processes as code: lint, draw and run YAML process definitions.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
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

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"flowctl.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flowctl.cli.{name}":
                raise
            continue
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # fast path: no typer import
        print(f"flowctl {__version__}")
        return
    app = _build_app()
    app(args=args, prog_name="flowctl")

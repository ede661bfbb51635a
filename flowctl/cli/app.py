"""The ``flowctl`` application: one typer app, each command group in its own module.

A command's module is imported only when that command runs (or its help is
asked for), the way click documents lazily loaded subcommands: the root
group (:class:`LazyGroup`) knows each command's name, module and one-line
help, and asks the module for the command on first use. Each module has
``register(app)``, which adds its commands to a typer app.

Every command line goes through typer; usage errors are printed in
flowctl's one error style (``flowctl: error: ...``, exit 2) by :func:`main`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from difflib import get_close_matches
from typing import Annotated, NamedTuple

import typer
from typer import _click as click  # typer 0.28 carries its own click (pinned in pyproject)
from typer.core import TyperGroup

from flowctl import __version__
from flowctl.cli import output


class CommandEntry(NamedTuple):
    module: str  # the module whose register(app) adds the command
    summary: str  # its one-line help, shown by `flowctl --help` without importing it


# In the order `flowctl --help` lists them. A test checks each summary against
# the command's own help, and that every command a module registers is here.
COMMANDS: dict[str, CommandEntry] = {
    "init": CommandEntry(
        "flowctl.cli.workspace",
        "Make a new workspace here: flowctl.toml, processes/ with an example process, "
        "org.yaml."),
    "config": CommandEntry(
        "flowctl.cli.workspace",
        "Show the processes, org directory, store and identity policy used here, and their "
        "source."),
    "lint": CommandEntry("flowctl.cli.lint", "Lint process definitions and the org directory."),
    "schema": CommandEntry(
        "flowctl.cli.schema",
        "Print the JSON Schema of process definitions, the org directory or scenario files."),
    "test": CommandEntry(
        "flowctl.cli.scenarios",
        "Run scenario tests of processes, in memory, and report coverage."),
    "render": CommandEntry(
        "flowctl.cli.render",
        "Draw a process: phases as boxes, stages by kind, results on the arrows."),
    "diff": CommandEntry(
        "flowctl.cli.diff",
        "Compare two versions of process definitions: changes, weakened control, running work."),
    "start": CommandEntry(
        "flowctl.cli.steps",
        "Start an instance of a process and run it to the first stage that needs a person."),
    "advance": CommandEntry(
        "flowctl.cli.steps", "Report a result at the instance's current stage and move it on."),
    "begin": CommandEntry(
        "flowctl.cli.steps", "Mark the current stage as in progress (you are working on it)."),
    "reassign": CommandEntry(
        "flowctl.cli.steps",
        "Give the current stage to another person (its assignee or an admin may)."),
    "note": CommandEntry(
        "flowctl.cli.steps",
        "Replace the instance's running note, or add a line to it with --append."),
    "link": CommandEntry(
        "flowctl.cli.steps",
        "Link the instance to a document elsewhere (invoice, order, contract...)."),
    "share": CommandEntry(
        "flowctl.cli.steps",
        "Let USER see an instance (show, journal, note...): by its initiator or an admin."),
    "unshare": CommandEntry(
        "flowctl.cli.steps",
        "Take back what `flowctl share` gave USER: by the instance's initiator or an admin."),
    "attach": CommandEntry(
        "flowctl.cli.steps",
        "Attach a file to the instance: its bytes are kept in the store, by their SHA-256."),
    "attachment": CommandEntry(
        "flowctl.cli.attachments",
        "Attachments of an instance: get one back byte for byte, list them."),
    "cancel": CommandEntry(
        "flowctl.cli.steps", "Cancel a running instance (its initiator or an admin may)."),
    "show": CommandEntry(
        "flowctl.cli.reading",
        "Show an instance card: process, record, stage, assignee, due time, note, links, "
        "history."),
    "inbox": CommandEntry(
        "flowctl.cli.reading",
        "Show what waits for you (directly or through a role), oldest first, with due times; "
        "then your open tasks and how many unread notifications you have."),
    "list": CommandEntry("flowctl.cli.reading", "List instances, newest first."),
    "journal": CommandEntry(
        "flowctl.cli.reading",
        "Print the journal, oldest first, streamed; or verify its hash chain."),
    "report": CommandEntry(
        "flowctl.cli.report",
        "Show how processes perform: time in each stage, results, rework, cycle time, the "
        "bottleneck."),
    "export": CommandEntry(
        "flowctl.cli.report",
        "Write the journal as an event log for process-mining tools: XES, CSV or JSON lines."),
    "tick": CommandEntry(
        "flowctl.cli.timers",
        "Fire everything that is due: waits that end, SLA due times, reminders and "
        "escalations, delayed tasks, ends of pauses; then deliver notifications."),
    "overdue": CommandEntry(
        "flowctl.cli.timers",
        "List what is late: stages past their due time (by how much, who holds them), and "
        "timers past due that no tick has fired yet."),
    "pause": CommandEntry(
        "flowctl.cli.timers",
        "Pause an instance: nothing can be done and no timer fires until it is resumed. "
        "SLA clocks stop: on resume, the due time and every timer move later by the length "
        "of the pause."),
    "resume": CommandEntry("flowctl.cli.timers", "Resume a paused instance now."),
    "task": CommandEntry(
        "flowctl.cli.timers", "Tasks created on entering stages: list them, mark them done."),
    "notifications": CommandEntry(
        "flowctl.cli.timers",
        "Notifications: list your unread ones, newest first (--all: read ones too); `read` "
        "marks them read; `deliver` sends them."),
    "migrate": CommandEntry(
        "flowctl.cli.migrate",
        "Move running instances of a process onto a new definition of it (admins only)."),
    "db": CommandEntry(
        "flowctl.cli.db",
        "Look after the store: db repair, db migrate, db copy, db grant."),
}


def module_commands(module: str) -> click.Command:
    """The click group of everything ``module`` registers (imports it)."""
    sub = typer.Typer(rich_markup_mode=None, add_completion=False)
    importlib.import_module(module).register(sub)
    return typer.main.get_group(sub)


def module_command(module: str, name: str) -> click.Command | None:
    """Command (or command group) ``name`` of ``module``, converted alone: typer
    turns a function's signature into click parameters, which is worth doing
    only for the command that runs."""
    sub = typer.Typer(rich_markup_mode=None, add_completion=False)
    importlib.import_module(module).register(sub)
    for info in sub.registered_commands:
        if info.name == name:
            return typer.main.get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=None)
    for group in sub.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group, pretty_exceptions_short=True, suggest_commands=True,
                rich_markup_mode=None)
    return None


class LazyGroup(TyperGroup):
    """The root group: commands are imported from their module on first use."""

    _loaded: dict[str, click.Command | None]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        loaded: dict[str, click.Command | None] = self.__dict__.setdefault("_loaded", {})
        if cmd_name not in loaded:
            loaded[cmd_name] = module_command(entry.module, cmd_name)
        return loaded[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the summaries from the table: listing the commands imports none of them
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.utils.make_default_short_help(entry.summary, limit))
                for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return self._click_resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:
            matches = get_close_matches(args[0], list(COMMANDS)) if args else []
            if matches:
                exc.message = (exc.message.rstrip(".") + ". Did you mean "
                               + ", ".join(repr(m) for m in matches) + "?")
            raise


app = typer.Typer(
    name="flowctl",
    cls=LazyGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"flowctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.",
    )] = False,
    no_color: Annotated[bool, typer.Option(
        "--no-color", help="No colour, even on a terminal (as does NO_COLOR in the environment).",
    )] = False,
) -> None:
    """Business processes as code: lint, draw and run YAML process definitions.

    Examples:

        flowctl init && flowctl lint

        flowctl start key-account-filing-approval --set owner=alice

        flowctl inbox

        flowctl COMMAND --help
    """
    output.disable_color(no_color)


def command() -> click.Command:
    """The root click command (typer builds it from ``app``)."""
    return typer.main.get_command(app)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``flowctl`` script: run one command line, exit with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    root_command = command()
    try:
        code = root_command.main(args=args, prog_name="flowctl", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.UsageError as exc:
        output.usage_error(exc.format_message(), exc.ctx.get_usage() if exc.ctx else None,
                           exc.ctx.command_path if exc.ctx else "flowctl")
    except typer.Abort:
        output.interrupted()
    except click.exceptions.ClickException as exc:
        output.fail(exc.format_message(), code=exc.exit_code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)

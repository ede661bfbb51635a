"""Commands that look after the store itself: `flowctl db repair`."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api import audit
from flowctl.cli import options as opt
from flowctl.cli import views as f
from flowctl.cli.output import echo, handle_errors


def repair(
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Restore the journal's append-only triggers when they are missing or changed.

    Every write command refuses a store whose triggers are gone. The repair
    puts them back and journals it (kind `store_repaired`, by you:
    $FLOWCTL_USER, else your login name); it writes nothing when they are in
    place. It cannot undo what was done while they were missing: run
    `flowctl journal verify --checkpoint FILE` next.

    Examples:

        flowctl db repair

        flowctl db repair --db /srv/flowctl/flowctl.db
    """
    with handle_errors():
        report = audit.repair(db=db)
        if json_out:
            echo(f.to_json({
                "repaired": report.entry is not None, "found": list(report.problems),
                "entry": None if report.entry is None else f.entry_dict(report.entry),
            }))
            return
        if report.entry is None:
            echo("the journal's append-only triggers are in place; nothing was written")
            return
        echo("found:")
        for problem in report.problems:
            echo(f"  {problem}")
        echo(f"restored the journal's append-only triggers (journal entry {report.entry.seq}, "
             "store_repaired)")
        echo("check what happened meanwhile: flowctl journal verify --checkpoint FILE")


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(
        help="""Look after the store: `db repair` restores the journal's append-only triggers.

        Examples:

            flowctl db repair
        """,
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    db_app.command("repair")(repair)
    app.add_typer(db_app, name="db")

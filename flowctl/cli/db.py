"""Commands that look after the store itself: `flowctl db repair`, `db migrate`,
`db copy`, `db grant` (a team's store on PostgreSQL: docs/team.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api import audit, team
from flowctl.cli import options as opt
from flowctl.cli import views as f
from flowctl.cli.output import echo, handle_errors, progress


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


def migrate(
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Bring the store's schema up to this flowctl's version (on a server: create it).

    Every command upgrades a SQLite store it opens; on a PostgreSQL server only
    the schema's owner may, so the team's admin runs this after upgrading
    flowctl (and once, first, to create flowctl's schema in an empty
    database). A store written by a newer flowctl is refused (exit 4).

    Examples:

        flowctl db migrate --db postgresql://db.example.com/approvals

        flowctl db migrate --json
    """
    with handle_errors():
        report = team.migrate(db=db)
        if json_out:
            echo(f.to_json({"store": report.store, "before": report.before,
                            "after": report.after}))
            return
        if report.before == report.after:
            echo(f"{report.store}: schema {report.after}, up to date; nothing was changed")
        else:
            echo(f"{report.store}: schema {report.before} -> {report.after}")


def copy(
    to: Annotated[str, typer.Option(
        "--to", metavar="URL", help="The empty PostgreSQL store to fill: postgresql://...",
        show_default=False)],
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Copy the whole store onto an empty PostgreSQL store, verifying the journal.

    Every table is copied in one transaction on the server; the journal is
    checked entry by entry against its hash chain on the way, and the copy
    must end at the same head (entry and hash) as the original: anything else
    writes nothing. A target that already holds instances or journal entries
    is refused. The original is not changed: point the workspace at the
    server afterwards (store = "postgresql://..." in flowctl.toml).

    Examples:

        flowctl db copy --to postgresql://db.example.com/approvals

        flowctl db copy --db .flowctl/flowctl.db --to postgresql://flowctl@db/approvals --json
    """
    with handle_errors():
        with progress(None, "copying") as bar:
            result = team.copy(to, db=db, progress=lambda _table, n: bar.advance(n))
        r = result.report
        if json_out:
            echo(f.to_json({"source": result.source, "target": result.target,
                            "rows": r.rows, "head": {"seq": r.head_seq, "hash": r.head_hash},
                            "problems": list(result.problems)}))
            return
        echo(f"copied {result.source} -> {result.target}")
        for table, n in r.rows.items():
            echo(f"  {table:<20} {n}")
        echo(f"journal verified: {r.rows.get('journal', 0)} entries, head {r.head_seq} "
             f"{r.head_hash[:12] or '-'} (the same as the original's)")
        if result.problems:
            echo(f"journal verify also reports, as of the original ({len(result.problems)}):")
            for problem in result.problems[:10]:
                echo(f"  {problem}")


def grant(
    user: Annotated[str, typer.Argument(metavar="USER", help="The database login to let in.",
                                        show_default=False)],
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Let a database login work in the PostgreSQL store as an operator.

    Creates the login role when it does not exist (without a password: set one
    with ALTER ROLE, or let pg_hba.conf decide), then grants what an operator
    needs: read everything, write instances, timers and notifications, append
    to the journal. Never UPDATE, DELETE or TRUNCATE on the journal,
    attachments or definitions. Run it as the schema's owner.

    Examples:

        flowctl db grant olga --db postgresql://db.example.com/approvals

        flowctl db grant svc-tick --json
    """
    with handle_errors():
        result = team.grant(user, db=db)
        if json_out:
            echo(f.to_json({"store": result.store, "role": result.role,
                            "created": result.created, "statements": list(result.statements)}))
            return
        if result.created:
            echo(f"created login role {result.role} (no password: set one with ALTER ROLE, "
                 "or let pg_hba.conf decide)")
        echo(f"{result.role} may now work in {result.store} as an operator "
             "(journal: read and append only)")


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(
        help="""Look after the store: db repair, db migrate, db copy, db grant.

        Examples:

            flowctl db repair

            flowctl db copy --to postgresql://db.example.com/approvals
        """,
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    db_app.command("repair")(repair)
    db_app.command("migrate")(migrate)
    db_app.command("copy")(copy)
    db_app.command("grant")(grant)
    app.add_typer(db_app, name="db")

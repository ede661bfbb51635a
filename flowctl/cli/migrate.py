"""``flowctl migrate``: move running instances onto a new definition of their process."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api import migrate as migration
from flowctl.api.migrate import MigrationReport, Moved
from flowctl.cli import options as opt
from flowctl.cli.output import Cell, Table, echo, handle_errors, print_table
from flowctl.cli.views import plain, to_json


def migrate(
    process: Annotated[str, typer.Argument(metavar="PROCESS", help="The process id.")],
    to: Annotated[str, typer.Option(
        "--to", metavar="FILE|REV",
        help="The new definition: a YAML file, or a git revision (commit, branch, tag) at "
             "which the process's file is read.")],
    maps: Annotated[list[str] | None, typer.Option(
        "--map", metavar="OLD=NEW",
        help="Where instances at stage OLD go in the new definition (repeat for several "
             "stages). Needed for every stage the new definition removed.")] = None,
    where: Annotated[str | None, typer.Option(
        "--where", metavar="CONDITION",
        help="Only the instances whose record satisfies CONDITION (the condition language "
             "of decisions, e.g. 'record.amount > 100000').")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the plan of every instance; write nothing.")] = False,
    as_json: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Move running instances of a process onto a new definition of it (admins only).

    Instances keep running on the definition they started with; this moves
    the running ones (or those --where selects) onto another: first a plan
    per instance (from stage, to stage, record fields the new definition
    drops, fields the new stage requires that are empty), then each instance
    in its own transaction with one `migrated` journal entry naming both
    definitions' digests and the mapping. An instance at a stage the new
    definition removed needs --map OLD=NEW, or nothing is written. The due
    time and SLA timers of the current stage follow the new definition,
    counted from when the stage was entered. Instances already on the new
    definition are left alone: the command can be run again. Paused ones are
    skipped (resume them first). --dry-run exits 1 when the migration would
    be refused.

    Examples:

        flowctl migrate contract-approval --to HEAD --dry-run

        flowctl migrate contract-approval --to HEAD --map legal-review=submit

        flowctl migrate contract-approval --to new.yaml --where 'record.vip'
    """
    with handle_errors():
        mapping = migration.parse_mapping(maps or [])
        report = migration.migrate(process, to=to, mapping=mapping, where=where,
                                   dry_run=dry_run, as_user=as_user, db=db, org=org,
                                   processes_dir=processes)
        if as_json:
            echo(to_json(_json(report)))
        else:
            _text(report)
        if report.dry_run and any(m.plan.refusal is not None for m in report.instances):
            raise SystemExit(1)  # the migration itself would be refused


def _state(m: Moved, dry_run: bool) -> Cell:
    p = m.plan
    if p.already:
        return Cell("already on it")
    if p.refusal is not None:
        return Cell(f"refused: {p.refusal}", "bold red")
    if p.skipped is not None:
        return Cell(f"skipped: {p.skipped}", "yellow")
    if m.error is not None:
        return Cell(f"not moved: {m.error}", "bold red")
    return Cell("would move" if dry_run else "moved", "" if dry_run else "green")


def _fields(m: Moved) -> str:
    parts = []
    if m.plan.dropped:
        parts.append("dropped: " + ", ".join(m.plan.dropped))
    if m.plan.now_required:
        parts.append("now required: " + ", ".join(m.plan.now_required))
    if m.plan.reenter:
        parts.append("enters the stage anew")
    return "; ".join(parts)


def _text(report: MigrationReport) -> None:
    verb = "plan: move" if report.dry_run else "move"
    mapping = "".join(f" --map {k}={v}" for k, v in report.mapping.items())
    echo(f"{verb} running instances of {report.process} to {report.to} "
         f"(definition {report.to_definition[:12]}){mapping}")
    if not report.instances:
        echo("no running instance matches: nothing to do")
        return
    rows: list[list[str | Cell]] = [
            [m.plan.instance_id, m.from_definition[:12], m.plan.from_stage or "-",
             m.plan.to_stage or "-", _fields(m), _state(m, report.dry_run)]
            for m in report.instances]
    print_table(Table(["instance", "definition", "from stage", "to stage", "fields", "result"],
                      rows, prose=["fields", "result"]))
    if report.dry_run:
        moving = sum(1 for m in report.instances if m.plan.moves)
        refused = sum(1 for m in report.instances if m.plan.refusal is not None)
        echo(f"{moving} would move, {report.already} already on it"
             + (f", {refused} refused: add --map for their stages" if refused else "")
             + "; nothing was written (--dry-run)")
    else:
        echo(f"moved {report.moved} of {len(report.instances)} instances "
             f"({report.already} already on it)")


def _json(report: MigrationReport) -> dict[str, object]:
    return {
        "process": report.process,
        "to": report.to,
        "to_definition": report.to_definition,
        "map": dict(report.mapping),
        "dry_run": report.dry_run,
        "moved": report.moved,
        "instances": [
            {**plain(m.plan), "from_definition": m.from_definition, "error": m.error,
             "moves": m.plan.moves, "entries": [e.seq for e in m.entries]}
            for m in report.instances
        ],
    }


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)

"""Commands that read: show, inbox, list, journal (and journal verify)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer

from flowctl.api import audit, instances, timers
from flowctl.api.identity import choose
from flowctl.api.records import JournalEntry
from flowctl.cli import options as opt
from flowctl.cli import views as f
from flowctl.cli import views as fmt
from flowctl.cli.output import Progress, echo, handle_errors, is_terminal, print_table, progress


def _echo_lines(lines: list[str]) -> None:
    echo("\n".join(lines))


def show(
    instance: Annotated[str, opt.instance()],
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Show an instance card: process, record, stage, assignee, due time, note, links, history.

    Examples:

        flowctl show key-account-filing-approval-1

        flowctl show contract-approval-4 --json
    """
    with handle_errors():
        card = instances.show(instance, as_user=as_user, db=db, org=org, processes_dir=processes)
        if json_out:
            data = fmt.plain(card)
            data["history"] = [fmt.entry_dict(e) for e in card.history]
            echo(fmt.to_json(data))
            return
        _echo_lines(fmt.card_lines(card))


def inbox(
    json_out: Annotated[bool, opt.json_out()] = False,
    limit: Annotated[int | None, opt.limit()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Show what waits for you (directly or through a role), oldest first, with due times;
    then your open tasks and how many unread notifications you have.

    Overdue stages are marked OVERDUE. `--json` lists stages (kind "stage")
    then tasks (kind "task").

    Examples:

        flowctl inbox

        flowctl inbox --as carol --json
    """
    with handle_errors():
        views = instances.inbox(
            limit=limit, as_user=as_user, db=db, org=org, processes_dir=processes
        )
        tasks, unread = timers.inbox_tasks(
            as_user=as_user, db=db, org=org, processes_dir=processes
        )
        if json_out:
            rows = [{"kind": "stage", **fmt.plain(v)} for v in views]
            rows += [{"kind": "task", "instance": t.instance_id, "process_id": t.process_id,
                      "stage": t.stage, **fmt.plain(t.task)} for t in tasks]
            echo(fmt.to_json(rows))
            return
        if not views and not tasks:
            me = choose(as_user)
            echo(f"nothing waits for {me.user if me else 'you'}")
        if views:
            print_table(fmt.inbox_table(views))
        if tasks:
            _echo_lines(["", "tasks:"])
            print_table(fmt.inbox_task_table(tasks))
        if unread:
            s = "" if unread == 1 else "s"
            echo(f"{unread} unread notification{s} (flowctl notifications)")


def list_command(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="active, waiting, paused, completed or cancelled (repeatable: any of them).",
            show_default=False,
        ),
    ] = None,
    process: Annotated[
        list[str] | None,
        typer.Option("--process", metavar="PROCESS",
                     help="Only this process id (repeatable: any of them).", show_default=False),
    ] = None,
    assignee: Annotated[
        list[str] | None,
        typer.Option("--assignee", metavar="USER",
                     help="Only stages waiting for USER (repeatable: any of them).",
                     show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Only started at or after TIME (ISO-8601)."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--where", metavar="CONDITION",
                     help="Only instances whose record satisfies CONDITION, in the language of "
                     "decisions (docs/conditions.md).", show_default=False),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", metavar="TEXT",
                     help="Only instances whose process or stage names, record text, note or "
                     "comments contain every word of TEXT; best match first.",
                     show_default=False),
    ] = None,
    limit: Annotated[int | None, opt.limit()] = 50,
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """List instances, newest first.

    A filter given several times matches any of its values; different filters
    must all match. With --search, the best matches come first.

    Examples:

        flowctl list

        flowctl list --status active --process contract-approval

        flowctl list --process contract-approval --process goods-delivery

        flowctl list --assignee carol --since 2026-11-01 --json

        flowctl list --where 'record.customer == "ACME" and record.amount > 100000'

        flowctl list --search "trade fair" --status active
    """
    with handle_errors():
        views = instances.list_instances(
            status=status or (), process=process or (), assignee=assignee or (), since=since,
            limit=limit, where=where, search=search,
            as_user=as_user, db=db, org=org, processes_dir=processes,
        )
        fmt.print_items(views, json_out=json_out, empty="no instances", as_table=fmt.list_table)


class JournalFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def journal(
    instance: Annotated[
        str | None,
        typer.Argument(metavar="[INSTANCE]", help="Only this instance's entries.",
                       show_default=False),
    ] = None,
    process: Annotated[
        list[str] | None,
        typer.Option("--process", metavar="PROCESS",
                     help="Only this process id (repeatable: any of them).", show_default=False),
    ] = None,
    actor: Annotated[
        list[str] | None,
        typer.Option("--actor", metavar="USER",
                     help="Only entries by USER (repeatable: any of them).", show_default=False),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="TIME", help="Entries at or after TIME.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="TIME", help="Entries before TIME.")
    ] = None,
    out_format: Annotated[
        JournalFormat,
        typer.Option(
            "--format", "-f", help="table, json (one array) or csv.", case_sensitive=False
        ),
    ] = JournalFormat.table,
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Print journal entries, oldest first, streamed (what `flowctl journal` does).

    `--format json` (or `--json`) prints one JSON array with one entry per
    line, written as it is read. You see the entries of the instances you may
    see (admins and auditors: all of them).

    Examples:

        flowctl journal key-account-filing-approval-1

        flowctl journal --process contract-approval --format csv

        flowctl journal --actor carol --json

        flowctl journal entries --since 2026-11-01 --format csv
    """
    with handle_errors():
        entries = instances.journal(
            instance, process=process, actor=actor, since=since, until=until, as_viewer=True,
            as_user=as_user, db=db, org=org, processes_dir=processes,
        )
        fmt = JournalFormat.json if json_out else out_format
        _write_journal(entries, fmt)


def _write_journal(entries: Iterator[JournalEntry], fmt: JournalFormat) -> None:
    # A counter on stderr while the journal goes to a file or a pipe; on the
    # terminal the entries themselves show how far it got.
    with progress(None, "exporting the journal", show=not is_terminal(sys.stdout)) as bar:
        _write_entries(_counted(entries, bar), fmt)


def _counted(entries: Iterator[JournalEntry], bar: Progress) -> Iterator[JournalEntry]:
    for e in entries:
        yield e
        bar.advance()


def _write_entries(entries: Iterator[JournalEntry], fmt: JournalFormat) -> None:
    out = sys.stdout
    if fmt is JournalFormat.json:
        out.write("[")
        first = True
        for e in entries:
            out.write(("\n" if first else ",\n") + f.to_json(f.entry_dict(e)))
            first = False
        out.write("\n]\n")
    elif fmt is JournalFormat.csv:
        import csv

        writer = csv.writer(out, lineterminator="\n")
        columns = ["seq", "at", "instance", "version", "actor", "kind", "stage", "result", "data",
                   "hash"]
        writer.writerow(columns)
        for e in entries:
            d = f.entry_dict(e)
            d["data"] = f.to_json(d["data"])
            writer.writerow(["" if d[c] is None else d[c] for c in columns])
    else:
        for e in entries:
            out.write(f.journal_line(e) + "\n")
    out.flush()


def _checkpoint_file() -> Any:
    return typer.Option(
        "--checkpoint", metavar="FILE",
        help="Also check the journal against the checkpoints in FILE "
             "(from `flowctl journal checkpoint --append FILE`).",
        show_default=False,
    )


def _key_file(what: str) -> Any:
    return typer.Option("--key", metavar="FILE", help=what, show_default=False)


def verify(
    checkpoint_file: Annotated[str | None, _checkpoint_file()] = None,
    key_file: Annotated[str | None, _key_file(
        "Check each checkpoint's HMAC-SHA256 with the key in FILE.")] = None,
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Verify the journal: its hash chain, its append-only triggers, each instance against it.

    The chain: no entry changed, removed or inserted; with `--checkpoint`,
    also the chain's head as recorded outside the store.

    Exit 0 when all holds, 1 when something does not (one BROKEN line each,
    saying where). The store is only read: a copy in a read-only folder can be
    verified. Without a checkpoint, someone who can write the database file can
    rewrite the journal and its hashes unseen (see docs/journal.md).

    Examples:

        flowctl journal verify

        flowctl journal verify --json --db /srv/flowctl/copy.db

        flowctl journal verify --checkpoint ~/audit/checkpoints.jsonl --key ~/audit/key
    """
    with handle_errors():
        _verify(db, json_out, checkpoint_file, key_file)


def _verify(
    db: str | None, json_out: bool, checkpoint_file: str | None, key_file: str | None
) -> None:
    report = audit.verify(db=db, checkpoint_file=checkpoint_file, key_file=key_file)
    if json_out:
        data: dict[str, Any] = {
            "ok": report.ok, "entries": report.entries, "problems": list(report.problems),
        }
        if checkpoint_file is not None:
            data["checkpoints"] = report.checkpoints
        echo(f.to_json(data))
    elif report.ok:
        against = ""
        if checkpoint_file is not None:
            against = f"; matches {report.checkpoints} checkpoint(s) in {checkpoint_file}"
        echo(f"journal intact: {report.entries} entries, hash chain verified{against}")
    else:
        echo(f"journal BROKEN: {len(report.problems)} problem(s) in {report.entries} entries")
        for p in report.problems:
            echo(f"  {p}")
    if not report.ok:
        raise SystemExit(1)


def checkpoint(
    append: Annotated[str | None, typer.Option(
        "--append", metavar="FILE",
        help="Append the checkpoint to FILE (one JSON line), kept away from the store.",
        show_default=False)] = None,
    key_file: Annotated[str | None, _key_file(
        "Sign the checkpoint with HMAC-SHA256 under the key in FILE.")] = None,
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
) -> None:
    """Print the head of the journal's chain (entry, hash, time), to keep elsewhere.

    The journal is verified first; a broken one gets no checkpoint (exit 1).
    `flowctl journal verify --checkpoint FILE` then detects a journal
    truncated, wiped or rewritten up to the checkpoint, even by someone who
    recomputed every hash. Keep FILE where the store's writers cannot change
    it (a git repository, another machine); with `--key` only the key's
    holder can make a checkpoint that verifies.

    Examples:

        flowctl journal checkpoint

        flowctl journal checkpoint --append ~/audit/checkpoints.jsonl --key ~/audit/key
    """
    with handle_errors():
        result = audit.checkpoint(db=db, append=append, key_file=key_file)
        if json_out:
            echo(result.line)
            return
        point = result.checkpoint
        signed = " (HMAC-SHA256 signed)" if point.hmac else ""
        echo(f"journal head: entry {point.seq}, hash {point.hash or '(empty journal)'}, "
             f"at {point.at}{signed}")
        if result.appended_to is not None:
            echo(f"checkpoint appended to {result.appended_to}")
        else:
            echo(result.line)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("inbox")(inbox)
    app.command("list")(list_command)
    journal_app = typer.Typer(
        cls=opt.DefaultCommandGroup,
        help="""Print the journal, oldest first, streamed; or verify its hash chain.

        `flowctl journal [INSTANCE] [OPTIONS]` prints entries (the `entries`
        subcommand, the default); `flowctl journal verify` checks the chain;
        `flowctl journal checkpoint` prints its head to keep elsewhere.

        Examples:

            flowctl journal key-account-filing-approval-1

            flowctl journal --process contract-approval --format csv

            flowctl journal verify

            flowctl journal checkpoint --append ~/audit/checkpoints.jsonl
        """,
        rich_markup_mode=None,
    )
    journal_app.command("entries")(journal)
    journal_app.command("verify")(verify)
    journal_app.command("checkpoint")(checkpoint)
    app.add_typer(journal_app, name="journal")

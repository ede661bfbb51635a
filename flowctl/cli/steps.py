"""Commands that change instances: start, advance, begin, reassign, note, link, attach,
cancel."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.api import instances
from flowctl.api.instances import StepResult
from flowctl.cli import options as opt
from flowctl.cli.options import parse_sets
from flowctl.cli.output import echo, handle_errors
from flowctl.cli.views import step_lines


def _print_step(step: StepResult, *, started: bool = False) -> None:
    for line in step_lines(step, started=started):
        echo(line)


def start(
    process: Annotated[
        str, typer.Argument(metavar="PROCESS", help="A process id (in --processes) or a YAML file.")
    ],
    sets: Annotated[list[str] | None, opt.sets()] = None,
    note: Annotated[
        str | None, typer.Option("--note", metavar="TEXT", help="The running note to start with.")
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Start an instance of a process and run it to the first stage that needs a person.

    Checks that you may start it and that each --set value fits its field,
    stores the exact definition the instance will run on, and prints the new
    instance id and who it now waits for.

    Examples:

        flowctl start key-account-filing-approval --as alice --set owner=alice

        flowctl start contract-approval --set customer=Acme --note "Q4 deal"
    """
    with handle_errors():
        step = instances.start(
            process, values=parse_sets(sets), note=note, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        _print_step(step, started=True)


def advance(
    instance: Annotated[str, opt.instance()],
    result: Annotated[
        str, typer.Option("--result", "-r", metavar="RESULT", help="The result to report.")
    ],
    sets: Annotated[list[str] | None, opt.sets()] = None,
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="Why; kept in the journal.")
    ] = None,
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    next_assignee: Annotated[
        str | None,
        typer.Option(
            "--next-assignee",
            metavar="USER",
            help="Who does the next stage, when its definition names nobody.",
        ),
    ] = None,
    stage: Annotated[str | None, opt.stage()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Report a result at the instance's current stage and move it on.

    Only the stage's assignee (or an admin, journalled as such) may report;
    the result must be one the stage allows, and the stage's required fields
    must be set. Countersign approvals move on when every approver approved.
    While parallel branches run, --stage names the branch's stage (the one you
    hold is chosen for you).

    Examples:

        flowctl advance key-account-filing-approval-1 --result done --set level=key

        flowctl advance key-account-filing-approval-1 -r approve --as carol

        flowctl advance contract-approval-4 -r approve --expect-version 3

        flowctl advance contract-approval-4 -r approve --stage legal-review --as grace
    """
    with handle_errors():
        step = instances.advance(
            instance, result=result, values=parse_sets(sets), comment=comment,
            expect_version=expect_version, next_assignee=next_assignee, stage=stage,
            as_user=as_user,
            db=db, org=org, processes_dir=processes,
        )
        _print_step(step)


def begin(
    instance: Annotated[str, opt.instance()],
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    stage: Annotated[str | None, opt.stage()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Mark the current stage as in progress (you are working on it).

    Examples:

        flowctl begin key-account-filing-approval-1

        flowctl begin contract-approval-4 --as frank

        flowctl begin contract-approval-4 --stage legal-review --as linda
    """
    with handle_errors():
        step = instances.begin(
            instance, expect_version=expect_version, stage=stage, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        _print_step(step)


def reassign(
    instance: Annotated[str, opt.instance()],
    user: Annotated[str, typer.Argument(metavar="USER", help="The new assignee.")],
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="Why; kept in the journal.")
    ] = None,
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    stage: Annotated[str | None, opt.stage()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Give the current stage to another person (its assignee or an admin may).

    Examples:

        flowctl reassign goods-delivery-3 dmitry --as oleg

        flowctl reassign contract-approval-4 grace --comment "carol is away"

        flowctl reassign contract-approval-4 dmitry --stage finance-review --as frank
    """
    with handle_errors():
        step = instances.reassign(
            instance, user=user, comment=comment, expect_version=expect_version, stage=stage,
            as_user=as_user, db=db, org=org, processes_dir=processes,
        )
        _print_step(step)


def note(
    instance: Annotated[str, opt.instance()],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The note.")],
    append: Annotated[
        bool, typer.Option("--append", "-a", help="Add a line instead of replacing the note.")
    ] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Replace the instance's running note, or add a line to it with --append.

    Examples:

        flowctl note key-account-filing-approval-1 "call on Friday"

        flowctl note key-account-filing-approval-1 --append "called; form sent"
    """
    with handle_errors():
        step = instances.note(
            instance, text=text, append=append, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        _print_step(step)


def link(
    instance: Annotated[str, opt.instance()],
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help="What it links to: invoice, order, contract...")
    ],
    ref: Annotated[str, typer.Argument(metavar="REF", help="Its number or reference.")],
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Link the instance to a document elsewhere (invoice, order, contract...).

    Examples:

        flowctl link contract-approval-4 contract C-2026-118

        flowctl link lost-customer-recovery-2 invoice INV-2041
    """
    with handle_errors():
        step = instances.link(
            instance, kind=kind, ref=ref, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        _print_step(step)


def attach(
    instance: Annotated[str, opt.instance()],
    path: Annotated[str, typer.Argument(metavar="FILE", help="The file to attach.")],
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME",
                     help="The name to keep it under (default: the file's name).",
                     show_default=False),
    ] = None,
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Attach a file to the instance: its bytes are kept in the store, by their SHA-256.

    Files up to 10 MiB; above that it is refused (exit 1) and nothing is
    written. The journal's `attached` entry holds the name, version, size and
    SHA-256. Attaching a file under a name the instance already has keeps
    both: the new one is the next version (`flowctl attachment get` returns
    the latest); the same bytes under the same name again are refused.

    Examples:

        flowctl attach contract-approval-4 signed-contract.pdf

        flowctl attach contract-approval-4 scan-0042.pdf --name signed-contract.pdf
    """
    with handle_errors():
        step = instances.attach(
            instance, path=path, name=name, expect_version=expect_version, as_user=as_user,
            db=db, org=org, processes_dir=processes,
        )
        _print_step(step)


def cancel(
    instance: Annotated[str, opt.instance()],
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why; kept in the journal.")
    ] = None,
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Cancel a running instance (its initiator or an admin may).

    Examples:

        flowctl cancel key-account-filing-approval-1 --reason "duplicate filing"

        flowctl cancel contract-approval-4 --as grace
    """
    with handle_errors():
        step = instances.cancel(
            instance, reason=reason, expect_version=expect_version, as_user=as_user, db=db,
            org=org, processes_dir=processes,
        )
        _print_step(step)


def share(
    instance: Annotated[str, opt.instance()],
    user: Annotated[str, typer.Argument(metavar="USER", help="Who may see it now.")],
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Let USER see an instance (show, journal, note...): by its initiator or an admin.

    An instance is seen by its initiator, those who held or decided one of its
    stages, admins and auditors, and those it is shared with: they become its
    watchers, and are told its outcome too. Journalled as `shared`.

    Examples:

        flowctl share contract-approval-4 linda

        flowctl share key-account-filing-approval-1 bob --as alice
    """
    with handle_errors():
        step = instances.share(instance, user, as_user=as_user, db=db, org=org,
                               processes_dir=processes)
        _print_step(step)


def unshare(
    instance: Annotated[str, opt.instance()],
    user: Annotated[str, typer.Argument(metavar="USER", help="Who may no longer see it.")],
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Take back what `flowctl share` gave USER: by the instance's initiator or an admin.

    USER is no longer a watcher; they still see the instance if they held or
    decided one of its stages. Journalled as `unshared`.

    Examples:

        flowctl unshare contract-approval-4 linda
    """
    with handle_errors():
        step = instances.unshare(instance, user, as_user=as_user, db=db, org=org,
                                 processes_dir=processes)
        _print_step(step)


def register(app: typer.Typer) -> None:
    for fn in (start, advance, begin, reassign, note, link, attach, share, unshare, cancel):
        app.command(fn.__name__)(fn)

"""Commands about time and work around stages: tick, overdue, pause, resume,
task (done, list) and notifications (list, read, deliver)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from flowctl.api import instances, timers
from flowctl.api.instances import StepResult
from flowctl.api.timers import TickReport
from flowctl.cli import options as opt
from flowctl.cli import views as fmt
from flowctl.cli.output import echo, handle_errors, progress
from flowctl.cli.views import step_lines
from flowctl.errors import UsageError


def _now(text: str | None) -> datetime | None:
    if text is None:
        return None

    try:
        return instances.parse_time(text)
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO-8601 time", hint="e.g. --now 2026-11-23T09:00:00Z"
        ) from None


def _print_step(step: StepResult) -> None:
    for line in step_lines(step):
        echo(line)


def tick(
    now: Annotated[str | None, opt.now()] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what is due; write nothing.")
    ] = False,
    no_deliver: Annotated[
        bool, typer.Option("--no-deliver", help="Fire timers only; deliver no notification.")
    ] = False,
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Fire everything that is due: waits that end, SLA due times, reminders and
    escalations, delayed tasks, ends of pauses; then deliver notifications.

    Safe to run at any moment and from several places at once: each timer
    fires exactly once, in its own transaction, and is journalled. Put it in
    cron (see docs/time.md). Exit 0; 1 when some firing failed (it is
    retried by the next tick).

    Examples:

        flowctl tick

        flowctl tick --dry-run --now 2026-12-23T09:00:00Z

        flowctl tick --json
    """
    with handle_errors():
        with progress(None, "tick: timers and notifications") as bar:
            report = timers.tick(
                now=_now(now), dry_run=dry_run, deliver=not no_deliver, db=db, org=org,
                processes_dir=processes, progress=bar.advance,
            )
        if json_out:
            echo(fmt.to_json(fmt.tick_dict(report)))
        else:
            echo("\n".join(fmt.tick_lines(report)))
        if any(f.status == "failed" for f in report.fired):
            raise SystemExit(1)


def overdue(
    json_out: Annotated[bool, opt.json_out()] = False,
    now: Annotated[str | None, opt.now()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """List what is late: stages past their due time (by how much, who holds
    them), and timers past due that no tick has fired yet.

    Examples:

        flowctl overdue

        flowctl overdue --json
    """
    with handle_errors():
        items = timers.overdue(
            as_user=as_user, db=db, org=org, processes_dir=processes, now=_now(now)
        )
        fmt.print_items(items, json_out=json_out, empty="nothing is overdue",
                        as_table=fmt.overdue_table)


def pause(
    instance: Annotated[str, opt.instance()],
    duration: Annotated[
        str | None,
        typer.Option("--for", metavar="DURATION",
                     help="Resume automatically after this long (12h, 30d, 5bd, 1mo, 2y, P1M)."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why; kept in the journal.")
    ] = None,
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Pause an instance: nothing can be done and no timer fires until it is
    resumed. SLA clocks stop: on resume, the due time and every timer move
    later by the length of the pause.

    Examples:

        flowctl pause lost-customer-recovery-2 --for 30d --reason "customer on holiday"

        flowctl pause contract-approval-4
    """
    with handle_errors():
        _print_step(instances.pause(
            instance, duration=duration, reason=reason, expect_version=expect_version,
            as_user=as_user, db=db, org=org, processes_dir=processes,
        ))


def resume(
    instance: Annotated[str, opt.instance()],
    expect_version: Annotated[int | None, opt.expect_version()] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Resume a paused instance now.

    Examples:

        flowctl resume lost-customer-recovery-2
    """
    with handle_errors():
        _print_step(instances.resume(
            instance, expect_version=expect_version, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        ))


def task_done(
    instance: Annotated[str, opt.instance()],
    task: Annotated[
        str, typer.Argument(metavar="TASK", help="The task id (flowctl task list shows them).")
    ],
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="Kept in the journal.")
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Mark a task of the instance's current stage done (its assignee or an admin).

    A blocking task must be done before the stage can be advanced.

    Examples:

        flowctl task done lost-customer-recovery-2 check-prices
    """
    with handle_errors():
        _print_step(instances.task_done(
            instance, task, comment=comment, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        ))


def task_list(
    mine: Annotated[bool, typer.Option("--mine", help="Only tasks for you.")] = False,
    include_done: Annotated[
        bool, typer.Option("--done", help="Include tasks already done.")
    ] = False,
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """List the tasks of running instances (delayed ones show when they appear).

    Examples:

        flowctl task list --mine

        flowctl task list --json
    """
    with handle_errors():
        items = timers.tasks(
            mine=mine, include_done=include_done, as_user=as_user, db=db, org=org,
            processes_dir=processes,
        )
        fmt.print_items(items, json_out=json_out, empty="no tasks", as_table=fmt.task_table)


def notifications_list(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include notifications already read.")
    ] = False,
    everyone: Annotated[
        bool, typer.Option("--everyone", help="Everyone's (admins only).")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", metavar="N", min=0, help="At most N.")
    ] = 50,
    json_out: Annotated[bool, opt.json_out()] = False,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Notifications: list your unread ones, newest first (--all: read ones
    too); `read` marks them read; `deliver` sends them.

    Examples:

        flowctl notifications

        flowctl notifications --all --json

        flowctl notifications read

        flowctl notifications deliver
    """
    if ctx.invoked_subcommand is not None:
        return
    with handle_errors():
        items = timers.notifications(
            include_read=show_all, everyone=everyone, limit=limit, as_user=as_user, db=db,
            org=org, processes_dir=processes,
        )
        fmt.print_items(items, json_out=json_out, empty="no notifications",
                        as_table=fmt.notification_table)


def notifications_read(
    ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="[ID]...", help="Notification ids (default: all unread)."),
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Mark your notifications read (the given ids, or all unread ones).

    Examples:

        flowctl notifications read

        flowctl notifications read 12 13
    """
    with handle_errors():
        count = timers.mark_read(
            tuple(ids or ()), as_user=as_user, db=db, org=org, processes_dir=processes
        )
        echo(f"{count} notification{'' if count == 1 else 's'} marked read")


def notifications_deliver(
    now: Annotated[str | None, opt.now()] = None,
    json_out: Annotated[bool, opt.json_out()] = False,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Deliver pending notifications through the users' channels now
    (flowctl tick does it too).

    Each user's channels are the Apprise URLs of the org directory (e-mail,
    Slack, Telegram, SMS gateways...) and $FLOWCTL_NOTIFY_COMMAND when set.
    A channel that fails is retried later (1, 2, 4, 8 minutes); every attempt
    is journalled, with the secrets of the URLs masked.

    Examples:

        flowctl notifications deliver

        flowctl notifications deliver --json
    """
    with handle_errors():
        report = timers.deliver_notifications(
            now=_now(now), db=db, org=org, processes_dir=processes
        )
        if json_out:
            echo(fmt.to_json(fmt.tick_dict(report)))
        else:
            echo("\n".join(fmt.delivery_lines(report)))


def register(app: typer.Typer) -> None:
    app.command("tick")(tick)
    app.command("overdue")(overdue)
    app.command("pause")(pause)
    app.command("resume")(resume)
    import typer

    task_app = typer.Typer(
        help="Tasks created on entering stages: list them, mark them done.\n\n"
        "Examples:\n\n"
        "    flowctl task list --mine\n\n"
        "    flowctl task done lost-customer-recovery-2 check-prices",
        no_args_is_help=True, rich_markup_mode=None,
    )
    task_app.command("done")(task_done)
    task_app.command("list")(task_list)
    app.add_typer(task_app, name="task")
    notifications_app = typer.Typer(invoke_without_command=True, rich_markup_mode=None)
    notifications_app.callback()(notifications_list)
    notifications_app.command("read")(notifications_read)
    notifications_app.command("deliver")(notifications_deliver)
    app.add_typer(notifications_app, name="notifications")


__all__ = ["TickReport", "register"]

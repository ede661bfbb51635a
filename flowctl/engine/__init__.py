"""The engine: pure transitions over one instance of a process.

``start(definition, command, context)`` and ``apply(definition, instance,
command, context)`` return a :class:`Transition`: the new instance and the
journal events it produced. Nothing here reads files, a clock or a database.

- :mod:`flowctl.engine.steps`: the instance record, commands, entering
  stages, people's commands (advance, begin, reassign, note, link, cancel);
- :mod:`flowctl.engine.timers`: time and composition (timers firing, SLA
  escalations, pause and resume, tasks, child processes);
- :mod:`flowctl.engine.calendars`: business hours.
"""

from __future__ import annotations

from flowctl.engine import steps, timers
from flowctl.engine.steps import (
    ACTIVE as ACTIVE,
)
from flowctl.engine.steps import (
    ADMIN_ROLE as ADMIN_ROLE,
)
from flowctl.engine.steps import (
    CANCELLED as CANCELLED,
)
from flowctl.engine.steps import (
    COMPLETED as COMPLETED,
)
from flowctl.engine.steps import (
    DONE as DONE,
)
from flowctl.engine.steps import (
    DUE as DUE,
)
from flowctl.engine.steps import (
    ESCALATION as ESCALATION,
)
from flowctl.engine.steps import (
    FINISHED as FINISHED,
)
from flowctl.engine.steps import (
    IN_PROGRESS as IN_PROGRESS,
)
from flowctl.engine.steps import (
    MAX_AUTOMATIC_STEPS as MAX_AUTOMATIC_STEPS,
)
from flowctl.engine.steps import (
    NOT_STARTED as NOT_STARTED,
)
from flowctl.engine.steps import (
    PAUSED as PAUSED,
)
from flowctl.engine.steps import (
    RESUME as RESUME,
)
from flowctl.engine.steps import (
    SHOW_AT_MOST as SHOW_AT_MOST,
)
from flowctl.engine.steps import (
    SYSTEM_ACTOR as SYSTEM_ACTOR,
)
from flowctl.engine.steps import (
    TASK as TASK,
)
from flowctl.engine.steps import (
    TASK_DONE as TASK_DONE,
)
from flowctl.engine.steps import (
    TASK_OPEN as TASK_OPEN,
)
from flowctl.engine.steps import (
    TASK_SCHEDULED as TASK_SCHEDULED,
)
from flowctl.engine.steps import (
    WAITING as WAITING,
)
from flowctl.engine.steps import (
    WAKE as WAKE,
)
from flowctl.engine.steps import (
    Advance as Advance,
)
from flowctl.engine.steps import (
    AlreadySigned as AlreadySigned,
)
from flowctl.engine.steps import (
    Attach as Attach,
)
from flowctl.engine.steps import (
    AttachmentRef as AttachmentRef,
)
from flowctl.engine.steps import (
    Begin as Begin,
)
from flowctl.engine.steps import (
    Cancel as Cancel,
)
from flowctl.engine.steps import (
    Child as Child,
)
from flowctl.engine.steps import (
    ChildEnded as ChildEnded,
)
from flowctl.engine.steps import (
    ChildStarted as ChildStarted,
)
from flowctl.engine.steps import (
    Command as Command,
)
from flowctl.engine.steps import (
    Context as Context,
)
from flowctl.engine.steps import (
    Event as Event,
)
from flowctl.engine.steps import (
    FieldsMissing as FieldsMissing,
)
from flowctl.engine.steps import (
    Fire as Fire,
)
from flowctl.engine.steps import (
    Instance as Instance,
)
from flowctl.engine.steps import (
    InstanceClosed as InstanceClosed,
)
from flowctl.engine.steps import (
    InvalidValue as InvalidValue,
)
from flowctl.engine.steps import (
    Link as Link,
)
from flowctl.engine.steps import (
    LinkRef as LinkRef,
)
from flowctl.engine.steps import (
    NoAssignee as NoAssignee,
)
from flowctl.engine.steps import (
    Note as Note,
)
from flowctl.engine.steps import (
    Notice as Notice,
)
from flowctl.engine.steps import (
    NotPermitted as NotPermitted,
)
from flowctl.engine.steps import (
    Pause as Pause,
)
from flowctl.engine.steps import (
    Reassign as Reassign,
)
from flowctl.engine.steps import (
    Refused as Refused,
)
from flowctl.engine.steps import (
    ResultNotAllowed as ResultNotAllowed,
)
from flowctl.engine.steps import (
    Resume as Resume,
)
from flowctl.engine.steps import (
    Run as Run,
)
from flowctl.engine.steps import (
    Share as Share,
)
from flowctl.engine.steps import (
    Start as Start,
)
from flowctl.engine.steps import (
    Task as Task,
)
from flowctl.engine.steps import (
    TaskDone as TaskDone,
)
from flowctl.engine.steps import (
    TasksOpen as TasksOpen,
)
from flowctl.engine.steps import (
    Timer as Timer,
)
from flowctl.engine.steps import (
    TimerVoid as TimerVoid,
)
from flowctl.engine.steps import (
    Transition as Transition,
)
from flowctl.engine.steps import (
    Unshare as Unshare,
)
from flowctl.engine.steps import (
    Vote as Vote,
)
from flowctl.engine.steps import (
    advance as advance,
)
from flowctl.engine.steps import (
    attach as attach,
)
from flowctl.engine.steps import (
    begin as begin,
)
from flowctl.engine.steps import (
    cancel as cancel,
)
from flowctl.engine.steps import (
    coerce as coerce,
)
from flowctl.engine.steps import (
    describe_field as describe_field,
)
from flowctl.engine.steps import (
    describe_principal as describe_principal,
)
from flowctl.engine.steps import (
    describe_principals as describe_principals,
)
from flowctl.engine.steps import (
    dump_state as dump_state,
)
from flowctl.engine.steps import (
    enter as enter,
)
from flowctl.engine.steps import (
    excluded as excluded,
)
from flowctl.engine.steps import (
    holds as holds,
)
from flowctl.engine.steps import (
    iso as iso,
)
from flowctl.engine.steps import (
    later as later,
)
from flowctl.engine.steps import (
    link as link,
)
from flowctl.engine.steps import (
    load_instance as load_instance,
)
from flowctl.engine.steps import (
    names_list as names_list,
)
from flowctl.engine.steps import (
    note as note,
)
from flowctl.engine.steps import (
    parse_time as parse_time,
)
from flowctl.engine.steps import (
    principals_of as principals_of,
)
from flowctl.engine.steps import (
    reassign as reassign,
)
from flowctl.engine.steps import (
    resolve as resolve,
)
from flowctl.engine.steps import (
    start as start,
)
from flowctl.engine.steps import (
    task_created as task_created,
)
from flowctl.engine.steps import (
    timer_key as timer_key,
)
from flowctl.engine.steps import (
    user_principal as user_principal,
)
from flowctl.engine.steps import (
    users_of as users_of,
)
from flowctl.model import Process


def apply(process: Process, instance: Instance, command: Command, ctx: Context) -> Transition:
    """Apply one command to an instance; raise Refused/InvalidValue if not allowed."""
    steps.check_command_text(command)
    run = steps.Run(process, instance, ctx)
    if isinstance(command, Advance):
        steps.advance(run, command)
    elif isinstance(command, Begin):
        steps.begin(run)
    elif isinstance(command, Reassign):
        steps.reassign(run, command)
    elif isinstance(command, Note):
        steps.note(run, command)
    elif isinstance(command, Link):
        steps.link(run, command)
    elif isinstance(command, Cancel):
        steps.cancel(run, command)
    elif isinstance(command, Attach):
        steps.attach(run, command)
    elif isinstance(command, Share):
        steps.share(run, command)
    elif isinstance(command, Unshare):
        steps.unshare(run, command)
    else:
        _apply_more(run, command)
    return run.done()


def _apply_more(run: steps.Run, command: Command) -> None:
    if isinstance(command, Fire):
        timers.fire(run, command)
    elif isinstance(command, Pause):
        timers.pause(run, command)
    elif isinstance(command, Resume):
        timers.resume(run, auto=False)
    elif isinstance(command, TaskDone):
        timers.task_done(run, command)
    elif isinstance(command, ChildStarted):
        timers.child_started(run, command)
    elif isinstance(command, ChildEnded):
        timers.child_ended(run, command)



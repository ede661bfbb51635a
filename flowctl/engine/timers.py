"""The engine's time and composition commands: timers firing, pause and
resume, tasks done, child processes started and ended.

Part of the pure engine (:func:`flowctl.engine.apply` dispatches here): no clock, no
files, no database. A timer whose work cannot be done (the escalation's
target cannot be found, the next stage needs a field that is empty...) is
consumed all the same and journalled as ``timer_failed``, and the instance's
initiator is told: a tick never stops on one instance's problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgspec.structs import replace

from flowctl.definition.durations import DurationError, parse_duration
from flowctl.engine.steps import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    DUE,
    ESCALATION,
    PAUSED,
    RESUME,
    TASK,
    TASK_DONE,
    TASK_OPEN,
    TASK_SCHEDULED,
    WAITING,
    WAKE,
    BranchRun,
    Child,
    ChildEnded,
    ChildStarted,
    Fire,
    InstanceClosed,
    InvalidValue,
    NotPermitted,
    Pause,
    Refused,
    Run,
    TaskDone,
    Timer,
    TimerVoid,
    ask_instead,
    describe_principal,
    describe_principals,
    enter,
    excluded,
    focus,
    holds,
    iso,
    later,
    names_list,
    parse_time,
    resolve,
    task_created,
    took_picked,
    unfocus,
    user_principal,
)
from flowctl.errors import FlowctlError
from flowctl.model import Escalation, EscalationAction, Stage

# ---------------------------------------------------------------- timers


def fire(run: Run, cmd: Fire) -> None:
    inst = run.inst
    timer = next((t for t in inst.timers if t.key == cmd.key), None)
    if timer is None or inst.finished or (inst.status == PAUSED and timer.kind != RESUME):
        raise TimerVoid(f"timer {cmd.key} of {inst.id} is not pending (fired, or moved on)")
    if timer.kind != RESUME and inst.fork is not None:
        branch = inst.branch_at(timer.stage)
        if branch is None or timer not in branch.timers:
            raise TimerVoid(f"timer {cmd.key} of {inst.id} belongs to a stage it has left")
        focus(run, branch.name)
    elif timer.kind != RESUME and timer.stage != inst.stage:
        raise TimerVoid(f"timer {cmd.key} of {inst.id} belongs to a stage it has left")
    run.set(timers=tuple(t for t in run.inst.timers if t.key != cmd.key))
    base: dict[str, Any] = {"timer": timer.key, "due_at": timer.at}
    saved, n_events, n_notices = run.inst, len(run.events), len(run.notices)
    in_branch = run.branch
    try:
        _HANDLERS[timer.kind](run, timer, base)
        unfocus(run)
    except FlowctlError as exc:
        run.inst = saved
        run.branch = in_branch
        del run.events[n_events:]
        del run.notices[n_notices:]
        run.emit("timer_failed", stage=timer.stage, data={
            **base, "kind": timer.kind, "error": exc.message,
        })
        run.notify([user_principal(inst.initiator)], "escalation",
                   f"{inst.id}: the {timer.kind} timer at '{timer.stage}' could not be done:"
                   f" {exc.message}", timer.stage)
        unfocus(run)


def _wake(run: Run, timer: Timer, base: dict[str, Any]) -> None:
    stage = run.stage(timer.stage)
    run.set(wake_at=None)
    run.emit("woke", stage=stage.id, data=base)
    if stage.next is None:
        raise FlowctlError(f"wait stage '{stage.id}' has no next stage")
    enter(run, stage.next)


def _due(run: Run, timer: Timer, base: dict[str, Any]) -> None:
    inst = run.inst
    stage = run.stage(timer.stage)
    run.emit("overdue", stage=stage.id, data={**base, "assignees": list(inst.assignees)})
    run.notify(inst.assignees, "overdue",
               f"{inst.id}: '{stage.label}' is overdue (it was due {timer.at})", stage.id,
               event="overdue")


def _escalate(run: Run, timer: Timer, base: dict[str, Any]) -> None:
    stage = run.stage(timer.stage)
    escalations = stage.sla.escalations if stage.sla else ()
    if timer.index >= len(escalations):
        raise FlowctlError(f"stage '{stage.id}' has no escalation {timer.index + 1}")
    esc = escalations[timer.index]
    data = {**base, "level": timer.index + 1, "action": esc.action.value, "after": esc.after}
    _ACTIONS[esc.action](run, stage, esc, data)


def _remind(run: Run, stage: Stage, esc: Escalation, data: dict[str, Any]) -> None:
    inst = run.inst
    # A reminder at the moment the stage falls due would reach the same people
    # as the overdue notice of that moment: they get that one message only.
    folded = inst.due_at is not None and data.get("due_at") == inst.due_at
    run.emit("escalation", stage=stage.id, data={
        **data, "to": list(inst.assignees), **({"told_by": "overdue"} if folded else {}),
    })
    if folded:
        return
    due = f", due {inst.due_at}" if inst.due_at else ""
    run.notify(inst.assignees, "reminder",
               f"{inst.id}: reminder: '{stage.label}' waits for you since {inst.entered_at}{due}",
               stage.id, event="reminder")


def _target(run: Run, stage: Stage, esc: Escalation) -> tuple[str, str]:
    if esc.to is None:
        raise FlowctlError(f"escalation {esc.action.value} of '{stage.id}' names nobody (to)")
    return resolve(run, stage, esc.to)


def _notify(run: Run, stage: Stage, esc: Escalation, data: dict[str, Any]) -> None:
    inst = run.inst
    who, _ = _target(run, stage, esc)
    run.emit("escalation", stage=stage.id, data={**data, "to": [who], **took_picked(run)})
    holder = describe_principals(inst.assignees, inst.labels, run.ctx.org)
    run.notify([who], "escalation",
               f"{inst.id}: '{stage.label}' held by {holder} has had no answer for {esc.after}",
               stage.id, event="escalated")


def _reassign(run: Run, stage: Stage, esc: Escalation, data: dict[str, Any]) -> None:
    inst = run.inst
    if inst.approvers:
        raise Refused(f"stage '{stage.id}' needs every approver's signature; it cannot be"
                      " reassigned by an escalation")
    who, label = _target(run, stage, esc)
    kind, _, user = who.partition(":")
    why = excluded(inst, stage, user) if kind == "user" else None
    if why is not None:
        raise Refused(f"an escalation cannot reassign '{stage.id}' to {user}: {why}")
    previous = inst.assignees
    run.set(assignees=(who,), labels={who: f"escalated: {label}" if label else "escalated"})
    run.emit("escalation", stage=stage.id, data={
        **data, "from": list(previous), "to": [who], **took_picked(run),
    })
    run.notify([who], "assigned",
               f"{inst.id}: '{stage.label}' is yours now: no answer for {esc.after}", stage.id)
    run.notify([p for p in previous if p != who], "escalation",
               f"{inst.id}: '{stage.label}' was given to {who.partition(':')[2]}:"
               f" no answer for {esc.after}", stage.id, event="escalated")


def _auto_result(run: Run, stage: Stage, esc: Escalation, data: dict[str, Any]) -> None:
    inst = run.inst
    result = stage.result(esc.result or "")
    if result is None:
        raise Refused(f"stage '{stage.id}' has no result '{esc.result}' to report automatically")
    run.emit("escalation", stage=stage.id, data={**data, "result": result.name})
    missing = [n for n in (*stage.required_fields, *result.required)
               if inst.record.get(n) in (None, "")]
    res_data: dict[str, Any] = {"automatic": True, "comment": f"no answer within {esc.after}"}
    if missing:
        res_data["fields_missing"] = list(dict.fromkeys(missing))
    run.emit("result", stage=stage.id, result=result.name, data=res_data)
    run.notify(inst.assignees, "escalation",
               f"{inst.id}: '{stage.label}' got the automatic result '{result.name}'"
               f" after {esc.after} without an answer", stage.id, event="escalated")
    enter(run, result.to)


_ACTIONS: dict[EscalationAction, Callable[[Run, Stage, Escalation, dict[str, Any]], None]] = {
    EscalationAction.REMIND: _remind,
    EscalationAction.NOTIFY: _notify,
    EscalationAction.REASSIGN: _reassign,
    EscalationAction.RESULT: _auto_result,
}


def _task_appears(run: Run, timer: Timer, base: dict[str, Any]) -> None:
    stage = run.stage(timer.stage)
    spec_id = stage.tasks[timer.index].id if timer.index < len(stage.tasks) else ""
    tasks = list(run.inst.tasks)
    for i, t in enumerate(tasks):
        if t.id == spec_id and t.status == TASK_SCHEDULED:
            tasks[i] = replace(t, status=TASK_OPEN, at=run.ctx.at)
            run.set(tasks=tuple(tasks))
            task_created(run, tasks[i], extra=base)
            return
    raise FlowctlError(f"no scheduled task {spec_id or timer.index} at '{stage.id}'")


def _resume_timer(run: Run, timer: Timer, base: dict[str, Any]) -> None:
    resume(run, auto=True, data=base)


_HANDLERS: dict[str, Callable[[Run, Timer, dict[str, Any]], None]] = {
    WAKE: _wake,
    DUE: _due,
    ESCALATION: _escalate,
    TASK: _task_appears,
    RESUME: _resume_timer,
}


# ---------------------------------------------------------- pause, resume


def _may_pause(run: Run, verb: str) -> bool:
    """Assignees, the initiator and admins may pause and resume; True when as admin."""
    ctx, inst = run.ctx, run.inst
    slots = (*inst.assignees, user_principal(inst.initiator))
    if any(holds(ctx.actor, p, ctx.org) for p in slots):
        return False
    if ctx.is_admin:
        return True
    raise NotPermitted(
        f"only the initiator ({inst.initiator}), the assignee or an admin can {verb} {inst.id}",
        hint=ask_instead(ctx, describe_principals(tuple(dict.fromkeys(slots)), inst.labels,
                                                     ctx.org)),
        allowed=slots,
    )


def pause(run: Run, cmd: Pause) -> None:
    inst = run.inst
    if inst.finished:
        raise InstanceClosed(f"instance {inst.id} is {inst.status}; it cannot be paused",
                             status=inst.status)
    if inst.status == PAUSED:
        raise Refused(f"instance {inst.id} is already paused since {inst.paused_at}",
                      hint=f"flowctl resume {inst.id}")
    if inst.status == WAITING and not inst.wake_at:
        raise Refused(f"instance {inst.id} waits for its child process; pause the child instead")
    as_admin = _may_pause(run, "pause")
    timers: tuple[Timer, ...] = ()
    data: dict[str, Any] = {"suspended": [t.key for t in inst.timers]}
    if cmd.duration is not None:
        try:
            length = parse_duration(cmd.duration)
        except DurationError as exc:
            raise InvalidValue(f"--for {exc}") from None
        at = iso(later(run.process, run.ctx.now, length, False))
        stage = inst.stage or ""
        timers = (Timer(RESUME, at, stage, 0, run.key(RESUME, stage)),)
        data.update({"for": cmd.duration, "until": at})
    if cmd.reason:
        data["reason"] = cmd.reason
    if as_admin:
        data["as_admin"] = True
    run.set(status=PAUSED, paused_from=inst.status, paused_at=run.ctx.at,
            suspended=inst.timers, timers=timers)
    run.emit("paused", stage=inst.stage, data=data)


def _shift(at: str | None, by: Any) -> str | None:
    return iso(parse_time(at) + by) if at else None


def _shifted(branch: BranchRun, by: Any) -> BranchRun:
    """A parallel branch's clocks after a pause of length ``by``."""
    return replace(
        branch, timers=tuple(replace(t, at=_shift(t.at, by) or t.at) for t in branch.timers),
        tasks=tuple(replace(t, at=_shift(t.at, by) or t.at) if t.status == TASK_SCHEDULED
                    else t for t in branch.tasks),
        due_at=_shift(branch.due_at, by), wake_at=_shift(branch.wake_at, by),
    )


def resume(run: Run, *, auto: bool, data: dict[str, Any] | None = None) -> None:
    """End a pause. SLA clocks stop while paused: every suspended timer, the
    due time and the wake-up time move later by the length of the pause."""
    inst = run.inst
    if inst.status != PAUSED:
        raise Refused(f"instance {inst.id} is not paused (it is {inst.status})")
    out: dict[str, Any] = dict(data or {})
    if not auto and _may_pause(run, "resume"):
        out["as_admin"] = True
    by = run.ctx.now - parse_time(inst.paused_at or run.ctx.at)
    timers = tuple(replace(t, at=_shift(t.at, by) or t.at) for t in inst.suspended)
    tasks = tuple(
        replace(t, at=_shift(t.at, by) or t.at) if t.status == TASK_SCHEDULED else t
        for t in inst.tasks
    )
    out.update({"auto": auto, "paused_seconds": int(by.total_seconds())})
    run.set(status=inst.paused_from or ACTIVE, paused_from=None, paused_at=None, suspended=(),
            timers=timers, tasks=tasks, due_at=_shift(inst.due_at, by),
            wake_at=_shift(inst.wake_at, by),
            branches=tuple(_shifted(b, by) for b in inst.branches))
    run.emit("resumed", stage=inst.stage, data=out)


# ------------------------------------------------------------------ tasks


def task_done(run: Run, cmd: TaskDone) -> None:
    inst = run.inst
    task = next((t for t in inst.tasks if t.id == cmd.task), None)
    branch = inst.branch_at(task.stage) if task is not None and inst.fork else None
    if branch is None or inst.finished or inst.status == PAUSED:
        _task_done(run, cmd)
        return
    focus(run, branch.name)
    _task_done(run, cmd)
    unfocus(run)


def _task_done(run: Run, cmd: TaskDone) -> None:
    inst = run.inst
    if inst.finished or inst.status == PAUSED:
        raise InstanceClosed(f"instance {inst.id} is {inst.status}; no task can be done now",
                             status=inst.status)
    task = next((t for t in inst.tasks if t.id == cmd.task), None)
    if task is None:
        known = names_list([t.id for t in inst.tasks], limit=20)
        raise InvalidValue(
            f"stage '{inst.stage}' of {inst.id} has no task '{cmd.task}'; its tasks: {known}"
        )
    if task.status == TASK_SCHEDULED:
        raise Refused(f"task '{task.id}' of {inst.id} appears at {task.at}; it cannot be done"
                      " before")
    if task.status == TASK_DONE:
        raise Refused(f"task '{task.id}' of {inst.id} was done by {task.done_by} at"
                      f" {task.done_at}")
    as_admin = False
    if not holds(run.ctx.actor, task.assignee, run.ctx.org):
        if not run.ctx.is_admin:
            holder = describe_principal(task.assignee, run.inst.labels, run.ctx.org)
            raise NotPermitted(
                f"only {holder} can mark task '{task.id}' done",
                hint=ask_instead(run.ctx, holder),
                allowed=(task.assignee,),
            )
        as_admin = True
    done = replace(task, status=TASK_DONE, done_by=run.ctx.actor, done_at=run.ctx.at)
    run.set(tasks=tuple(done if t.id == task.id else t for t in inst.tasks))
    data: dict[str, Any] = {"task": task.id, "name": task.name, "blocking": task.blocking}
    if cmd.comment:
        data["comment"] = cmd.comment
    if as_admin:
        data["as_admin"] = True
    run.emit("task_done", stage=task.stage, data=data)


# --------------------------------------------------------------- children


def child_started(run: Run, cmd: ChildStarted) -> None:
    branch = run.inst.branch_at(cmd.stage) if run.inst.fork else None
    if branch is None:
        _child_started(run, cmd)
        return
    focus(run, branch.name)  # its entry says which branch
    _child_started(run, cmd)
    unfocus(run)


def _child_started(run: Run, cmd: ChildStarted) -> None:
    children = list(run.inst.children)
    for i, c in enumerate(children):
        if c.stage == cmd.stage and c.status == "pending" and c.instance_id is None:
            children[i] = replace(c, status="running", instance_id=cmd.instance_id)
            run.set(children=tuple(children))
            run.emit("child_started", stage=c.stage, data={
                "child": cmd.instance_id, "process": cmd.process, "wait": c.wait,
            })
            return
    raise Refused(f"{run.inst.id} needs no child at '{cmd.stage}'")


def child_ended(run: Run, cmd: ChildEnded) -> None:
    """A child finished: record it; a parent waiting for it goes on with the
    result named by the child's end stage (``results: {delivered: won}``)."""
    inst = run.inst
    children = list(inst.children)
    index = next((i for i, c in enumerate(children) if c.instance_id == cmd.instance_id), None)
    if index is None:
        raise Refused(f"{cmd.instance_id} is not a child of {inst.id}")
    c = children[index]
    status = COMPLETED if cmd.status == COMPLETED else CANCELLED
    children[index] = replace(c, status=status, end=cmd.end)
    run.set(children=tuple(children))
    data: dict[str, Any] = {"child": cmd.instance_id, "status": status, "end": cmd.end,
                            "outcome": cmd.outcome}
    branch = inst.branch_at(c.stage) if inst.fork else None
    if branch is not None and branch.status == WAITING and c.wait:
        focus(run, branch.name)
        _child_ended(run, c, status, cmd, data)
        unfocus(run)
        return
    _child_ended(run, c, status, cmd, data)


def _child_ended(run: Run, c: Child, status: str, cmd: ChildEnded,
                 data: dict[str, Any]) -> None:
    inst = run.inst
    if not (inst.status == WAITING and c.wait and inst.stage == c.stage):
        run.emit("child_ended", stage=c.stage, data=data)
        return
    stage = run.stage(c.stage)
    result = stage.result(cmd.end or "") if status == COMPLETED else None
    if result is None:
        who = user_principal(inst.initiator)
        run.emit("child_ended", stage=c.stage, data={**data, "mapped": False})
        run.set(status=ACTIVE, assignees=(who,), labels={who: "initiator"})
        allowed = ", ".join(r.name for r in stage.results) or "none"
        run.notify([who], "child",
                   f"{inst.id}: child {cmd.instance_id} ended {status} at '{cmd.end}', which"
                   f" '{stage.id}' has no result for; choose one ({allowed}) with"
                   f" flowctl advance {inst.id} -r RESULT", stage.id)
        return
    run.emit("child_ended", stage=c.stage, data={**data, "result": result.name})
    run.emit("result", stage=c.stage, result=result.name, data={
        "automatic": True, "child": cmd.instance_id,
    })
    enter(run, result.to)


__all__ = ["child_ended", "child_started", "fire", "later", "pause", "resume", "task_done"]

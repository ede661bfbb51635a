"""Moving a running instance onto another definition of its process (pure).

``plan`` says what would happen to one instance: the stage it is at and the
stage it would be at, the fields its record holds that the new definition no
longer declares, the fields the new stage requires that it has no value for,
and whether it can move at all (a stage the new definition removed needs a
mapping; a paused instance is resumed first). ``migrate`` does it and
returns the transition: the instance pinned to the new digest, with a
``migrated`` journal event that names both digests and the mapping.

What stays and what changes:

- the same stage, of the same kind: the instance stays where it is, with its
  assignees, votes and tasks; its due time and SLA timers are those of the
  new definition, counted from when the stage was entered (an escalation the
  old definition fired already is not fired again);
- another stage (``--map OLD=NEW``), or the same id with another kind: the
  new stage is entered as if the instance had just come to it (assignees,
  SLA from now, tasks; a decision is followed);
- fields the new definition does not declare are dropped from the record
  (their values are kept in the journal event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from flowctl.engine.steps import (
    DUE,
    ESCALATION,
    FINISHED,
    PAUSED,
    Context,
    Instance,
    Refused,
    Run,
    Timer,
    Transition,
    enter,
    iso,
    later,
    parse_time,
)
from flowctl.model import Process, Stage

MIGRATED = "migrated"


class MigrationPlan(Struct, frozen=True):
    """What moving one instance would do."""

    instance_id: str
    from_stage: str | None
    to_stage: str | None
    status: str
    reenter: bool = False  # the new stage is entered afresh (mapped, or its kind changed)
    dropped: tuple[str, ...] = ()  # record fields the new definition does not declare
    now_required: tuple[str, ...] = ()  # fields the new stage requires that have no value
    already: bool = False  # pinned to the new definition already: nothing to do
    refusal: str | None = None  # why it cannot move: the migration is refused
    skipped: str | None = None  # why it is left where it is (paused)

    @property
    def moves(self) -> bool:
        return not self.already and self.refusal is None and self.skipped is None


def plan(
    old: Process, new: Process, inst: Instance, new_digest: str, mapping: Mapping[str, str]
) -> MigrationPlan:
    """What :func:`migrate` would do to ``inst`` (see the module doc)."""
    stage = inst.stage
    fields = {f.name for f in new.fields}
    dropped = tuple(sorted(k for k in inst.record if k not in fields))
    if inst.definition_digest == new_digest:
        return MigrationPlan(inst.id, stage, stage, inst.status, already=True)
    if inst.status in FINISHED or stage is None:
        return MigrationPlan(inst.id, None, None, inst.status,
                             refusal=f"it is {inst.status}: only running instances move")
    if inst.status == PAUSED:
        return MigrationPlan(inst.id, stage, None, inst.status, dropped=dropped,
                             skipped="paused: resume it and run the migration again")
    if inst.fork is not None:
        running = ", ".join(f"{b.name} at '{b.stage}'" for b in inst.branches if b.live)
        return MigrationPlan(
            inst.id, stage, None, inst.status, dropped=dropped,
            refusal=f"it is at parallel stage '{stage}' with branches running ({running});"
                    " an instance moves between definitions outside parallel stages: let"
                    " its branches reach the join, then run the migration again",
        )
    target = mapping.get(stage, stage)
    new_stage = new.stage(target)
    if new_stage is None:
        return MigrationPlan(
            inst.id, stage, None, inst.status, dropped=dropped,
            refusal=f"the new definition has no stage '{stage}'; say where it goes with "
                    f"--map {stage}=STAGE",
        )
    old_stage = old.stage(stage)
    reenter = target != stage or old_stage is None or old_stage.kind is not new_stage.kind
    record = inst.record
    missing = tuple(n for n in new_stage.required_fields
                    if record.get(n) in (None, "") and (
                        reenter or old_stage is None or n not in old_stage.required_fields))
    return MigrationPlan(inst.id, stage, target, inst.status, reenter=reenter,
                         dropped=dropped, now_required=missing)


def migrate(
    old: Process,
    new: Process,
    inst: Instance,
    the_plan: MigrationPlan,
    ctx: Context,
    *,
    new_digest: str,
    mapping: Mapping[str, str],
) -> Transition:
    """Move ``inst`` onto ``new`` as ``the_plan`` says (``Refused`` if it cannot)."""
    if the_plan.refusal is not None or the_plan.skipped is not None:
        raise Refused(f"{inst.id} cannot move: {the_plan.refusal or the_plan.skipped}")
    if the_plan.already:
        raise Refused(f"{inst.id} runs on that definition already")
    record = {k: v for k, v in inst.record.items() if k not in the_plan.dropped}
    run = Run(new, inst, ctx)
    run.set(definition_digest=new_digest, record=record)
    data: dict[str, Any] = {
        "from_definition": inst.definition_digest,
        "to_definition": new_digest,
        "from_stage": the_plan.from_stage,
        "to_stage": the_plan.to_stage,
        "map": dict(mapping),
    }
    if the_plan.dropped:
        data["dropped_fields"] = {k: inst.record.get(k) for k in the_plan.dropped}
    if the_plan.now_required:
        data["now_required"] = list(the_plan.now_required)
    stage = new.stage(the_plan.to_stage or "")
    assert stage is not None  # the plan checked it
    if the_plan.reenter:
        run.emit(MIGRATED, stage=the_plan.from_stage, data=data)
        enter(run, stage.id)
        return run.done()
    due, timers = _sla_again(run, old, stage)
    run.set(due_at=due, timers=timers)
    if due != inst.due_at:
        data["due_at"] = due
    run.emit(MIGRATED, stage=stage.id, data=data)
    return run.done()


def _sla_again(run: Run, old: Process, stage: Stage) -> tuple[str | None, tuple[Timer, ...]]:
    """The stage's due time and SLA timers under the new definition, counted
    from when the stage was entered; the instance's other timers (waits,
    delayed tasks) stay. An escalation level the old definition had already
    fired (no longer pending, its time past) is not fired again."""
    inst = run.inst
    others = tuple(t for t in inst.timers if t.kind not in (DUE, ESCALATION) or t.stage != stage.id)
    pending = {(t.kind, t.index) for t in inst.timers
               if t.kind in (DUE, ESCALATION) and t.stage == stage.id}
    sla = stage.sla
    if sla is None:
        return None, others
    entered = parse_time(inst.entered_at) if inst.entered_at else run.ctx.now
    now = run.ctx.at
    had_sla = (old.stage(stage.id) or stage).sla is not None

    def keep(kind: str, index: int, at: str) -> bool:
        return at > now or (kind, index) in pending or not had_sla

    due = iso(later(run.process, entered, sla.within, sla.business_hours))
    timers = list(others)
    if keep(DUE, 0, due):
        timers.append(Timer(DUE, due, stage.id, 0, run.key(DUE, stage.id)))
    for i, e in enumerate(sla.escalations):
        at = iso(later(run.process, entered, e.after, sla.business_hours))
        if keep(ESCALATION, i, at):
            timers.append(Timer(ESCALATION, at, stage.id, i, run.key(ESCALATION, stage.id, i)))
    return due, tuple(timers)

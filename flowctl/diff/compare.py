"""Two versions of one process -> the list of what changed, in reviewer's words.

Everything is matched by id (stages, phases, fields), by name (results) or by
target (decision branches), never by position, so moving a stage in the
file, reformatting or editing comments changes nothing here.

Each :class:`Change` says what it is (``what``, a stable code), where
(``element``, and ``stage`` when it belongs to one), old and new values as
text, a sentence for a reviewer, whether it changes behaviour (a name,
label or description does not) and, when it loosens what the process
enforces, ``weakens`` with the reason (an approval removed or made
avoidable, approvers widened, a policy relaxed, a threshold moved so fewer
cases are checked, an SLA lengthened or dropped, an escalation dropped, a
reject path removed, a required field no longer required, wider starters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from msgspec import Struct, field

from flowctl.definition.conditions import Compare, ConditionError, Field, Literal, parse
from flowctl.definition.durations import DurationError, parse_duration
from flowctl.model import (
    ApprovalPolicy,
    Assignee,
    Escalation,
    FieldDef,
    Process,
    Result,
    Sla,
    Stage,
    StageKind,
    Starters,
)


class Change(Struct, frozen=True):
    what: str  # stable code: stage-added, result-retargeted, sla-changed...
    element: str  # "stage manager-review", "field amount", "process"...
    message: str  # the sentence a reviewer reads
    stage: str | None = None  # the stage it belongs to, if any
    old: str | None = None
    new: str | None = None
    behaviour: bool = True  # False: wording only (names, labels, descriptions)
    weakens: str | None = None  # why it weakens control, when it does


class ProcessDiff(Struct):
    """What changed in one process. ``status``: ``changed`` (or unchanged:
    no changes at all), ``added`` or ``removed``."""

    process: str
    status: str
    old_source: str | None = None
    new_source: str | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def behaviour_changed(self) -> bool:
        return self.status != "changed" or any(c.behaviour for c in self.changes)

    @property
    def weakening(self) -> list[Change]:
        return [c for c in self.changes if c.weakens]

    def stages_touched(self) -> dict[str, str]:
        """Each old stage that changes (``changed``) or disappears (``removed``)
        in behaviour: where running work is affected."""
        out: dict[str, str] = {}
        for c in self.changes:
            if c.stage is None or not c.behaviour:
                continue
            if c.what == "stage-removed":
                out[c.stage] = "removed"
            elif c.what != "stage-added":
                out.setdefault(c.stage, "changed")
        return out


def added(process: Process, source: str | None = None) -> ProcessDiff:
    """A process that did not exist before."""
    return ProcessDiff(process.id, "added", None, source, [Change(
        "process-added", "process", f"new process '{process.id}' ({process.name}) with "
        f"{_count(len(process.stages), 'stage')}")])


def removed(process: Process, source: str | None = None) -> ProcessDiff:
    """A process that no longer exists."""
    return ProcessDiff(process.id, "removed", source, None, [Change(
        "process-removed", "process", f"process '{process.id}' ({process.name}) removed: "
        "no new instance can start", weakens=None)])


def compare(old: Process, new: Process) -> ProcessDiff:
    """Every change from ``old`` to ``new`` (the same process id), in a stable
    order: the process, its starters and calendar, fields, phases, then stages
    in the new version's order, then removed stages in the old one's."""
    out: list[Change] = []
    _process(old, new, out)
    _starters(old.starters, new.starters, out)
    _calendar(old, new, out)
    _fields(old, new, out)
    _phases(old, new, out)
    _stages(old, new, out)
    _avoidable_approvals(old, new, out)
    return ProcessDiff(new.id, "changed", old.source or None, new.source or None, out)


# --------------------------------------------------------------------------- helpers


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _q(text: object) -> str:
    return f"'{text}'"


def _list(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "none"


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text).approx()  # months as 30.44 days: for comparing
    except DurationError:
        return None


def _describe(a: Assignee | None) -> str:
    return a.describe() if a is not None else "nobody named"


# --------------------------------------------------------------------------- process


def _process(old: Process, new: Process, out: list[Change]) -> None:
    if old.name != new.name:
        out.append(Change("process-renamed", "process", f"process renamed {_q(old.name)} -> "
                          f"{_q(new.name)}", old=old.name, new=new.name, behaviour=False))
    if old.description != new.description:
        out.append(Change("process-description", "process", "description changed",
                          old=old.description, new=new.description, behaviour=False))
    if old.subject != new.subject:
        out.append(Change("process-subject", "process", f"subject {old.subject or 'none'} -> "
                          f"{new.subject or 'none'}", old=old.subject, new=new.subject))


def _starters_text(s: Starters) -> str:
    if s.anyone:
        return "anyone"
    parts = [*(f"department {d}" for d in s.departments), *(f"role {r}" for r in s.roles),
             *(f"user {u}" for u in s.users)]
    return ", ".join(parts) + (" (direct members only)" if s.exact and s.departments else "")


def _starters(old: Starters, new: Starters, out: list[Change]) -> None:
    if old == new:
        return
    a, b = _starters_text(old), _starters_text(new)
    weakens = None
    if new.anyone and not old.anyone:
        weakens = "anyone may now start it"
    else:
        wider = (set(new.departments) - set(old.departments)) | (set(new.roles) - set(old.roles)) \
            | (set(new.users) - set(old.users))
        if wider and not old.anyone:
            weakens = "more people may start it: " + ", ".join(sorted(wider))
        elif old.exact and not new.exact and new.departments:
            weakens = "members of sub-departments may now start it"
    out.append(Change("starters-changed", "starters", f"who may start it: {a} -> {b}",
                      old=a, new=b, weakens=weakens))


def _calendar(old: Process, new: Process, out: list[Change]) -> None:
    a, b = old.calendar, new.calendar
    if a is None and b is None:
        return
    parts = []
    if a is None or b is None:
        parts.append("calendar added" if a is None else "calendar removed")
    else:
        for name in ("timezone", "workdays", "hours", "holidays"):
            x, y = getattr(a, name), getattr(b, name)
            if x != y:
                x = ", ".join(x) if isinstance(x, tuple) else x
                y = ", ".join(y) if isinstance(y, tuple) else y
                parts.append(f"{name} {x or 'none'} -> {y or 'none'}")
    if parts:
        out.append(Change("calendar-changed", "calendar", "business-hours calendar: "
                          + "; ".join(parts)))


# --------------------------------------------------------------------------- fields


def _field_type(f: FieldDef) -> str:
    return f.type.value


def _limits(f: FieldDef) -> str:
    lo = "" if f.minimum is None else f"{f.minimum:g}"
    hi = "" if f.maximum is None else f"{f.maximum:g}"
    return f"{lo or '-inf'}..{hi or 'inf'}" if (lo or hi) else "no limits"


def _fields(old: Process, new: Process, out: list[Change]) -> None:
    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    for name, f in after.items():
        el = f"field {name}"
        o = before.get(name)
        if o is None:
            out.append(Change("field-added", el, f"new field '{name}' ({_field_type(f)})",
                              new=_field_type(f)))
            continue
        if o.type != f.type:
            out.append(Change("field-type", el, f"field '{name}' type {o.type.value} -> "
                              f"{f.type.value}", old=o.type.value, new=f.type.value))
        if o.values != f.values:
            gone = [v for v in o.values if v not in f.values]
            new_values = [v for v in f.values if v not in o.values]
            parts = []
            if new_values:
                parts.append("allows " + ", ".join(new_values))
            if gone:
                parts.append("no longer allows " + ", ".join(gone))
            if not parts:
                parts.append("values reordered")
            out.append(Change("field-values", el, f"field '{name}' " + "; ".join(parts),
                              old=", ".join(o.values), new=", ".join(f.values),
                              behaviour=bool(gone or new_values)))
        if (o.minimum, o.maximum) != (f.minimum, f.maximum):
            looser = ((o.minimum is not None and (f.minimum is None or f.minimum < o.minimum))
                      or (o.maximum is not None and (f.maximum is None or f.maximum > o.maximum)))
            out.append(Change("field-limits", el, f"field '{name}' limits {_limits(o)} -> "
                              f"{_limits(f)}", old=_limits(o), new=_limits(f),
                              weakens="accepts values it refused before" if looser else None))
        if o.label != f.label:
            out.append(Change("field-label", el, f"field '{name}' label {_q(o.label or name)} -> "
                              f"{_q(f.label or name)}", old=o.label, new=f.label,
                              behaviour=False))
    for name, o in before.items():
        if name not in after:
            out.append(Change("field-removed", f"field {name}", f"field '{name}' removed",
                              old=_field_type(o)))


def _phases(old: Process, new: Process, out: list[Change]) -> None:
    before = {p.id: p for p in old.phases}
    after = {p.id: p for p in new.phases}
    for pid, p in after.items():
        o = before.get(pid)
        if o is None:
            out.append(Change("phase-added", f"phase {pid}", f"new phase '{pid}' ({p.name})",
                              new=p.name, behaviour=False))
        elif o.name != p.name:
            out.append(Change("phase-renamed", f"phase {pid}", f"phase '{pid}' renamed "
                              f"{_q(o.name)} -> {_q(p.name)}", old=o.name, new=p.name,
                              behaviour=False))
    for pid, o in before.items():
        if pid not in after:
            out.append(Change("phase-removed", f"phase {pid}", f"phase '{pid}' ({o.name}) "
                              "removed", old=o.name, behaviour=False))
    if [p for p in old.phases if p.id in after] != [p for p in new.phases if p.id in before]:
        if [p.id for p in old.phases if p.id in after] != [p.id for p in new.phases
                                                            if p.id in before]:
            out.append(Change("phase-order", "phases", "phases reordered: "
                              + ", ".join(p.id for p in new.phases), behaviour=False))


# --------------------------------------------------------------------------- stages


def _stages(old: Process, new: Process, out: list[Change]) -> None:
    before = {s.id: s for s in old.stages}
    after = {s.id: s for s in new.stages}
    for s in new.stages:
        o = before.get(s.id)
        if o == s:
            continue  # the same, in the same place: nothing to compare
        if o is None:
            out.append(Change("stage-added", f"stage {s.id}", f"new {s.kind.value} stage "
                              f"'{s.id}' ({s.label})", stage=s.id, new=s.kind.value))
        else:
            _stage(o, s, old, new, out)
    for o in old.stages:
        if o.id not in after:
            weakens = (f"approval '{o.id}' ({', '.join(a.describe() for a in o.approvers)}) "
                       "no longer exists" if o.kind is StageKind.APPROVAL else None)
            out.append(Change("stage-removed", f"stage {o.id}", f"{o.kind.value} stage '{o.id}' "
                              f"({o.label}) removed", stage=o.id, old=o.kind.value,
                              weakens=weakens))


def _stage(o: Stage, s: Stage, old: Process, new: Process, out: list[Change]) -> None:
    el, sid = f"stage {s.id}", s.id

    def add(what: str, message: str, *, old_v: str | None = None, new_v: str | None = None,
            behaviour: bool = True, weakens: str | None = None) -> None:
        out.append(Change(what, el, f"stage '{sid}': {message}", stage=sid, old=old_v,
                          new=new_v, behaviour=behaviour, weakens=weakens))

    if o.kind is not s.kind:
        add("stage-kind", f"kind {o.kind.value} -> {s.kind.value}", old_v=o.kind.value,
            new_v=s.kind.value, weakens=(f"approval '{sid}' is now a {s.kind.value}"
                                         if o.kind is StageKind.APPROVAL else None))
    if o.name != s.name:
        add("stage-renamed", f"renamed {_q(o.label)} -> {_q(s.label)}", old_v=o.label,
            new_v=s.label, behaviour=False)
    if o.description != s.description:
        add("stage-description", "description changed", old_v=o.description,
            new_v=s.description, behaviour=False)
    if o.phase != s.phase:
        add("stage-phase", f"moved from phase {o.phase or 'none'} to {s.phase or 'none'}",
            old_v=o.phase, new_v=s.phase)
    if o.start != s.start:
        add("stage-start", "is now the start stage" if s.start else "is no longer the start "
            "stage", old_v=str(o.start).lower(), new_v=str(s.start).lower())
    if o.assignee != s.assignee and _strip(o.assignee) != _strip(s.assignee):
        add("assignee", f"assignee {_describe(o.assignee)} -> {_describe(s.assignee)}",
            old_v=_describe(o.assignee), new_v=_describe(s.assignee))
    _approvals(o, s, add)
    _fields_of(o.required_fields, s.required_fields, o.optional_fields, s.optional_fields,
               "fields", add)
    _results(o, s, add)
    _branches(o, s, old, new, add)
    _forks(o, s, add)
    _join(o, s, add)
    for attr, words in (("default", "default (else) branch"), ("next", "next stage"),
                        ("wait_for", "waits for"), ("wait_until", "waits until field"),
                        ("process", "subprocess starts"), ("outcome", "outcome")):
        a, b = getattr(o, attr), getattr(s, attr)
        if a != b:
            what = {"process": "subprocess-link", "default": "default-retargeted",
                    "next": "next-retargeted"}.get(attr, attr.replace("_", "-"))
            add(what, f"{words} {a or 'none'} -> {b or 'none'}", old_v=a, new_v=b)
    if o.inputs != s.inputs:
        a_in, b_in = _pairs(o.inputs), _pairs(s.inputs)
        add("subprocess-inputs", f"subprocess inputs {a_in} -> {b_in}", old_v=a_in, new_v=b_in)
    if o.wait_child != s.wait_child:
        add("subprocess-wait", "waits for the child process to end" if s.wait_child
            else "no longer waits for the child process to end",
            old_v=str(o.wait_child).lower(), new_v=str(s.wait_child).lower())
    _sla(o.sla, s.sla, add)
    if _strip_all(o.tasks) != _strip_all(s.tasks):
        add("tasks", f"tasks {_list(t.id for t in o.tasks)} -> {_list(t.id for t in s.tasks)}",
            old_v=_list(t.id for t in o.tasks), new_v=_list(t.id for t in s.tasks))
    if _strip_all(o.events) != _strip_all(s.events):
        add("events", f"events {_list(e.type for e in o.events)} -> "
            f"{_list(e.type for e in s.events)}", old_v=_list(e.type for e in o.events),
            new_v=_list(e.type for e in s.events))


def _pairs(inputs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{child}={parent}" for child, parent in inputs) or "none"


def _strip(value: object) -> object:
    """A model record without its ``path`` (where it sat in the file)."""
    if value is None or not hasattr(value, "__struct_fields__"):
        return value
    return tuple((name, _strip_all(getattr(value, name)) if isinstance(getattr(value, name),
                                                                       tuple)
                  else _strip(getattr(value, name)))
                 for name in value.__struct_fields__ if name != "path")


def _strip_all(values: Sequence[object]) -> tuple[object, ...]:
    return tuple(_strip(v) for v in values)


class _Add(Protocol):  # the type of the ``add`` closure of ``_stage``
    def __call__(self, what: str, message: str, *, old_v: str | None = None,
                 new_v: str | None = None, behaviour: bool = True,
                 weakens: str | None = None) -> None: ...


def _approvals(o: Stage, s: Stage, add: _Add) -> None:
    if s.kind is not StageKind.APPROVAL and o.kind is not StageKind.APPROVAL:
        return
    a = [x.describe() for x in o.approvers]
    b = [x.describe() for x in s.approvers]
    if set(a) != set(b) and o.kind is s.kind:
        more, fewer = [x for x in b if x not in a], [x for x in a if x not in b]
        weakens = None
        if more and s.policy is not ApprovalPolicy.ALL:
            weakens = "more people may approve alone: " + ", ".join(more)
        elif fewer and s.policy is ApprovalPolicy.ALL:
            weakens = "fewer signatures are needed: " + ", ".join(fewer) + " no longer signs"
        add("approvers", f"approvers {_list(a)} -> {_list(b)}", old_v=_list(a), new_v=_list(b),
            weakens=weakens)
    if o.policy is not s.policy and o.kind is s.kind:
        weakens = None
        if o.policy is ApprovalPolicy.ALL and len(s.approvers) > 1:
            weakens = "one approver now decides where all had to sign"
        add("approval-policy", f"approval policy {o.policy.value} -> {s.policy.value}",
            old_v=o.policy.value, new_v=s.policy.value, weakens=weakens)
    if o.excludes_initiator != s.excludes_initiator:
        add("initiator-excluded", "the initiator may now act here" if not s.excludes_initiator
            else "the initiator may no longer act here",
            weakens=("the initiator may approve their own request"
                     if not s.excludes_initiator and s.kind is StageKind.APPROVAL else None))
    if set(o.exclude) - {"initiator"} != set(s.exclude) - {"initiator"}:
        a_ex, b_ex = sorted(set(o.exclude) - {"initiator"}), sorted(set(s.exclude) - {"initiator"})
        add("excluded", f"excluded {_list(a_ex)} -> {_list(b_ex)}", old_v=_list(a_ex),
            new_v=_list(b_ex), weakens=(f"{', '.join(sorted(set(a_ex) - set(b_ex)))} may now "
                                        "act here" if set(a_ex) - set(b_ex) else None))


def _fields_of(req_a: Sequence[str], req_b: Sequence[str], opt_a: Sequence[str],
               opt_b: Sequence[str], where: str, add: _Add, what: str = "stage-fields") -> None:
    if set(req_a) == set(req_b) and set(opt_a) == set(opt_b):
        return
    parts = []
    weak = []
    for f in req_b:
        if f not in req_a:
            parts.append(f"{f} now required")
    for f in req_a:
        if f not in req_b:
            parts.append(f"{f} " + ("now optional" if f in opt_b else "no longer asked for"))
            weak.append(f)
    for f in opt_b:
        if f not in opt_a and f not in req_a:
            parts.append(f"{f} may now be set")
    for f in opt_a:
        if f not in opt_b and f not in req_b:
            parts.append(f"{f} may no longer be set")
    add(what, f"{where}: " + "; ".join(parts),
        old_v=f"required: {_list(req_a)}; optional: {_list(opt_a)}",
        new_v=f"required: {_list(req_b)}; optional: {_list(opt_b)}",
        weakens=f"no longer required: {', '.join(weak)}" if weak else None)


_REJECTS = ("reject", "decline", "deny", "refuse", "return", "send-back")


def _is_reject(stage: Stage, r: Result) -> bool:
    return r.name.startswith(_REJECTS) or (stage.kind is StageKind.APPROVAL
                                           and r.name != "approve")


def _results(o: Stage, s: Stage, add: _Add) -> None:
    before = {r.name: r for r in o.results}
    after = {r.name: r for r in s.results}
    for name, r in after.items():
        x = before.get(name)
        if x is None:
            add("result-added", f"new result '{name}' -> {r.to}", new_v=r.to)
            continue
        if x.to != r.to:
            add("result-retargeted", f"result '{name}' now leads to {r.to} (was {x.to})",
                old_v=x.to, new_v=r.to)
        _fields_of(x.required, r.required, x.optional, r.optional, f"result '{name}' fields",
                   add, "result-fields")
        if x.label != r.label:
            add("result-label", f"result '{name}' label {_q(x.label or name)} -> "
                f"{_q(r.label or name)}", old_v=x.label, new_v=r.label, behaviour=False)
    for name, x in before.items():
        if name not in after:
            weakens = (f"'{name}' was a way to say no here" if _is_reject(o, x)
                       and s.kind is not StageKind.END else None)
            add("result-removed", f"result '{name}' (-> {x.to}) removed", old_v=x.to,
                weakens=weakens)


def _threshold(text: str) -> tuple[str, str, float] | None:
    """``record.amount > 100000`` -> ("amount", ">", 100000.0); None for anything else."""
    try:
        root = parse(text).root
    except ConditionError:
        return None
    if not isinstance(root, Compare) or root.op not in ("<", "<=", ">", ">="):
        return None
    left, right, op = root.left, root.right, root.op
    if isinstance(left, Literal) and isinstance(right, Field):
        left, right = right, left
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
    if isinstance(left, Field) and isinstance(right, Literal) \
            and isinstance(right.value, int | float) and not isinstance(right.value, bool):
        return left.name, op, float(right.value)
    return None


def _reach(proc: Process, roots: Iterable[str], blocked: set[str]) -> set[str]:
    """The stages reachable from ``roots`` without entering ``blocked``."""
    graph = {st.id: [t for t, _ in st.targets()] for st in proc.stages}
    seen: set[str] = set()
    todo = [r for r in roots if r not in blocked]
    while todo:
        sid = todo.pop()
        if sid in seen:
            continue
        seen.add(sid)
        todo += [t for t in graph.get(sid, []) if t not in blocked and t not in seen]
    return seen


def _approvals_behind(proc: Process, decision: str, to: str) -> set[str]:
    """The approvals a decision's branch to ``to`` sends a case through that its
    default does not: reached from ``to`` without going back through the
    decision or into the stages before it (a reject loop back to the start)."""
    st = proc.stage(decision)
    before = _reach(proc, [s.id for s in proc.start_stages], {decision})
    blocked = before | {decision}
    via = _reach(proc, [to], blocked)
    other = _reach(proc, [st.default], blocked) if st is not None and st.default else set()
    return {sid for sid in via - other
            if (x := proc.stage(sid)) is not None and x.kind is StageKind.APPROVAL}


def _branches(o: Stage, s: Stage, old: Process, new: Process, add: _Add) -> None:
    if not (o.branches or s.branches):
        return
    before = {b.to: b for b in o.branches}
    after = {b.to: b for b in s.branches}
    for to, b in after.items():
        x = before.get(to)
        if x is None:
            add("branch-added", f"new branch when {b.when} -> {to}", new_v=b.when)
        elif " ".join(x.when.split()) != " ".join(b.when.split()):
            add("branch-condition", f"branch to {to}: condition {x.when} -> {b.when}",
                old_v=x.when, new_v=b.when, weakens=_narrower(x.when, b.when, to, s, new))
    for to, x in before.items():
        if to not in after:
            control = _approvals_behind(old, o.id, to)
            add("branch-removed", f"branch when {x.when} -> {to} removed", old_v=x.when,
                weakens=(f"no case is sent to {to} any more" if control else None))
    order_a = [b.to for b in o.branches if b.to in after]
    order_b = [b.to for b in s.branches if b.to in before]
    if order_a != order_b:
        add("branch-order", "branches are tried in a new order (the first that holds wins): "
            f"{', '.join(order_a)} -> {', '.join(order_b)}", old_v=", ".join(order_a),
            new_v=", ".join(order_b))


def _forks(o: Stage, s: Stage, add: _Add) -> None:
    """A parallel stage's branches, by name: added, removed, started elsewhere,
    started on another condition."""
    if not (o.forks or s.forks):
        return
    before = {b.name: b for b in o.forks}
    after = {b.name: b for b in s.forks}
    for name, b in after.items():
        x = before.get(name)
        if x is None:
            when = f" when {b.when}" if b.when else ""
            add("parallel-branch-added", f"new parallel branch {name}{when} -> {b.to}",
                new_v=b.when)
            continue
        if x.to != b.to:
            add("parallel-branch-retargeted", f"parallel branch {name} starts at {b.to}"
                f" (was {x.to})", old_v=x.to, new_v=b.to)
        if " ".join((x.when or "").split()) != " ".join((b.when or "").split()):
            add("parallel-branch-condition", f"parallel branch {name}: condition"
                f" {x.when or 'none (always)'} -> {b.when or 'none (always)'}",
                old_v=x.when, new_v=b.when, weakens=_fewer_start(x.when, b.when, name))
    for name, x in before.items():
        if name not in after:
            add("parallel-branch-removed", f"parallel branch {name} (-> {x.to}) removed",
                old_v=x.when, weakens=f"the branch {name} ({x.to}) no longer runs")


def _fewer_start(a: str | None, b: str | None, name: str) -> str | None:
    """Why parallel branch ``name`` now starts in fewer cases: a condition
    where there was none, or its threshold moved that way."""
    if a is None and b is not None:
        return f"the branch {name} ran always; now only when {b}"
    ta, tb = _threshold(a or ""), _threshold(b or "")
    if ta is None or tb is None or ta[:2] != tb[:2]:
        return None
    field, op, x = ta
    y = tb[2]
    if not (y > x if op in (">", ">=") else y < x):
        return None
    return f"threshold on {field} moved from {x:g} to {y:g}: the branch {name} runs in fewer cases"


def _join(o: Stage, s: Stage, add: _Add) -> None:
    """A join's fork, what completes it, what a branch's end does."""
    if o.kind is not StageKind.JOIN or s.kind is not StageKind.JOIN:
        return
    if o.fork != s.fork:
        add("join-fork", f"joins the branches of {s.fork} (was {o.fork})", old_v=o.fork,
            new_v=s.fork)
    if o.complete != s.complete:
        wanted = {"all": 1000, "any": 1}
        fewer = wanted.get(s.complete, 0) or int(s.complete)
        more = wanted.get(o.complete, 0) or int(o.complete)
        add("join-complete", f"complete when {o.complete} -> {s.complete} branches",
            old_v=o.complete, new_v=s.complete,
            weakens=(f"fewer branches must finish ({s.complete}, was {o.complete}); the"
                     " others are cancelled" if fewer < more else None))
    if o.on_reject != s.on_reject:
        add("join-on-reject", f"on_reject {o.on_reject.value} -> {s.on_reject.value}",
            old_v=o.on_reject.value, new_v=s.on_reject.value)


def _narrower(a: str, b: str, to: str, s: Stage, new: Process) -> str | None:
    """Why the branch to ``to`` now catches fewer cases, when it leads to a check
    (an approval the default does not reach) and its threshold moved that way."""
    ta, tb = _threshold(a), _threshold(b)
    if ta is None or tb is None or ta[:2] != tb[:2]:
        return None
    name, op, x = ta
    y = tb[2]
    fewer = y > x if op in (">", ">=") else y < x
    if not fewer:
        return None
    checks = _approvals_behind(new, s.id, to)
    if not checks:
        return None
    return (f"threshold on {name} moved from {x:g} to {y:g}: fewer cases go to "
            f"{', '.join(sorted(checks))}")


def _sla_text(sla: Sla | None) -> str:
    if sla is None:
        return "none"
    return sla.within + (" (business hours)" if sla.business_hours else "")


def _esc_text(e: Escalation) -> str:
    to = f" {e.to.describe()}" if e.to is not None else ""
    res = f" {e.result}" if e.result else ""
    return f"after {e.after}: {e.action.value}{to}{res}"


def _sla(a: Sla | None, b: Sla | None, add: _Add) -> None:
    if _strip(a) == _strip(b):
        return
    if (a is None) != (b is None) or (a and b and (a.within, a.business_hours)
                                      != (b.within, b.business_hours)):
        weakens = None
        if b is None:
            weakens = "the stage has no due time any more"
        elif a is not None:
            da, db = _duration(a.within), _duration(b.within)
            if da is not None and db is not None and db > da:
                weakens = f"SLA lengthened from {a.within} to {b.within}"
            elif a.business_hours is False and b.business_hours and b.within == a.within:
                weakens = "SLA now counts business hours only (later due times)"
        add("sla", f"SLA {_sla_text(a)} -> {_sla_text(b)}", old_v=_sla_text(a),
            new_v=_sla_text(b), weakens=weakens)
    ea = [_esc_text(e) for e in (a.escalations if a else ())]
    eb = [_esc_text(e) for e in (b.escalations if b else ())]
    if ea != eb:
        gone = [e for e in ea if e not in eb]
        add("escalations", f"escalations {_list(ea)} -> {_list(eb)}", old_v="; ".join(ea),
            new_v="; ".join(eb), weakens=("escalation removed: " + "; ".join(gone)
                                          if gone and b is not None and len(eb) <= len(ea)
                                          else None))


# --------------------------------------------------------------------------- control


def _unavoidable(proc: Process) -> set[str]:
    """Approval stages every way from the start to an approving or completing
    end passes through."""
    starts = [s.id for s in proc.start_stages]
    goals = {s.id for s in proc.stages if s.kind is StageKind.END
             and s.outcome not in ("rejected", "cancelled")}
    graph = {st.id: [t for t, _ in st.targets()] for st in proc.stages}
    out: set[str] = set()
    for st in proc.stages:
        if st.kind is not StageKind.APPROVAL:
            continue
        seen: set[str] = set()
        todo = [s for s in starts if s != st.id]
        while todo:
            sid = todo.pop()
            if sid in seen:
                continue
            seen.add(sid)
            todo += [t for t in graph.get(sid, []) if t != st.id and t not in seen]
        if not seen & goals:
            out.add(st.id)
    return out


def _edges(proc: Process) -> dict[str, tuple[tuple[str, ...], str]]:
    return {s.id: (tuple(t for t, _ in s.targets()), s.kind.value + str(s.outcome))
            for s in proc.stages}


def _avoidable_approvals(old: Process, new: Process, out: list[Change]) -> None:
    if _edges(old) == _edges(new) and [s.id for s in old.start_stages] == \
            [s.id for s in new.start_stages]:
        return  # the same ways through the same kinds of stages
    now = _unavoidable(new)
    for sid in sorted(_unavoidable(old) - now):
        s = new.stage(sid)
        if s is None or s.kind is not StageKind.APPROVAL:
            continue  # reported as removed or changed in kind
        out.append(Change("approval-optional", f"stage {sid}", f"stage '{sid}': approval can "
                          "now be bypassed on the way to an end", stage=sid,
                          weakens=f"approval '{sid}' was on every way to an end; now a way "
                          "avoids it"))


# --------------------------------------------------------------------------- work in flight


def _fits(fd: FieldDef, value: Any) -> str | None:
    """Why ``value`` (as an instance keeps it) does not fit field ``fd``, if it does not."""
    if value is None:
        return None
    t = fd.type.value
    if t in ("string", "text", "date", "datetime", "user", "enum") and not isinstance(value, str):
        return f"{fd.name} holds {value!r}, not a {t}"
    if t == "boolean" and not isinstance(value, bool):
        return f"{fd.name} holds {value!r}, not true or false"
    if t in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (t == "integer" and isinstance(value, float) and not value.is_integer()):
            return f"{fd.name} holds {value!r}, not an {t}" if t == "integer" else \
                f"{fd.name} holds {value!r}, not a number"
        if fd.minimum is not None and value < fd.minimum:
            return f"{fd.name} = {value:g} is below the new minimum {fd.minimum:g}"
        if fd.maximum is not None and value > fd.maximum:
            return f"{fd.name} = {value:g} is above the new maximum {fd.maximum:g}"
    if t == "enum" and value not in fd.values:
        return f"{fd.name} = {value} is no longer one of {', '.join(fd.values)}"
    return None


def blockers(stage: str | None, kind: str | None, record: dict[str, Any],
             new: Process) -> list[str]:
    """Why a running instance at ``stage`` (of ``kind`` in the definition it runs
    on) holding ``record`` could not continue on ``new`` as it is: its stage is
    gone or of another kind, or a value it holds has no field or does not fit."""
    out: list[str] = []
    target = new.stage(stage) if stage is not None else None
    if stage is not None and target is None:
        out.append(f"stage '{stage}' no longer exists")
    elif target is not None and kind is not None and target.kind.value != kind:
        out.append(f"stage '{stage}' is now a {target.kind.value}, not a {kind}")
    for name in sorted(record):
        fd = new.field(name)
        if fd is None:
            out.append(f"field '{name}' no longer exists")
            continue
        why = _fits(fd, record[name])
        if why:
            out.append(why)
    return out

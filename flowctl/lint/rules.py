"""Semantic rules over loaded definitions -> diagnostics (pure, no I/O).

The loader and the schema check have already put their diagnostics on each
document; the rules here run on every process that passed them, with the org
directory and the other linted processes as context. See ``flowctl.lint.codes``
for the codes and ``docs/rules.md`` for examples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from msgspec import Struct, field

from flowctl.definition import conditions, templates
from flowctl.definition.document import Document
from flowctl.definition.durations import (
    Duration,
    DurationError,
    parse_date_limit,
    parse_duration,
)
from flowctl.definition.files import DefinitionSet
from flowctl.definition.formats import FORMATS, format_ok, pattern_ok
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.lint.codes import rule
from flowctl.model import (
    ACTOR,
    BUSINESS_HOURS,
    INITIATOR,
    NOW,
    ApprovalPolicy,
    Assignee,
    EscalationAction,
    FieldDef,
    FieldType,
    FieldValue,
    NotifySpec,
    OrgDirectory,
    Path,
    Process,
    Stage,
    StageKind,
    User,
)

DATE_TYPES = (FieldType.DATE, FieldType.DATETIME)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _suggest(name: str, known: Iterable[str]) -> str:
    import difflib  # only for a name that is not known

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _known(names: Iterable[str], limit: int = 12) -> str:
    items = sorted(set(names))
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class ProcessSignature(Struct, frozen=True):
    """What a parent's subprocess stage needs to know of a child process."""

    id: str
    fields: tuple[str, ...]  # field names
    ends: tuple[str, ...]  # ids of the end stages, in order

    @classmethod
    def of(cls, proc: Process) -> ProcessSignature:
        return cls(
            proc.id,
            tuple(f.name for f in proc.fields),
            tuple(s.id for s in proc.stages if s.kind is StageKind.END),
        )


class Context(Struct):
    doc: Document
    proc: Process
    org: OrgDirectory | None
    catalog: Mapping[str, ProcessSignature]
    out: list[Diagnostic] = field(default_factory=list)

    def emit(self, code: str, path: Path, message: str, *, at_key: bool = False) -> None:
        line, col = self.doc.positions.key(path) if at_key else self.doc.positions.at(path)
        self.out.append(
            Diagnostic(self.doc.path, line, col, code, message, rule(code).severity)
        )

    def emit_at(self, code: str, line: int, col: int, message: str) -> None:
        self.out.append(Diagnostic(self.doc.path, line, col, code, message, rule(code).severity))


# --------------------------------------------------------------------------- structure


def check_starts_and_ends(ctx: Context) -> None:
    starts = ctx.proc.start_stages
    if not starts:
        first = ctx.proc.stages[0].id if ctx.proc.stages else None
        hint = f"; mark the first stage with `start: true` ('{first}'?)" if first else ""
        ctx.emit("FL201", ("stages",), f"process '{ctx.proc.id}' has no start stage{hint}",
                 at_key=True)
    for extra in starts[1:]:
        ctx.emit(
            "FL202", (*extra.path, "start"),
            f"stage '{extra.id}' is a second start stage; '{starts[0].id}' already starts "
            "the process, and a process has exactly one start", at_key=True,
        )
    if not any(s.kind is StageKind.END for s in ctx.proc.stages):
        ctx.emit("FL203", ("stages",),
                 f"process '{ctx.proc.id}' has no end stage; add a stage with `kind: end`",
                 at_key=True)


def check_duplicate_ids(ctx: Context) -> None:
    def dupes(items: Iterable[tuple[str, Path]], what: str) -> None:
        first: dict[str, Path] = {}
        for ident, path in items:
            if ident in first:
                line, _ = ctx.doc.positions.at(first[ident])
                ctx.emit("FL209", path, f"duplicate {what} id '{ident}' (first defined on "
                         f"line {line})")
            else:
                first[ident] = path

    dupes(((s.id, (*s.path, "id")) for s in ctx.proc.stages), "stage")
    dupes(((p.id, (*p.path, "id")) for p in ctx.proc.phases), "phase")
    for s in ctx.proc.stages:
        dupes(((t.id, (*t.path, "id")) for t in s.tasks), f"task (in stage '{s.id}')")


def check_transitions(ctx: Context) -> None:
    ids = [s.id for s in ctx.proc.stages]
    for s in ctx.proc.stages:
        if s.kind is StageKind.END:
            if s.results or s.next is not None:
                where = (*s.path, "results") if s.results else (*s.path, "next")
                ctx.emit("FL208", where, f"end stage '{s.id}' has "
                         f"{'results' if s.results else 'a next stage'}; an end stage "
                         "finishes the instance, so nothing can follow it", at_key=True)
            continue
        for target, path in s.targets():
            if target not in ids:
                ctx.emit("FL204", path, f"stage '{s.id}' leads to unknown stage '{target}'"
                         f"{_suggest(target, ids)}")
        if not s.targets():
            ctx.emit("FL207", (*s.path, "id"), f"{s.kind.value} stage '{s.id}' has no way out: "
                     f"{_way_out_hint(s)}")


def _way_out_hint(s: Stage) -> str:
    return {
        StageKind.DECISION: "give it `branches` and a `default`",
        StageKind.WAIT: "give it `next`",
        StageKind.SUBPROCESS: "give it `results` (when it waits) or `next`",
    }.get(s.kind, "give it `results` that name the next stages")


def _edges(proc: Process) -> dict[str, list[str]]:
    ids = {s.id for s in proc.stages}
    graph: dict[str, list[str]] = {}
    for s in proc.stages:
        if s.kind is StageKind.END:
            graph.setdefault(s.id, [])
            continue
        graph.setdefault(s.id, []).extend(t for t, _ in s.targets() if t in ids)
    return graph


def _reach(graph: dict[str, list[str]], roots: Iterable[str]) -> set[str]:
    seen = set(roots)
    queue = deque(seen)
    while queue:
        for nxt in graph.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def check_reachability(ctx: Context) -> None:
    """Runs only when every transition names a known stage: a typo in one
    target (FL204) would otherwise cascade into unreachable-stage noise."""
    ids = {s.id for s in ctx.proc.stages}
    if any(t not in ids for s in ctx.proc.stages for t, _ in s.targets()):
        return
    starts = ctx.proc.start_stages
    graph = _edges(ctx.proc)
    if len(starts) == 1:
        reachable = _reach(graph, [starts[0].id])
        reported: set[str] = set()
        for s in ctx.proc.stages:
            if s.id not in reachable and s.id not in reported:
                reported.add(s.id)
                ctx.emit("FL205", (*s.path, "id"),
                         f"stage '{s.id}' cannot be reached from the start stage "
                         f"'{starts[0].id}'")
    reverse: dict[str, list[str]] = {}
    for src, targets in graph.items():
        for t in targets:
            reverse.setdefault(t, []).append(src)
    ends = [s.id for s in ctx.proc.stages if s.kind is StageKind.END]
    if not ends:
        return  # FL203 already says it
    can_finish = _reach(reverse, ends)
    for s in ctx.proc.stages:
        if s.id not in can_finish and s.targets():
            ctx.emit("FL206", (*s.path, "id"),
                     f"no end stage can be reached from stage '{s.id}': instances that "
                     "get there can never finish")


def check_automatic_cycles(ctx: Context) -> None:
    """Decisions only lead on to other stages; a loop made of decisions alone
    would spin forever without anyone being asked."""
    decisions = {s.id: s for s in ctx.proc.stages if s.kind is StageKind.DECISION}
    graph = {sid: [t for t, _ in s.targets() if t in decisions] for sid, s in decisions.items()}
    state: dict[str, int] = {}
    for root in decisions:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        trail: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                trail.append(node)
            if i < len(graph[node]):
                stack.append((node, i + 1))
                nxt = graph[node][i]
                if state.get(nxt) == 1:
                    loop = trail[trail.index(nxt):] + [nxt]
                    ctx.emit("FL223", (*decisions[nxt].path, "id"),
                             "decisions loop with no person in between: " + " -> ".join(loop))
                elif nxt not in state:
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                trail.pop()


def check_decisions(ctx: Context) -> None:
    for s in ctx.proc.stages:
        if s.kind is not StageKind.DECISION:
            continue
        if s.default is None:
            ctx.emit("FL210", (*s.path, "id"),
                     f"decision '{s.id}' has no `default`: when no branch matches, the "
                     "instance would have nowhere to go")
        targets = {b.to for b in s.branches} | ({s.default} if s.default else set())
        if s.default is not None and s.branches and len(targets) == 1:
            ctx.emit("FL219", (*s.path, "id"),
                     f"decision '{s.id}' leads to '{next(iter(targets))}' whatever the "
                     "record holds; replace it with a direct transition")
        elif not s.branches and s.default is not None:
            ctx.emit("FL219", (*s.path, "id"),
                     f"decision '{s.id}' has only a default branch; replace it with a "
                     "direct transition")
        for b in s.branches:
            check_condition(ctx, b.when, (*b.path, "when"))


def check_parallel(ctx: Context) -> None:
    """Parallel stages and joins: each fork has one join and each join a fork;
    every branch is a path of its own stages that reaches the join, and leads
    nowhere else but its own stages, the join or an end."""
    proc = ctx.proc
    stages = {s.id: s for s in proc.stages}
    forks = [s for s in proc.stages if s.kind is StageKind.PARALLEL]
    for j in proc.stages:
        if j.kind is not StageKind.JOIN:
            continue
        fork = stages.get(j.fork or "")
        if fork is None or fork.kind is not StageKind.PARALLEL:
            forks_ = [s.id for s in proc.stages if s.kind is StageKind.PARALLEL]
            what = (f"'{j.fork}' is a {fork.kind.value} stage, not a parallel one"
                    if fork is not None else f"there is no stage '{j.fork}'")
            ctx.emit("FL291", (*j.path, "fork"), f"join '{j.id}' has no fork ({what}): its"
                     " `fork` names the parallel stage whose branches meet there"
                     f"{_suggest(j.fork or '', forks_)}")
    owner: dict[str, tuple[str, str]] = {}  # stage -> (fork, branch) it belongs to
    main = _main_line(proc, stages)
    for p in forks:
        joins = [s for s in proc.stages if s.kind is StageKind.JOIN and s.fork == p.id]
        dupes = ((b.name, (*b.path, "name")) for b in p.forks)
        seen: dict[str, Path] = {}
        for name, path in dupes:
            if name in seen:
                ctx.emit("FL209", path, f"duplicate branch name '{name}' in '{p.id}'")
            seen[name] = path
        for b in p.forks:
            if b.when is not None:
                check_condition(ctx, b.when, (*b.path, "when"))
        if len(joins) != 1:
            msg = (f"parallel stage '{p.id}' has no join: add a stage with `kind: join` and"
                   f" `fork: {p.id}` where its branches meet" if not joins else
                   f"parallel stage '{p.id}' has {len(joins)} joins"
                   f" ({', '.join(j.id for j in joins)}); its branches meet at one")
            ctx.emit("FL290", (*p.path, "id"), msg)
            continue
        join = joins[0]
        count = 0 if join.complete in ("all", "any") else int(join.complete)
        if count > len(p.forks) or join.complete not in ("all", "any") and count < 1:
            ctx.emit("FL295", (*join.path, "complete"),
                     f"join '{join.id}' waits for {join.complete} branches, but '{p.id}' has"
                     f" {len(p.forks)}; from 1 to {len(p.forks)}, `any` or `all`")
        for b in p.forks:
            _check_branch(ctx, p, b.name, b.to, (*b.path, "to"), join.id, stages, owner, main)


def _main_line(proc: Process, stages: Mapping[str, Stage]) -> set[str]:
    """The stages reached from the start outside every branch: a parallel
    stage leads to its join, not into its branches."""
    starts = proc.start_stages
    seen = {starts[0].id} if starts else set()
    queue = deque(seen)
    while queue:
        s = stages.get(queue.popleft())
        if s is None or s.kind is StageKind.END:
            continue
        if s.kind is StageKind.PARALLEL:
            join = proc.join_of(s.id)
            nxt = [join.id] if join is not None else []
        else:
            nxt = [t for t, _ in s.targets()]
        for t in nxt:
            if t not in seen:
                seen.add(t)
                queue.append(t)
    return seen


def _check_branch(ctx: Context, p: Stage, name: str, first: str, first_path: Path,
                  join: str, stages: Mapping[str, Stage],
                  owner: dict[str, tuple[str, str]], main: set[str]) -> None:
    here = (p.id, name)
    queue: deque[tuple[str, Path, str]] = deque([(first, first_path, p.id)])
    seen: set[str] = set()
    joins = broken = False
    while queue:
        sid, path, src = queue.popleft()
        s = stages.get(sid)
        if s is None or sid in seen:
            continue  # FL204 reports an unknown stage
        if sid == join:
            joins = True
            continue
        if s.kind is StageKind.END:
            continue
        where = (f"branch '{name}' of '{p.id}' starts at" if src == p.id
                 else f"stage '{src}' in branch '{name}' of '{p.id}' leads to")
        other = owner.get(sid)
        if s.kind is StageKind.PARALLEL:
            ctx.emit("FL294", path, f"{where} parallel stage '{sid}': parallel stages do not"
                     " nest, and a branch does not go back to its fork")
        elif s.kind is StageKind.JOIN:
            ctx.emit("FL292", path, f"{where} '{sid}', the join of '{s.fork}'; a branch of"
                     f" '{p.id}' ends at its own join '{join}' or an end stage")
        elif sid in main or (other is not None and other != here):
            whose = (f"branch '{other[1]}' of '{other[0]}'" if other is not None and sid not in main
                     else "the process outside this branch")
            ctx.emit("FL292", path, f"{where} '{sid}', a stage of {whose}; a branch leads"
                     f" only to its own stages, its join '{join}' or an end stage")
        else:
            seen.add(sid)
            owner[sid] = here
            for t, tpath in s.targets():
                queue.append((t, tpath, sid))
            continue
        broken = True
    if not joins and not broken:
        ctx.emit("FL293", first_path, f"branch '{name}' of '{p.id}' never reaches the join"
                 f" '{join}': each of its ways ends the instance at an end stage; a branch"
                 " meets the others at the join")


def check_condition(ctx: Context, text: str, path: Path) -> None:
    fields = {f.name: f for f in ctx.proc.fields}
    try:
        cond = conditions.parse(text)
    except conditions.ConditionError as exc:
        problems = [exc.problem]
    else:
        problems = conditions.check(cond, fields)
    for p in problems:
        line, col = _offset_position(ctx.doc, path, text, p.offset)
        ctx.emit_at(p.code, line, col, p.message)


def _offset_position(doc: Document, path: Path, text: str, offset: int) -> tuple[int, int]:
    """Where character ``offset`` of a scalar's value sits in the file: exact
    for single-line plain and quoted scalars, the scalar's start otherwise."""
    line, col = doc.positions.at(path)
    style = doc.positions.styles.get(path, "")
    if "\n" in text[:offset] or style in ("|", ">"):
        return line, col
    return line, col + offset + (1 if style in ("'", '"') else 0)


# --------------------------------------------------------------------------- fields


def check_fields(ctx: Context) -> None:
    fields = {f.name: f for f in ctx.proc.fields}
    declared = list(fields)

    def need(name: str, path: Path, what: str) -> None:
        if name not in fields:
            ctx.emit("FL211", path, f"{what} '{name}' is not declared in `fields`"
                     f"{_suggest(name, declared)}")

    for s in ctx.proc.stages:
        for key, names in (("required", s.required_fields), ("optional", s.optional_fields)):
            for i, n in enumerate(names):
                need(n, (*s.path, "fields", key, i), f"stage '{s.id}' {key} field")
        for r in s.results:
            for key, names in (("required", r.required), ("optional", r.optional)):
                for i, n in enumerate(names):
                    need(n, (*s.path, "results", r.name, "fields", key, i),
                         f"result '{r.name}' {key} field")
        if s.wait_until is not None:
            need(s.wait_until, (*s.path, "until"), "wait field")
            f = fields.get(s.wait_until)
            if f is not None and f.type not in DATE_TYPES:
                ctx.emit("FL212", (*s.path, "until"),
                         f"wait stage '{s.id}' waits until field '{f.name}', which is "
                         f"{f.type.value}; `until` needs a date or datetime field")
        for child_field, parent_field in s.inputs:
            need(parent_field, (*s.path, "inputs", child_field), "subprocess input")
    for f in ctx.proc.fields:
        if f.type is FieldType.ENUM and not f.values:
            ctx.emit("FL212", f.path, f"enum field '{f.name}' needs `values`", at_key=True)
        if f.minimum is not None and f.maximum is not None and f.minimum > f.maximum:
            ctx.emit("FL212", (*f.path, "minimum"),
                     f"field '{f.name}' has minimum {f.minimum} above maximum {f.maximum}")


def check_field_rules(ctx: Context) -> None:
    """A field's ``pattern`` must compile; a date field's limits must read."""
    import re  # only for a process with patterns

    for f in ctx.proc.fields:
        if f.pattern is not None:
            try:
                re.compile(f.pattern)
            except re.error as exc:
                at = f" at character {exc.pos + 1}" if exc.pos is not None else ""
                ctx.emit("FL254", (*f.path, "pattern"),
                         f"pattern of field '{f.name}' is not a valid regular expression:"
                         f" {exc.msg}{at}")
        for key, text in (("minimum", f.earliest), ("maximum", f.latest)):
            if text is None:
                continue
            try:
                parse_date_limit(text)
            except DurationError as exc:
                ctx.emit("FL253", (*f.path, key), f"{key} of field '{f.name}': {exc}")


def check_record_rules(ctx: Context) -> None:
    """``must_change`` and ``validate`` at stages and results: a field that must
    change must be one the stage lets people set (else the result can never be
    reported), the rules' conditions are checked like a decision's, and a
    subprocess's results (reported automatically) take neither."""
    declared = [f.name for f in ctx.proc.fields]
    for s in ctx.proc.stages:
        for check in (*s.validate, *(c for r in s.results for c in r.validate)):
            check_condition(ctx, check.condition, (*check.path, "condition"))
        changing = [(n, (*s.path, "must_change", i), f"stage '{s.id}'")
                    for i, n in enumerate(s.must_change)]
        changing += [(n, (*r.path, "must_change", i), f"result '{r.name}'")
                     for r in s.results for i, n in enumerate(r.must_change)]
        for name, path, what in changing:
            if name not in declared:
                ctx.emit("FL211", path, f"{what} must_change field '{name}' is not declared in"
                         f" `fields`{_suggest(name, declared)}")
        if s.kind is StageKind.SUBPROCESS:
            _automatic_results(ctx, s)
        else:
            _unsettable_changes(ctx, s, set(declared))


def _automatic_results(ctx: Context, s: Stage) -> None:
    for r in s.results:
        for key, given in (("must_change", r.must_change), ("validate", r.validate)):
            if given:
                ctx.emit("FL251", (*r.path, key), f"result '{r.name}' of subprocess "
                         f"stage '{s.id}' is reported automatically when the child "
                         f"ends, so its `{key}` would never be checked; remove it")


def _unsettable_changes(ctx: Context, s: Stage, declared: set[str]) -> None:
    for i, name in enumerate(s.must_change):
        blocked = [r.name for r in s.results
                   if name in declared and name not in s.settable(r.name)]
        if blocked:
            ctx.emit("FL250", (*s.path, "must_change", i),
                     f"stage '{s.id}' needs field '{name}' changed, but "
                     f"{_plural(blocked, 'result')} {', '.join(blocked)} cannot set it, so "
                     f"{'it' if len(blocked) == 1 else 'they'} could never be reported; add"
                     f" '{name}' to the stage's `fields: optional`")
    for r in s.results:
        for i, name in enumerate(r.must_change):
            if name in declared and name not in s.settable(r.name):
                ctx.emit("FL250", (*r.path, "must_change", i),
                         f"result '{r.name}' of stage '{s.id}' needs field '{name}' changed,"
                         f" but cannot set it, so it could never be reported; add "
                         f"'{name}' to the result's `fields: optional` (or the stage's)")


def _plural(items: list[str], noun: str) -> str:
    return noun if len(items) == 1 else noun + "s"


def check_phases(ctx: Context) -> None:
    declared = [p.id for p in ctx.proc.phases]
    used = set()
    for s in ctx.proc.stages:
        if s.phase is None:
            continue
        used.add(s.phase)
        if s.phase not in declared:
            ctx.emit("FL214", (*s.path, "phase"), f"stage '{s.id}' is in unknown phase "
                     f"'{s.phase}'; declared phases: {_known(declared)}"
                     f"{_suggest(s.phase, declared)}")
    for p in ctx.proc.phases:
        if p.id not in used:
            ctx.emit("FL220", (*p.path, "id"), f"phase '{p.id}' has no stages")


def check_durations(ctx: Context) -> None:
    def dur(text: str | None, path: Path, working: bool = False) -> None:
        if text is None:
            return
        try:
            parsed = parse_duration(text)
        except DurationError as exc:
            ctx.emit("FL213", path, str(exc))
            return
        if working and parsed.uses_days:
            _days_in_working_time(ctx, parsed, path)

    for s in ctx.proc.stages:
        dur(s.wait_for, (*s.path, "for"))
        for t in s.tasks:
            dur(t.delay, (*t.path, "delay"))
        if s.sla is not None:  # what it inherits is checked once, below
            working = s.sla.business_hours
            if "within" not in s.sla.inherited:
                dur(s.sla.within, (*s.sla.path, "within"), working)
            for e in s.sla.escalations:
                if "escalations" not in s.sla.inherited:
                    dur(e.after, (*e.path, "after"), working)
    default = ctx.proc.default_sla
    if default is not None:
        dur(default.within, (*default.path, "within"), default.business_hours)
        for e in default.escalations:
            dur(e.after, (*e.path, "after"), default.business_hours)
        if not any(s.sla is not None and s.sla.inherited for s in ctx.proc.stages):
            ctx.emit("FL255", default.path, "`defaults.sla` is inherited by no stage: every "
                     "task and approval stage gives its whole own `sla` or `sla: false`;"
                     " remove it, or leave `sla` out of the stages that should inherit it",
                     at_key=True)


def _days_in_working_time(ctx: Context, dur: Duration, path: Path) -> None:
    """``5d`` on a business-hours SLA is 120 working hours, not 5 working days."""
    hours = (dur.weeks * 7 + dur.days) * 24
    hours_text = ctx.proc.calendar.hours if ctx.proc.calendar else BUSINESS_HOURS
    if not _valid_hours(hours_text):  # FL226 reports it
        return
    opens, closes = ((int(t[:2]) * 60 + int(t[3:5])) for t in hours_text.split("-"))
    per_day = (closes - opens) / 60
    days = hours / per_day
    shown = f"{days:.0f}" if days.is_integer() else f"about {days:.1f}"
    whole = dur.weeks * 5 + dur.days  # a week is five working days
    ctx.emit("FL252", path,
             f"'{dur.text}' on an SLA with business_hours: true counts {hours:g} working hours"
             f" ({shown} working days of {per_day:g} h) for its d and w, which are 24-hour"
             f" days; for {whole} working days write '{whole}bd'")


def check_waits(ctx: Context) -> None:
    for s in ctx.proc.stages:
        if s.kind is StageKind.WAIT and (s.wait_for is None) == (s.wait_until is None):
            both = s.wait_for is not None
            ctx.emit("FL222", (*s.path, "id"), f"wait stage '{s.id}' has "
                     f"{'both `for` and `until`' if both else 'neither `for` nor `until`'}; "
                     "give exactly one: a duration (`for: 30d`) or a date field (`until: due`)")


# --------------------------------------------------------------------------- approvals, SLA


def check_approvals(ctx: Context) -> None:
    for s in ctx.proc.stages:
        if s.kind is not StageKind.APPROVAL:
            continue
        if s.policy is ApprovalPolicy.SINGLE and len(s.approvers) != 1:
            ctx.emit("FL221", (*s.path, "policy"),
                     f"approval '{s.id}' has policy single but {len(s.approvers)} approvers; "
                     "use `any` (one of them decides) or `all` (countersign)")
        names = {r.name for r in s.results}
        if "approve" not in names:
            ctx.emit("FL221", (*s.path, "results"),
                     f"approval '{s.id}' has no `approve` result; approvals decide with "
                     "`approve` and `reject`", at_key=True)
        if len(s.results) < 2 or "reject" not in names:
            ctx.emit("FL218", (*s.path, "results"),
                     f"approval '{s.id}' offers no `reject` result: approvers cannot say no",
                     at_key=True)


def _reach_avoiding(graph: dict[str, list[str]], roots: Iterable[str], avoid: str) -> set[str]:
    """The stages reachable from ``roots`` on ways that do not pass ``avoid``."""
    return _reach({k: [t for t in v if t != avoid] for k, v in graph.items()},
                  [r for r in roots if r != avoid])


def _fields_read(s: Stage) -> set[str]:
    names: set[str] = set()
    for when in [b.when for b in s.branches] + [b.when for b in s.forks if b.when]:
        try:
            names |= conditions.field_names(conditions.parse(when))
        except conditions.ConditionError:
            continue  # FL301 reports it
    return names


def _field_path(s: Stage, result: str, name: str) -> Path:
    """Where stage ``s`` declares field ``name`` (its own fields first)."""
    for key, names in (("required", s.required_fields), ("optional", s.optional_fields)):
        if name in names:
            return (*s.path, "fields", key, names.index(name))
    r = s.result(result)
    assert r is not None
    if name in r.required:
        return (*r.path, "fields", "required", r.required.index(name))
    return (*r.path, "fields", "optional", r.optional.index(name))


def check_decided_fields(ctx: Context) -> None:
    """A field a decision read, changed at a later stage (by one of its results)
    from where the instance can no longer pass the decision again, yet can end
    other than rejected or cancelled: the decision's verdict no longer holds
    for the record (an approval it asked for can be bypassed)."""
    proc = ctx.proc
    stages = {s.id: s for s in proc.stages}
    if any(t not in stages for s in proc.stages for t, _ in s.targets()):
        return  # FL204 first
    graph = _edges(proc)
    reach: dict[str, set[str]] = {}  # from a result's target: one walk per target
    for d in proc.stages:
        read = _fields_read(d) if d.kind in (StageKind.DECISION, StageKind.PARALLEL) else set()
        if not read:
            continue
        after = _reach_avoiding(graph, [t for t, _ in d.targets()], d.id)
        reported: set[tuple[str, str]] = set()
        for s in proc.stages:
            if s.id not in after or s.kind not in (StageKind.TASK, StageKind.APPROVAL):
                continue
            for r in s.results:
                changed = [n for n in s.settable(r.name) if n in read]
                if not changed:
                    continue
                onward = reach.get(r.to)
                if onward is None:
                    onward = reach[r.to] = _reach(graph, [r.to])
                ends = [] if d.id in onward else [
                    e for e in onward if stages[e].kind is StageKind.END
                    and stages[e].outcome not in ("rejected", "cancelled")]
                for name in changed:
                    if not ends or (s.id, name) in reported:
                        continue
                    reported.add((s.id, name))
                    end = sorted(ends, key=list(stages).index)[0]
                    ctx.emit("FL235", _field_path(s, r.name, name),
                             f"field '{name}' read by decision '{d.id}' can be changed at "
                             f"stage '{s.id}' after that decision, and the instance cannot "
                             f"pass '{d.id}' again: it can end at '{end}' on a verdict that "
                             f"no longer holds; set it before '{d.id}', or lead '{s.id}' "
                             f"back through '{d.id}'")


def _only_user(approvers: Iterable[Assignee]) -> str | None:
    users = {a.user for a in approvers}
    return next(iter(users)) if len(users) == 1 and None not in users else None


def check_excluded_approvers(ctx: Context) -> None:
    """A stage whose every possible approver (assignee) is excluded from it:
    nobody but an admin could ever act there."""
    proc = ctx.proc
    stages = {s.id: s for s in proc.stages}
    graph = _edges(proc)
    starts = proc.start_stages
    st = proc.starters
    only_starter = st.users[0] if (len(st.users) == 1 and not st.departments
                                   and not st.roles) else None
    for s in proc.stages:
        if s.kind not in (StageKind.TASK, StageKind.APPROVAL):
            continue
        who = s.approvers if s.kind is StageKind.APPROVAL else (
            (s.assignee,) if s.assignee is not None else ())
        if not who:
            continue
        where = (*s.path, "approvers" if s.kind is StageKind.APPROVAL else "assignee")
        why = ("an approval excludes its initiator unless it says `allow_initiator: true`"
               if "initiator" not in s.exclude else "it says `exclude: [initiator]`")
        user = _only_user(who)
        if s.allow_initiator and "initiator" in s.exclude:
            ctx.emit("FL236", (*s.path, "allow_initiator"), f"approval '{s.id}' says both "
                     "`allow_initiator: true` and `exclude: [initiator]`; drop one", at_key=True)
        if s.excludes_initiator and all(a.initiator for a in who):
            ctx.emit("FL236", where, f"stage '{s.id}' can only be decided by the initiator, "
                     f"whom it excludes ({why}); name another approver, or allow the "
                     "initiator", at_key=True)
            continue
        if s.excludes_initiator and user is not None and user == only_starter:
            ctx.emit("FL236", where, f"stage '{s.id}' can only be decided by {user}, the only "
                     f"user who may start '{proc.id}', whom it excludes ({why})", at_key=True)
            continue
        if "previous-approvers" not in s.exclude or user is None or len(starts) != 1:
            continue
        for a in proc.stages:
            approve = a.result("approve")
            if (a.id == s.id or a.kind is not StageKind.APPROVAL or approve is None
                    or _only_user(a.approvers) != user):
                continue
            cut = {k: list(v) for k, v in graph.items()}
            others = [r.to for r in a.results if r.name != "approve"]
            cut[a.id] = [t for t in cut.get(a.id, []) if t != approve.to or t in others]
            if s.id not in _reach(cut, [starts[0].id]) and approve.to in stages:
                ctx.emit("FL236", where, f"stage '{s.id}' can only be decided by {user}, who "
                         f"always approved '{a.id}' before it, and it says "
                         "`exclude: [previous-approvers]`", at_key=True)
                break


def check_escalations(ctx: Context) -> None:
    for s in ctx.proc.stages:
        if s.sla is None:
            continue
        for i, e in enumerate(s.sla.escalations):
            if e.action is EscalationAction.RESULT:
                if e.result is None:
                    ctx.emit("FL217", e.path, f"escalation {i + 1} of stage '{s.id}' applies "
                             "a result but names none; add `result:`")
                elif s.result(e.result) is None:
                    allowed = _known(r.name for r in s.results)
                    ctx.emit("FL217", (*e.path, "result"),
                             f"escalation applies result '{e.result}', which stage '{s.id}' "
                             f"does not have; allowed: {allowed}")
            elif e.action in (EscalationAction.NOTIFY, EscalationAction.REASSIGN) and e.to is None:
                ctx.emit("FL217", e.path, f"escalation {i + 1} of stage '{s.id}' must say whom "
                         f"to {e.action.value}; add `to:`")
            elif e.action is EscalationAction.REMIND and s.kind not in _PEOPLE_KINDS:
                ctx.emit("FL217", e.path, f"escalation {i + 1} reminds the assignee, but "
                         f"{s.kind.value} stage '{s.id}' has nobody to remind")


_PEOPLE_KINDS = (StageKind.TASK, StageKind.APPROVAL)


# --------------------------------------------------------------------------- assignees & org


def _assignees(proc: Process) -> Iterable[tuple[Assignee, bool]]:
    """Every assignee in the process (nested ones of candidate lists and
    rules too), with whether it sits in an escalation (where ``of: assignee``
    is meaningful)."""
    for s in proc.stages:
        tops = [(s.assignee, False), *((a, False) for a in s.approvers)]
        tops += [(t.assignee, False) for t in s.tasks]
        tops += [(e.to, True) for e in (s.sla.escalations if s.sla else ())]
        tops += [(t, False) for n in s.notify for t in n.to if isinstance(t, Assignee)]
        for top, in_escalation in tops:
            for a in top.walk() if top is not None else ():
                yield a, in_escalation
    for n in proc.notify:
        for t in n.to:
            if isinstance(t, Assignee):
                yield from ((a, False) for a in t.walk())


def check_assignment_rules(ctx: Context) -> None:
    """FL272: an assignee chosen by a record field (``by``/``cases``) reads a
    declared field, and every case is a value that field can hold."""
    fields = {f.name: f for f in ctx.proc.fields}
    for a, _ in _assignees(ctx.proc):
        if a.by is None:
            continue
        f = fields.get(a.by)
        if f is None:
            ctx.emit("FL272", (*a.path, "by"), f"assignee chosen by field '{a.by}', which is "
                     f"not declared in `fields`{_suggest(a.by, list(fields))}")
            continue
        if f.type in (FieldType.TEXT, FieldType.DATETIME):
            ctx.emit("FL272", (*a.path, "by"), f"assignee chosen by field '{a.by}', which is "
                     f"{f.type.value}; choose by an enum, string, integer, boolean, date or "
                     "user field")
            continue
        for case, _c in a.cases:
            problem = _literal_problem(f, case, from_text=True)
            if problem is not None:
                ctx.emit("FL272", (*a.path, "cases", case), f"case '{case}' of the assignee "
                         f"chosen by '{a.by}' can never match: {problem}", at_key=True)
        if f.type is FieldType.ENUM and a.otherwise is None:
            missing = [v for v in f.values if v not in {c for c, _ in a.cases}]
            if missing:
                ctx.emit("FL272", (*a.path, "cases"), f"the assignee chosen by '{a.by}' has no "
                         f"case for {', '.join(missing)} and no `default`; add them or a "
                         "default", at_key=True)


def _text_problem(f: FieldDef, text: object) -> str | None:
    """Why ``text`` is not text, or breaks the field's ``format`` or ``pattern``."""
    import re  # only for a field with a pattern

    if not isinstance(text, str):
        return f"field '{f.name}' holds text, not {text!r}"
    if f.format is not None and not format_ok(f.format, text):
        return f"field '{f.name}' must be {FORMATS[f.format]} (format: {f.format}); {text!r} is not"
    try:
        if f.pattern is not None and not pattern_ok(f.pattern, text):
            return f"field '{f.name}' must match the pattern {f.pattern}; {text!r} does not"
    except re.error:  # FL254 reports the pattern
        return None
    return None


def _literal_problem(f: FieldDef, value: object, *, from_text: bool = False) -> str | None:
    """Why ``value`` cannot be a value of field ``f`` (None: it can). ``from_text``:
    the value is written as text (a case key), as --set reads it."""
    import datetime as dt  # only for date literals

    t = f.type
    text = value if isinstance(value, str) else None
    if t in (FieldType.STRING, FieldType.TEXT, FieldType.USER):
        return _text_problem(f, value)
    if t is FieldType.ENUM:
        if text in f.values:
            return None
        return f"field '{f.name}' is one of {', '.join(f.values)}; {value!r} is not"
    if t is FieldType.BOOLEAN:
        ok = isinstance(value, bool) or (from_text and text in ("true", "false"))
        return None if ok else f"field '{f.name}' is true or false, not {value!r}"
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif from_text and text is not None:
            try:
                number = int(text) if t is FieldType.INTEGER else float(text)
            except ValueError:
                number = None
        if number is None or (t is FieldType.INTEGER and not float(number).is_integer()):
            return f"field '{f.name}' is {'an integer' if t is FieldType.INTEGER else 'a number'}"\
                f", not {value!r}"
        if f.minimum is not None and number < f.minimum:
            return f"field '{f.name}' is at least {f.minimum:g}; {value!r} is below"
        if f.maximum is not None and number > f.maximum:
            return f"field '{f.name}' is at most {f.maximum:g}; {value!r} is above"
        return None
    try:
        if t is FieldType.DATE and text is not None and len(text) == 10:
            dt.date.fromisoformat(text)
            return None
        if t is FieldType.DATETIME and text is not None and len(text) > 10:
            dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return None
    except ValueError:
        pass
    what = "a date (YYYY-MM-DD)" if t is FieldType.DATE else "a date and time (ISO-8601)"
    return f"field '{f.name}' is {what}, not {value!r}"


def _record_values(proc: Process) -> Iterable[tuple[FieldValue, str]]:
    """Every ``set:`` item and field default, with where it is (for messages)."""
    for f in proc.fields:
        if f.default is not None:
            yield f.default, f"the default of field '{f.name}'"
    for s in proc.stages:
        for fv in s.sets:
            yield fv, f"set: of stage '{s.id}'"
        for r in s.results:
            for fv in r.sets:
                yield fv, f"set: of result '{r.name}' of stage '{s.id}'"


def check_record_values(ctx: Context) -> None:
    """FL270: ``set:`` names (or copies) an undeclared field; FL271: a ``set:``
    value or a field default that does not fit the field's type."""
    fields = {f.name: f for f in ctx.proc.fields}
    declared = list(fields)
    for fv, where in _record_values(ctx.proc):
        f = fields.get(fv.field)
        if f is None:
            ctx.emit("FL270", fv.path, f"{where} sets field '{fv.field}', which is not "
                     f"declared in `fields`{_suggest(fv.field, declared)}", at_key=True)
            continue
        problem = _value_problem(f, fv, fields, default=where.startswith("the default"))
        if problem is not None:
            code, message = problem
            at = (*fv.path, "field") if fv.copy is not None else fv.path
            ctx.emit(code, at, f"{where}: {message}")


def _value_problem(f: FieldDef, fv: FieldValue, fields: Mapping[str, FieldDef],
                   *, default: bool) -> tuple[str, str] | None:
    if fv.copy is not None:
        source = fields.get(fv.copy)
        if source is None:
            return "FL270", (f"field '{f.name}' copies field '{fv.copy}', which is not "
                             f"declared in `fields`{_suggest(fv.copy, list(fields))}")
        same = source.type is f.type or {source.type, f.type} <= {FieldType.STRING,
                                                                   FieldType.TEXT}
        if not same or (f.type is FieldType.ENUM and not set(source.values) <= set(f.values)):
            return "FL271", (f"field '{f.name}' ({f.type.value}) copies field '{source.name}' "
                             f"({source.type.value}), whose values it cannot hold")
        return None
    if fv.word is not None:
        if default and fv.word == ACTOR:
            return "FL271", (f"field '{f.name}' cannot default to `actor`: at start the actor "
                             "is the initiator; write `initiator`")
        return None
    if fv.literal is None:
        return None  # clears the field
    problem = _literal_problem(f, fv.literal)
    if problem is None:
        return None
    words = {FieldType.USER: f"`{INITIATOR}` or `{ACTOR}`" if not default else f"`{INITIATOR}`",
             FieldType.DATE: f"`{NOW}`", FieldType.DATETIME: f"`{NOW}`"}.get(f.type)
    return "FL271", problem + (f" (a literal, or {words})" if words else "")


def check_assignee_fields(ctx: Context) -> None:
    fields = {f.name: f for f in ctx.proc.fields}
    for a, in_escalation in _assignees(ctx.proc):
        ref = a.field if a.field is not None else a.of
        key = "field" if a.field is not None else "of"
        if ref is None or ref == "initiator" or (ref == "assignee" and key == "of"):
            if ref == "assignee" and not in_escalation:
                ctx.emit("FL225", (*a.path, "of"), "`of: assignee` only makes sense in an "
                         "escalation; use initiator or a user field here")
            continue
        f = fields.get(ref)
        if f is None:
            allowed = ["initiator"] + (["assignee"] if in_escalation else [])
            allowed += [n for n, fd in fields.items() if fd.type is FieldType.USER]
            ctx.emit("FL225" if key == "of" else "FL211", (*a.path, key),
                     f"assignee {a.describe()} names '{ref}', which is neither a declared "
                     f"user field nor one of: {', '.join(allowed)}")
        elif f.type is not FieldType.USER:
            ctx.emit("FL212", (*a.path, key), f"assignee {a.describe()} reads field '{ref}', "
                     f"which is {f.type.value}; it must be a field of type user")


def check_org_refs(ctx: Context) -> None:
    names = OrgNames.of(ctx.org) if ctx.org is not None else None
    ctx.out.extend(org_problems(references(ctx.doc, ctx.proc), ctx.doc.path, names))


def _org_references(proc: Process) -> Iterable[tuple[str, str, Path]]:
    for kind, items in (("department", proc.starters.departments),
                        ("role", proc.starters.roles), ("user", proc.starters.users)):
        for i, ident in enumerate(items):
            yield kind, ident, ("starters", kind + "s", i)
    for a, _ in _assignees(proc):
        for kind in ("user", "role", "department"):
            ident = getattr(a, kind)
            if ident is not None:
                yield kind, ident, (*a.path, kind)
    for f in proc.fields:
        for kind in ("role", "department"):
            ident = getattr(f, kind)
            if ident is not None:
                yield kind, ident, (*f.path, kind)
    types = {f.name: f.type for f in proc.fields}
    for a, _ in _assignees(proc):
        if a.by is not None and types.get(a.by) is FieldType.USER:
            for case, _chosen in a.cases:
                yield "user", case, (*a.path, "cases", case)
    for fv, _where in _record_values(proc):
        if types.get(fv.field) is FieldType.USER and isinstance(fv.literal, str):
            yield "user", fv.literal, fv.path


def check_calendar(ctx: Context) -> None:
    cal = ctx.proc.calendar
    if cal is None:
        if any(s.sla and s.sla.business_hours for s in ctx.proc.stages):
            for s in ctx.proc.stages:
                if s.sla and s.sla.business_hours:
                    ctx.emit("FL226", (*s.sla.path, "business_hours"),
                             f"stage '{s.id}' counts business hours, but the process has no "
                             "`calendar`", at_key=True)
        return
    from datetime import date
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(cal.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.emit("FL226", (*cal.path, "timezone"), f"unknown time zone '{cal.timezone}'; use an "
                 "IANA name such as Europe/Moscow or Asia/Shanghai")
    for i, d in enumerate(cal.workdays):
        if d not in WEEKDAYS:
            ctx.emit("FL226", (*cal.path, "workdays", i), f"'{d}' is not a weekday; use "
                     f"{', '.join(WEEKDAYS)}")
    if not _valid_hours(cal.hours):
        ctx.emit("FL226", (*cal.path, "hours"), f"hours '{cal.hours}' must be HH:MM-HH:MM with "
                 "the start before the end, e.g. 09:00-18:00")
    for i, h in enumerate(cal.holidays):
        try:
            date.fromisoformat(h)
        except ValueError:
            ctx.emit("FL226", (*cal.path, "holidays", i), f"holiday '{h}' is not a date "
                     "(YYYY-MM-DD)")


def _valid_hours(text: str) -> bool:
    from datetime import time

    try:
        start, end = (time.fromisoformat(t) for t in text.split("-"))
    except ValueError:
        return False
    return start < end


# --------------------------------------------------------------------------- cross-file


def check_subprocesses(ctx: Context) -> None:
    ctx.out.extend(subprocess_problems(references(ctx.doc, ctx.proc), ctx.doc.path, ctx.catalog))


# --------------------------------------------------------------------------- references
#
# The rules that read the org directory or the other processes (FL215, FL216,
# FL401-FL404) run on a ``References``: what a process names outside itself,
# with the position of each name, in plain data. ``flowctl lint`` takes it
# from each file on its own (in worker processes, and into the lint cache)
# and judges it against the org directory and the catalog of the others
# without the file's document or model.

Position = tuple[int, int]  # 1-based (line, col)


class OrgNames(Struct, frozen=True):
    """The ids an org directory defines, which references to it are checked against."""

    users: frozenset[str]
    roles: frozenset[str]
    departments: frozenset[str]

    @classmethod
    def of(cls, org: OrgDirectory) -> OrgNames:
        return cls(frozenset(u.id for u in org.users), frozenset(r.id for r in org.roles),
                   frozenset(d.id for d in org.departments))


class OrgReference(Struct, frozen=True, array_like=True):
    kind: str  # user | role | department
    ident: str
    at: Position


class SubprocessReference(Struct, frozen=True, array_like=True):
    """A subprocess stage: the child it starts and where each part of it is."""

    stage: str
    process: str
    wait: bool
    has_results: bool
    id_at: Position
    results_key_at: Position
    process_at: Position
    inputs: tuple[tuple[str, Position], ...]  # child field, its key
    results: tuple[tuple[str, Position], ...]  # result name, its key


class References(Struct, frozen=True, array_like=True):
    kind_key_at: Position
    org: tuple[OrgReference, ...]
    subprocesses: tuple[SubprocessReference, ...]


def references(doc: Document, proc: Process) -> References:
    """What ``proc`` (loaded from ``doc``) names in the org directory and in other processes."""
    pos = doc.positions
    org = tuple(OrgReference(kind, ident, pos.at(path))
                for kind, ident, path in _org_references(proc))
    subs = tuple(
        SubprocessReference(
            s.id, s.process, s.wait_child, bool(s.results), pos.at((*s.path, "id")),
            pos.key((*s.path, "results")), pos.at((*s.path, "process")),
            tuple((f, pos.key((*s.path, "inputs", f))) for f, _ in s.inputs),
            tuple((r.name, pos.key(r.path)) for r in s.results),
        )
        for s in proc.stages if s.kind is StageKind.SUBPROCESS and s.process is not None
    )
    return References(pos.key(("kind",)), org, subs)


def _problem(file: str, at: Position, code: str, message: str) -> Diagnostic:
    return Diagnostic(file, at[0], at[1], code, message, rule(code).severity)


def org_problems(refs: References, file: str, org: OrgNames | None) -> list[Diagnostic]:
    """FL401-FL404: the references of the process in ``file`` to the org directory."""
    if org is None:
        if refs.org:
            return [_problem(file, refs.kind_key_at, "FL404", "no org directory found (org.yaml "
                             "beside the file, the workspace's, or --org PATH): users, roles "
                             "and departments were not checked")]
        return []
    out = []
    for ref in refs.org:
        if ref.kind == "user" and ref.ident not in org.users:
            out.append(_problem(file, ref.at, "FL401", f"user '{ref.ident}' is not in the org "
                                f"directory{_suggest(ref.ident, org.users)}"))
        elif ref.kind == "role" and ref.ident not in org.roles:
            out.append(_problem(file, ref.at, "FL402", f"role '{ref.ident}' is not in the org "
                                f"directory; known roles: {_known(org.roles)}"))
        elif ref.kind == "department" and ref.ident not in org.departments:
            out.append(_problem(file, ref.at, "FL403", f"department '{ref.ident}' is not in the "
                                f"org directory; known departments: {_known(org.departments)}"))
    return out


def subprocess_problems(refs: References, file: str,
                        catalog: Mapping[str, ProcessSignature]) -> list[Diagnostic]:
    """FL215, FL216: the subprocess stages of the process in ``file``, against ``catalog``."""
    out = []
    for s in refs.subprocesses:
        if s.wait and not s.has_results:
            out.append(_problem(file, s.id_at, "FL216", f"subprocess stage '{s.stage}' waits "
                                "for its child but has no `results` mapping the child's end "
                                "stages; add them, or set `wait: false` with `next`"))
        if not s.wait and s.has_results:
            out.append(_problem(file, s.results_key_at, "FL216", f"subprocess stage "
                                f"'{s.stage}' does not wait for its child, so it cannot map "
                                "the child's results; use `next`"))
        child = catalog.get(s.process)
        if child is None:
            out.append(_problem(file, s.process_at, "FL215", f"process '{s.process}' is not "
                                f"among the linted files (known: {_known(catalog)}); lint the "
                                f"folder that holds it{_suggest(s.process, catalog)}"))
            continue
        child_fields = set(child.fields)
        for child_field, at in s.inputs:
            if child_field not in child_fields:
                out.append(_problem(file, at, "FL216", f"process '{child.id}' has no field "
                                    f"'{child_field}'; its fields: {_known(child_fields)}"))
        child_ends = list(child.ends)
        for name, at in s.results if s.wait else ():
            if name not in child_ends:
                out.append(_problem(file, at, "FL216", f"'{name}' is not an end stage of "
                                    f"process '{child.id}'; its end stages: "
                                    f"{_known(child_ends)}"))
    return out


# --------------------------------------------------------------------------- keys that do nothing

# What each stage kind cannot use, and why: lint refuses the key (FL280) rather
# than accept a key the engine would ignore.
_INERT: dict[StageKind, tuple[tuple[str, str], ...]] = {
    StageKind.END: (
        ("assignee", "an end stage finishes the instance at once: nobody works on it"),
        ("fields", "an end stage finishes the instance at once: no field is set there"),
        ("sla", "an end stage finishes the instance at once: nothing is due there"),
        ("on_enter", "an end stage finishes the instance at once: its tasks and events would"
                     " never be done (to tell people how it ended, use `notify: {outcome: ...}`)"),
    ),
    StageKind.DECISION: (
        ("assignee", "a decision is taken automatically by its conditions: nobody is assigned"),
        ("sla", "a decision is taken at once: nothing is due there"),
        ("on_enter", "a decision is taken at once: its tasks and events would never be done"),
    ),
    StageKind.WAIT: (
        ("assignee", "a wait stage is held by time, not by a person (its tasks go to the"
                     " initiator unless they name their own assignee)"),
        ("sla", "a wait stage ends when its time comes: only task and approval stages have"
                " a due time and escalations"),
    ),
    StageKind.SUBPROCESS: (
        ("assignee", "a subprocess stage is held by its child process (the initiator chooses"
                     " a result when the child ends without one; tasks name their own"
                     " assignee)"),
        ("sla", "a subprocess stage ends with its child: only task and approval stages have"
                " a due time and escalations"),
    ),
}


def _has(stage: Stage, key: str) -> bool:
    if key == "assignee":
        return stage.assignee is not None
    if key == "fields":
        return bool(stage.required_fields or stage.optional_fields)
    if key == "sla":
        return stage.sla is not None
    return bool(stage.tasks or stage.events)  # on_enter


def check_inert_keys(ctx: Context) -> None:
    """FL280: a key the stage's kind accepts in the schema but never uses."""
    for s in ctx.proc.stages:
        for key, why in _INERT.get(s.kind, ()):
            if _has(s, key):
                ctx.emit("FL280", (*s.path, key), f"`{key}` on {s.kind.value} stage '{s.id}'"
                         f" does nothing: {why}; remove it", at_key=True)


def check_task_blocks(ctx: Context) -> None:
    """FL281: ``blocks`` names results of the stage, and is not given with ``blocking``."""
    for s in ctx.proc.stages:
        names = [r.name for r in s.results]
        for t in s.tasks:
            if t.blocks and t.blocking:
                ctx.emit("FL281", (*t.path, "blocking"), f"task '{t.id}' of stage '{s.id}' has"
                         " both `blocking` (every result) and `blocks` (these results); keep"
                         " one", at_key=True)
            for i, r in enumerate(t.blocks):
                if r not in names:
                    ctx.emit("FL281", (*t.path, "blocks", i), f"task '{t.id}' blocks result"
                             f" '{r}', which stage '{s.id}' does not have; its results:"
                             f" {_known(names)}")


# --------------------------------------------------------------------------- notify

_PERSON_EVENTS = ("entered", "reminder", "overdue", "escalated", "task")
_STAGE_EVENTS: dict[StageKind, tuple[str, ...]] = {
    StageKind.TASK: _PERSON_EVENTS,
    StageKind.APPROVAL: _PERSON_EVENTS,
    StageKind.WAIT: ("task",),
    StageKind.SUBPROCESS: ("task",),
    StageKind.END: ("outcome",),
}


def _never(s: Stage, event: str) -> str | None:
    """Why ``event`` never happens at stage ``s`` (None: it can)."""
    allowed = _STAGE_EVENTS.get(s.kind, ())
    if event not in allowed:
        return (f"{s.kind.value} stage '{s.id}' has no '{event}' event; its events:"
                f" {', '.join(allowed) or 'none'}")
    actions = [e.action for e in (s.sla.escalations if s.sla else ())]
    if event == "reminder" and EscalationAction.REMIND not in actions:
        return f"stage '{s.id}' has no `remind` escalation, so no reminder is sent"
    if event == "overdue" and s.sla is None:
        return f"stage '{s.id}' has no `sla`, so it is never overdue"
    if event == "escalated" and not any(a is not EscalationAction.REMIND for a in actions):
        return f"stage '{s.id}' has no notify, reassign or result escalation"
    if event == "task" and not s.tasks:
        return f"stage '{s.id}' creates no task"
    return None


def check_notify(ctx: Context) -> None:
    """FL283: a stage's notify names an event that never happens there;
    FL282: a template names something that is not there."""
    fields = {f.name for f in ctx.proc.fields}
    specs: list[tuple[Stage | None, NotifySpec]] = [(None, n) for n in ctx.proc.notify]
    specs += [(s, n) for s in ctx.proc.stages for n in s.notify]
    for stage, n in specs:
        why = _never(stage, n.event) if stage is not None else None
        if why is not None:
            ctx.emit("FL283", n.path, f"notify: {why}; remove `{n.event}`", at_key=True)
        for key in ("subject", "message"):
            text = getattr(n, key)
            for problem in templates.problems(text or "", fields):
                ctx.emit("FL282", (*n.path, key), f"{key} of notify.{n.event}: {problem}")


PROCESS_RULES = (
    check_starts_and_ends,
    check_duplicate_ids,
    check_transitions,
    check_reachability,
    check_automatic_cycles,
    check_decisions,
    check_parallel,
    check_fields,
    check_field_rules,
    check_record_rules,
    check_phases,
    check_durations,
    check_waits,
    check_approvals,
    check_decided_fields,
    check_excluded_approvers,
    check_escalations,
    check_assignee_fields,
    check_org_refs,
    check_calendar,
    check_record_values,
    check_assignment_rules,
    check_inert_keys,
    check_task_blocks,
    check_notify,
)

# The rules that read only the process itself: a file's results under them
# depend on its content alone (``flowctl lint`` caches them by content). The
# others (``check_org_refs``, ``check_subprocesses``) judge its ``references``.
SINGLE_FILE_RULES = tuple(r for r in PROCESS_RULES if r is not check_org_refs)

# The rules that can report an error: what a caller that only refuses needs
# (check_decided_fields emits FL235 only, a warning).
ERROR_RULES = tuple(r for r in PROCESS_RULES if r is not check_decided_fields)


# --------------------------------------------------------------------------- org directory


def _calendar_date(text: str) -> bool:
    import datetime as dt  # only for an org directory that says who is away

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def lint_org(doc: Document, org: OrgDirectory) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def emit(path: Path, message: str) -> None:
        out.append(doc.diag(path, "FL405", message))

    for what, items in (("user", org.users), ("department", org.departments),
                        ("role", org.roles)):
        seen: dict[str, Path] = {}
        for item in items:
            if item.id in seen:
                emit((*item.path, "id"), f"duplicate {what} id '{item.id}' (first defined on "
                     f"line {doc.positions.at(seen[item.id])[0]})")
            seen.setdefault(item.id, item.path)
    for u in org.users:
        if u.department is not None and org.department(u.department) is None:
            emit((*u.path, "department"), f"user '{u.id}' is in unknown department "
                 f"'{u.department}'")
        for i, r in enumerate(u.roles):
            if org.role(r) is None:
                emit((*u.path, "roles", i), f"user '{u.id}' has unknown role '{r}'")
        if u.away_until is not None and not _calendar_date(u.away_until):
            emit((*u.path, "away_until"), f"away_until of user '{u.id}' is not a date of "
                 f"the calendar: {u.away_until!r}")
        _user_channels(u, org, emit)
    for d in org.departments:
        if d.head is not None and org.user(d.head) is None:
            emit((*d.path, "head"), f"head '{d.head}' of department '{d.id}' is not a user")
        if d.parent is not None and org.department(d.parent) is None:
            emit((*d.path, "parent"), f"parent '{d.parent}' of department '{d.id}' is not a "
                 "department")
        seen_chain = {d.id}
        p = org.department(d.parent) if d.parent else None
        while p is not None:
            if p.id in seen_chain:
                emit((*d.path, "parent"), f"department '{d.id}' is its own ancestor")
                break
            seen_chain.add(p.id)
            p = org.department(p.parent) if p.parent else None
    return out


def _user_channels(u: User, org: OrgDirectory, emit: Callable[[Path, str], None]) -> None:
    """A named channel must be one of the org's; a mail channel needs the user's email."""
    for i, c in enumerate(u.channels):
        if "://" in c:
            continue
        url = org.channel(c)
        if url is None:
            known = ", ".join(n for n, _ in org.channels) or "none"
            emit((*u.path, "channels", i), f"user '{u.id}' names unknown channel '{c}'"
                 f" (the org's channels: {known})")
        elif url.partition("://")[0] in ("mailto", "mailtos") and not u.email:
            emit((*u.path, "channels", i), f"user '{u.id}' gets mail through channel"
                 f" '{c}' but has no email to send it to")


# --------------------------------------------------------------------------- entry point


def lint_workspace(
    ws: DefinitionSet, *, report_files: set[str] | None = None, cross_file: bool = True,
    errors_only: bool = False,
) -> list[Diagnostic]:
    """Every diagnostic for the workspace's documents (unsorted).

    ``report_files`` limits the output to those files (an org directory found
    beside them is used but not reported on). ``cross_file=False`` skips the
    checks that need other processes (subprocess references).
    ``errors_only=True`` skips the rules that can only warn (for a caller that
    refuses on errors and shows no warnings).
    """
    rules = ERROR_RULES if errors_only else PROCESS_RULES
    out: list[Diagnostic] = []
    for doc in ws.documents:
        out.extend(doc.diagnostics)
    org = ws.orgs[0][1] if ws.orgs else None
    for i, (doc, o) in enumerate(ws.orgs):
        out.extend(lint_org(doc, o))
        if i:
            first = ws.orgs[0][0].path
            out.append(doc.diag(("kind",), "FL406", f"a second org directory; {first} is "
                                "already the org directory of this lint", at_key=True))
    catalog = {pid: ProcessSignature.of(proc) for pid, (_, proc) in ws.processes.items()}
    for doc, proc in ws.all_processes:
        first_doc = ws.processes[proc.id][0]
        if first_doc is not doc:
            out.append(doc.diag(("id",), "FL224", f"process id '{proc.id}' is also defined in "
                                f"{first_doc.path}"))
            continue
        ctx = Context(doc=doc, proc=proc, org=org, catalog=catalog)
        for check in rules:
            check(ctx)
        if cross_file:
            check_subprocesses(ctx)
        out.extend(ctx.out)
    if report_files is not None:
        out = [d for d in out if d.file in report_files]
    return out


__all__ = ["Severity", "lint_workspace", "lint_org"]

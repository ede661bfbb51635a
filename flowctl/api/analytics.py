"""How processes perform: ``flowctl report`` and the heat map of ``render --heat``.

The store aggregates (:meth:`flowctl.store.base.Store.report`, SQL in
:mod:`flowctl.store.analytics`); this module checks who asks and for what,
names the stages from their definitions, orders them as the definition does,
and finds the bottleneck: the stage where instances spent the most time in
the period, and its share of all the time spent in stages.

A report covers every instance of the processes it names, so only users who
see every instance (admins and auditors, :mod:`flowctl.api.access`) may run
one; others are refused and pointed to what they may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Unpack

from msgspec import Struct
from msgspec.structs import replace

from flowctl import engine
from flowctl.api import access
from flowctl.api.definitions import DefinitionError, load_process
from flowctl.api.instances import Context, acting, parse_since, stored_process
from flowctl.diagram import DiagramFormat, Rendered, extract, render_graph
from flowctl.diagram.extract import START_ID
from flowctl.diagram.graphviz_run import DOT_TIMEOUT
from flowctl.diagram.heat import MEASURES, HeatData, apply_heat
from flowctl.engine.calendars import CalendarError, business_seconds
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import Calendar, OrgDirectory, Process, StageKind
from flowctl.store.analytics import (
    AGE_LABELS,
    BY_KEYS,
    BreakdownStat,
    DayCount,
    EdgeCount,
    HeatStat,
    HistogramBin,
    OutcomeStat,
    ProcessStat,
    ReportData,
    ReportFilter,
    ResultStat,
    RoundsStat,
    StageStat,
    WipStat,
    WorkingSeconds,
)
from flowctl.store.base import InstanceFilter, Store

__all__ = [
    "AGE_LABELS", "BY_KEYS", "BreakdownStat", "DayCount", "EdgeCount", "EmptyPeriod",
    "HistogramBin", "OutcomeStat", "ProcessReport", "ProcessStat", "Report", "ResultStat",
    "RoundsStat", "StageRow", "StageStat", "WipStat", "report",
]


class EmptyPeriod(FlowctlError):
    """Nothing happened in the period asked about: no figures to show (exit 1)."""

    exit_code = 1


class StageRow(Struct, frozen=True):
    """A stage's figures with what the definition says of it."""

    stage: str
    name: str
    kind: str  # task, approval, wait, subprocess (or "unknown": not in the definition now)
    stat: StageStat
    share: float  # of the time spent in all stages of the process, 0..1


class ProcessReport(Struct, frozen=True):
    process_id: str
    name: str
    summary: ProcessStat | None
    stages: tuple[StageRow, ...]
    outcomes: tuple[OutcomeStat, ...]
    results: tuple[ResultStat, ...]
    rounds: tuple[RoundsStat, ...]
    wip: tuple[WipStat, ...]
    breakdown: tuple[BreakdownStat, ...]
    edges: tuple[EdgeCount, ...]
    histogram: tuple[HistogramBin, ...]
    wip_days: tuple[tuple[str, int], ...]  # (day, instances running at its end)
    bottleneck: str  # one sentence
    bottleneck_stage: str | None
    definition: Process | None = None  # for labels and the heat map
    heat: tuple[HeatStat, ...] = ()  # a heat map's figures, when only they were asked for

    def stage_name(self, stage: str) -> str:
        for row in self.stages:
            if row.stage == stage:
                return row.name
        if self.definition is not None:
            found = self.definition.stage(stage)
            if found is not None:
                return found.label
        return stage


class Report(Struct, frozen=True):
    since: str | None
    until: str  # exclusive
    by: str
    processes: tuple[ProcessReport, ...]
    now: str | None = None  # when no --until was given: the moment the report describes


def human_duration(seconds: float | None) -> str:
    """``45 min``, ``3.5 h``, ``2.1 d``: a duration as people read it."""
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _bottleneck(name: str, rows: Sequence[StageRow]) -> tuple[str, str | None]:
    timed = [r for r in rows if r.stat.total_s > 0]
    if not timed:
        return f"{name}: no time was spent in any stage in this period.", None
    top = max(timed, key=lambda r: (r.stat.total_s, r.stage))
    s = top.stat
    return (
        f"The bottleneck of {name} is '{top.name}' ({top.stage}): {top.share:.0%} of all "
        f"the time instances spent in its stages ({human_duration(s.total_s)} of "
        f"{human_duration(sum(r.stat.total_s for r in timed))}), median "
        f"{human_duration(s.median_s)} per visit, p90 {human_duration(s.p90_s)}.",
        top.stage,
    )


def _definition(process_id: str, store: Store, processes_dir: str | None) -> Process | None:
    """The process as the folder defines it now, else as its newest instance ran it."""
    try:
        return load_process(process_id, processes_dir=processes_dir)
    except (DefinitionError, UsageError):
        pass
    for row in store.list_instances(InstanceFilter(process_id=process_id, limit=1)):
        try:
            return stored_process(store, row.definition_digest)
        except FlowctlError:
            return None
    return None


def _known(store: Store, process_id: str) -> bool:
    return any(True for _ in store.list_instances(InstanceFilter(process_id=process_id, limit=1)))


def _wip_days(days: Sequence[DayCount], since: str | None) -> tuple[tuple[str, int], ...]:
    """Instances running at the end of each day (one row per day with a start
    or an end), from ``since`` on."""
    running = 0
    out = []
    for d in days:
        running += d.started - d.ended
        if since is None or d.day >= since[:10]:
            out.append((d.day, running))
    return tuple(out)


def _stage_rows(process: Process | None, stats: Sequence[StageStat]) -> tuple[StageRow, ...]:
    total = sum(s.total_s for s in stats) or 1.0
    order = {s.id: i for i, s in enumerate(process.stages)} if process else {}
    rows = []
    for s in stats:
        stage = process.stage(s.stage) if process else None
        rows.append(StageRow(
            stage=s.stage,
            name=stage.label if stage else s.stage,
            kind=stage.kind.value if stage else "unknown",
            stat=s,
            share=s.total_s / total,
        ))
    rows.sort(key=lambda r: (order.get(r.stage, len(order)), r.stage))
    return tuple(rows)


def _check_period(since: str | None, until: str) -> None:
    if since is not None and since >= until:
        raise UsageError(
            f"--since {since} is not before --until {until}: the period is empty",
            hint="give --since an earlier time than --until (ISO-8601: 2026-11-01)",
        )


def report(
    processes: Sequence[str] = (),
    *,
    since: str | None = None,
    until: str | None = None,
    by: str = "stage",
    histogram_buckets: int = 12,
    parts: tuple[str, ...] | None = None,
    **context: Unpack[Context],
) -> Report:
    """How the named processes (none: every process with instances) performed
    from ``since`` until ``until`` (ISO-8601; default: now, exclusive).

    Raises ``UsageError`` (exit 2) for a time that is not one, ``--since`` not
    before ``until``, an unknown ``by`` or process; ``Refused`` (exit 1) for a
    user who does not see every instance; :class:`EmptyPeriod` (exit 1) when
    nothing happened in the period.
    """
    if by not in BY_KEYS:
        raise UsageError(f"cannot break a report down by '{by}'",
                         hint=f"use --by {'|'.join(BY_KEYS)}")
    start = parse_since(since)
    end_text = parse_since(until, "--until")
    with acting(**context) as s:
        end = end_text or engine.iso(s.now + timedelta(seconds=1))
        _check_period(start, end)
        if not access.sees_all(s.user, s.org):
            raise _not_allowed(s.user, s.org)
        wanted = tuple(dict.fromkeys(processes))
        for p in wanted:
            if not _known(s.store, p):
                _unknown_process(p, s.store, s.processes_dir)
        departments = tuple(
            (u.id, u.department) for u in s.org.users if u.department
        ) if by == "department" else ()
        flt = ReportFilter(until=end, since=start, process_ids=wanted, by=by,
                           departments=departments, histogram_buckets=histogram_buckets)
        if parts is not None:
            flt = replace(flt, parts=parts)
        data = s.store.report(flt, working_time(s.processes_dir))
        built = _build(data, wanted, s.store, s.processes_dir, start)
        if not any(_active(p) for p in built):
            what = ", ".join(wanted) if wanted else "any process"
            period = f"from {start} " if start else ""
            raise EmptyPeriod(
                f"nothing happened in {what} {period}until {end}: no instance started or "
                "ended, and none was at a stage",
                hint="widen the period (--since, --until), or check the process ids "
                     "(`flowctl list --process ID`)",
            )
        return Report(since=start, until=end, by=by, processes=built,
                      now=None if end_text else engine.iso(s.now))


def working_time(processes_dir: str | None) -> WorkingSeconds:
    """A visit's working time, for the stages whose SLA counts business hours in
    the process's calendar (the engine's default without one): what the store
    calls for each visit that left. Definitions are read from the processes
    folder, once per process; a process not there gets no working time."""
    known: dict[str, tuple[Calendar, frozenset[str]] | None] = {}

    def seconds(process_id: str, stage: str, entered: str, left: str) -> float | None:
        if process_id not in known:
            try:
                p = load_process(process_id, processes_dir=processes_dir)
            except FlowctlError:
                known[process_id] = None
            else:
                stages = frozenset(st.id for st in p.stages
                                   if st.sla is not None and st.sla.business_hours)
                known[process_id] = (p.calendar or Calendar(path=()), stages)
        found = known[process_id]
        if found is None or stage not in found[1]:
            return None
        try:
            return business_seconds(datetime.fromisoformat(entered),
                                    datetime.fromisoformat(left), found[0])
        except (ValueError, CalendarError):
            return None

    return seconds


def _active(p: ProcessReport) -> bool:
    summary = p.summary
    busy = summary is not None and (summary.started or summary.ended)
    return bool(busy or p.stages or p.wip or p.heat)


def _not_allowed(user: str, org: OrgDirectory) -> FlowctlError:
    admins = [u.id for u in org.members(engine.ADMIN_ROLE)]
    return engine.NotPermitted(
        f"{user} may not run reports: a report covers every instance of a process, and only "
        "admins and auditors see every instance",
        hint=f"ask an admin ({', '.join(admins) or 'none'}) or an auditor; `flowctl list` and "
             "`flowctl journal` show the instances you may see",
    )


def _unknown_process(p: str, store: Store, processes_dir: str | None) -> None:
    try:
        load_process(p, processes_dir=processes_dir)
    except DefinitionError:
        pass
    except UsageError as exc:
        raise UsageError(
            f"no process '{p}' in the store or the processes folder: {exc.message}",
            hint=exc.hint,
        ) from None
    # defined but never started: an empty report, said as such below


def _build(
    data: ReportData, wanted: tuple[str, ...], store: Store, processes_dir: str | None,
    since: str | None,
) -> tuple[ProcessReport, ...]:
    ids = list(wanted) or sorted(
        {s.process_id for s in data.processes} | {s.process_id for s in data.stages}
        | {w.process_id for w in data.wip} | {h.process_id for h in data.heat}
    )
    out = []
    for pid in ids:
        definition = _definition(pid, store, processes_dir)
        name = definition.name if definition else pid
        stages = _stage_rows(definition, [s for s in data.stages if s.process_id == pid])
        sentence, top = _bottleneck(name, stages)
        order = {st.id: i for i, st in enumerate(definition.stages)} if definition else {}

        def pos(stage: str, order: dict[str, int] = order) -> tuple[int, str]:
            return (order.get(stage, len(order)), stage)

        out.append(ProcessReport(
            process_id=pid,
            name=name,
            summary=next((s for s in data.processes if s.process_id == pid), None),
            stages=stages,
            outcomes=tuple(o for o in data.outcomes if o.process_id == pid),
            results=tuple(sorted((r for r in data.results if r.process_id == pid),
                                 key=lambda r: (pos(r.stage), -r.count, r.result))),
            rounds=tuple(sorted((r for r in data.rounds if r.process_id == pid),
                                key=lambda r: pos(r.stage))),
            wip=tuple(sorted((w for w in data.wip if w.process_id == pid),
                             key=lambda w: pos(w.stage))),
            breakdown=tuple(b for b in data.breakdown if b.process_id == pid),
            edges=tuple(e for e in data.edges if e.process_id == pid),
            histogram=tuple(h for h in data.histogram if h.process_id == pid),
            wip_days=_wip_days([d for d in data.days if d.process_id == pid], since),
            bottleneck=sentence,
            bottleneck_stage=top,
            definition=definition,
            heat=tuple(h for h in data.heat if h.process_id == pid),
        ))
    return tuple(out)


def approval_stages(p: ProcessReport) -> set[str]:
    """The stages whose results are decisions of approvers (approval stages)."""
    if p.definition is None:
        return set()
    return {s.id for s in p.definition.stages if s.kind is StageKind.APPROVAL}


HEAT_TITLES = {"time": "median time in stage", "count": "instances that entered",
               "sla": "SLA met"}


def heat_data(p: ProcessReport, measure: str, period: str) -> HeatData:
    """What the heat map of ``p`` shows for ``measure`` (time, count or sla)."""
    arrivals: dict[tuple[str | None, str], int] = {}
    results: dict[tuple[str, str], int] = {}
    entered: dict[str, int] = {}
    for e in p.edges:
        if e.target is None and e.source is not None and e.via is not None:
            results[(e.source, e.via)] = e.count
        elif e.target is not None:
            arrivals[(e.source, e.target)] = e.count
            entered[e.target] = entered.get(e.target, 0) + e.count
    values: dict[str, float] = {}
    figures: dict[str, str] = {}
    stats: Sequence[HeatStat | StageStat] = p.heat or [row.stat for row in p.stages]
    if measure == "time":
        for st in stats:
            if st.median_s is not None:
                values[st.stage] = st.median_s
                figures[st.stage] = f"median {human_duration(st.median_s)}"
        low, high = (human_duration(min(values.values(), default=0.0)),
                     human_duration(max(values.values(), default=0.0)))
    elif measure == "count":
        for stage, n in entered.items():
            values[stage] = float(n)
            figures[stage] = f"{n} entered"
        low, high = str(int(min(values.values(), default=0))), str(
            int(max(values.values(), default=0)))
    else:
        for s in stats:
            if s.sla_due:
                values[s.stage] = s.sla_met / s.sla_due
                figures[s.stage] = f"SLA met {s.sla_met / s.sla_due:.0%} of {s.sla_due}"
        low, high = "100%", "0%"
    return HeatData(measure=measure, values=values, figures=figures, results=results,
                    arrivals=arrivals, title=f"{HEAT_TITLES[measure]}, {period}",
                    low=low, high=high)


def heat_map(
    process: str,
    measure: str = "time",
    *,
    fmt: DiagramFormat | str = DiagramFormat.SVG,
    since: str | None = None,
    until: str | None = None,
    timeout: float = DOT_TIMEOUT,
    **context: Unpack[Context],
) -> Rendered:
    """The diagram of ``process`` as a heat map: each stage coloured by
    ``measure`` (time: median time in stage; count: instances that entered it;
    sla: share of SLAs met), each arrow labelled with how many instances took
    it, over the period. Same refusals as :func:`report`; DOT, SVG or PNG."""
    if measure not in MEASURES:
        raise UsageError(f"no heat map of '{measure}'", hint=f"use --heat {'|'.join(MEASURES)}")
    chosen = DiagramFormat(fmt)
    if chosen is DiagramFormat.MERMAID:
        raise UsageError("a heat map is drawn as svg, png or dot, not mermaid",
                         hint="pass --format svg (or -o FILE.svg / FILE.png)")
    r = report([process], since=since, until=until, parts=("heat", "edges"), **context)
    p = r.processes[0]
    if p.definition is None:
        raise UsageError(f"no definition of process '{process}' to draw",
                         hint="put its YAML in the processes folder")
    period = f"{r.since[:10] if r.since else 'the beginning'} until {(r.now or r.until)[:10]}"
    graph = apply_heat(extract(p.definition), heat_data(p, measure, period), START_ID)
    return render_graph(graph, chosen, timeout=timeout)

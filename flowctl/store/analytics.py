"""Process analytics computed by the database: the SQL behind ``flowctl report``.

A *visit* is one stay of an instance in a stage: from its ``stage_entered``
entry to the entry that left that same stage (a ``result``, a ``woke`` or a
``cancelled`` at it). Visits are paired per (instance, stage, branch) in
journal order, never by "the next entry of the instance", so an instance in
several stages at once (parallel branches, whose entries carry a ``branch``
key in their data) has each of its stays timed on its own. A stage entered
again (a rework loop) is a second visit of it. A parallel stage itself (its
``stage_entered`` names the ``join``) is no visit: the time is its branches'.

Everything is aggregated by SQL: window functions number the visits and pick
medians and 90th percentiles (nearest rank: the ``ceil(q * n)``-th smallest),
and only the aggregates come back to Python, so memory stays flat however
long the journal is. The SQL is written for both SQLite and PostgreSQL: what
differs (reading a key of the JSON data, seconds between two ISO-8601 times)
comes from a :class:`Dialect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from msgspec import Struct

# a visit's working time: (process, stage, entered, left) -> seconds, or None for a
# stage without business hours
WorkingSeconds = Callable[[str, str, str, str], float | None]

# journal kinds that leave the stage they name
LEAVING_KINDS = ("result", "woke", "cancelled", "branch_cancelled")
# journal kinds that arrive at the stage they name
# (``joined``: the join completes and the instance goes on from it, out of any branch)
ARRIVING_KINDS = ("stage_entered", "decision", "completed", "branch_joined", "branch_ended",
                  "joined")
# a journal row's kinds read for visits
VISIT_KINDS = ("stage_entered", "began", *LEAVING_KINDS, "escalation")
# age buckets of work in progress, in seconds (upper bounds; the last is open)
AGE_BUCKETS = (86_400, 3 * 86_400, 7 * 86_400)
AGE_LABELS = ("< 1 day", "1-3 days", "3-7 days", "> 7 days")
BY_KEYS = ("stage", "assignee", "department", "month")


class ReportFilter(Struct, frozen=True):
    """What a report covers. ``until`` (exclusive) is the moment the report
    describes: entries from then on are not read, and a visit still open then
    is counted as work in progress, its age measured to ``until``. ``since``
    keeps the visits entered and the instances started from then on (and the
    instances ended from then on, for outcomes and cycle times)."""

    until: str
    since: str | None = None
    process_ids: tuple[str, ...] = ()  # empty: every process
    by: str = "stage"  # stage | assignee | department | month: the breakdown's key
    departments: tuple[tuple[str, str], ...] = ()  # (user, department), for by=department
    histogram_buckets: int = 12
    # what to compute; "heat": only the per-stage figures a heat map shows
    # (:func:`heat_stats`), a lean query for ``render --heat`` with "edges"
    parts: tuple[str, ...] = ("stages", "results", "rounds", "processes", "wip", "breakdown",
                              "edges", "histogram")


class StageStat(Struct, frozen=True):
    process_id: str
    stage: str
    entered: int  # visits entered in the period
    left: int  # of them, left by the end of the period
    total_s: float  # time spent in the stage by all those visits (open ones up to ``until``)
    median_s: float | None  # time in stage of the visits that left
    p90_s: float | None
    max_s: float | None
    began: int  # visits where someone marked the work begun
    wait_median_s: float | None  # entered -> begun
    work_median_s: float | None  # begun -> left
    sla_due: int  # visits with an SLA whose outcome is known (left, or past due)
    sla_met: int  # of them, left by the due time
    reminders: int
    escalations: int
    overdue: int  # SLA due times passed while in the stage
    reentered: int  # visits that were not the instance's first of this stage
    longest_holder: str | None  # who reported the result of the longest visit
    longest_instance: str | None
    longest_s: float | None
    # in working time, for a stage whose SLA counts business hours (else None)
    working_median_s: float | None = None
    working_p90_s: float | None = None


class HeatStat(Struct, frozen=True):
    """What a heat map colours and labels of one stage (the same figures as
    :class:`StageStat`'s fields of the same names)."""

    process_id: str
    stage: str
    entered: int
    total_s: float
    median_s: float | None
    sla_due: int
    sla_met: int


class ResultStat(Struct, frozen=True):
    process_id: str
    stage: str
    result: str
    count: int
    sent_back: int  # of them, followed by the instance entering this stage again


class RoundsStat(Struct, frozen=True):
    process_id: str
    stage: str
    instances: int  # instances that entered the stage
    reworked: int  # of them, entered it more than once
    max_rounds: int
    mean_rounds: float


class ProcessStat(Struct, frozen=True):
    process_id: str
    started: int
    ended: int
    completed: int  # ended at an end stage (any outcome)
    cancelled: int
    cycle_median_s: float | None  # started -> ended at an end stage
    cycle_p90_s: float | None
    cycle_max_s: float | None


class OutcomeStat(Struct, frozen=True):
    process_id: str
    outcome: str
    count: int


class WipStat(Struct, frozen=True):
    process_id: str
    stage: str
    open: int
    ages: tuple[int, int, int, int]  # per AGE_LABELS
    oldest_s: float
    oldest_instance: str


class BreakdownStat(Struct, frozen=True):
    process_id: str
    key: str  # the stage, assignee, department or month
    visits: int
    left: int
    median_s: float | None
    p90_s: float | None
    max_s: float | None
    total_s: float


class EdgeCount(Struct, frozen=True):
    """How many times instances went ``source`` -> ``target`` (``source`` None:
    the instance started there); ``via``: the result or decision branch."""

    process_id: str
    source: str | None
    target: str
    via: str | None
    count: int


class HistogramBin(Struct, frozen=True):
    process_id: str
    low_s: float
    high_s: float
    count: int


class DayCount(Struct, frozen=True):
    process_id: str
    day: str  # YYYY-MM-DD
    started: int
    ended: int


class ReportData(Struct, frozen=True):
    stages: tuple[StageStat, ...] = ()
    results: tuple[ResultStat, ...] = ()
    rounds: tuple[RoundsStat, ...] = ()
    processes: tuple[ProcessStat, ...] = ()
    outcomes: tuple[OutcomeStat, ...] = ()
    wip: tuple[WipStat, ...] = ()
    breakdown: tuple[BreakdownStat, ...] = ()
    edges: tuple[EdgeCount, ...] = ()
    histogram: tuple[HistogramBin, ...] = ()
    days: tuple[DayCount, ...] = ()
    heat: tuple[HeatStat, ...] = ()


class Dialect(NamedTuple):
    """What the SQL of one database spells its own way."""

    param: str  # a placeholder: "?" or "%s"
    json_text: str  # a key of the JSON ``data`` column as text: "{col}", "{key}"
    seconds: str  # seconds from "{a}" to "{b}", both ISO-8601 UTC texts
    # the function that counts working seconds (process, stage, from, to), when the
    # backend can call one into Python (SQLite's create_function); None: not counted
    working: str | None = None


SQLITE = Dialect(
    param="?",
    json_text="json_extract({col}, '$.{key}')",
    seconds="ROUND((julianday({b}) - julianday({a})) * 86400.0)",
    working="flowctl_working_seconds",
)
POSTGRES = Dialect(
    param="%s",
    json_text="({col}::jsonb ->> '{key}')",
    seconds="ROUND(EXTRACT(EPOCH FROM ({b}::timestamptz - {a}::timestamptz)))::float8",
)


class Query(NamedTuple):
    sql: str
    params: tuple[Any, ...]


def _json(d: Dialect, col: str, key: str) -> str:
    return d.json_text.format(col=col, key=key)


def _secs(d: Dialect, a: str, b: str) -> str:
    return d.seconds.format(a=a, b=b)


def _branch(d: Dialect) -> str:
    """The parallel branch of an entry ('' outside one). A decision's own
    ``branch`` is the number of the condition it took; inside a parallel branch
    that number is ``choice`` and ``branch`` names the parallel branch."""
    return (f"CASE WHEN kind = 'decision' AND {_json(d, 'data', 'choice')} IS NULL THEN '' "
            f"ELSE COALESCE(CAST({_json(d, 'data', 'branch')} AS TEXT), '') END")


def _in(d: Dialect, column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join([d.param] * len(values))})"


def _kinds(kinds: tuple[str, ...]) -> str:
    # constants of this module, never user input
    return "(" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _journal_where(d: Dialect, flt: ReportFilter, kinds: tuple[str, ...]) -> Query:
    where = [f"kind IN {_kinds(kinds)}", f"at < {d.param}"]
    params: list[Any] = [flt.until]
    if flt.process_ids:
        where.append(_in(d, "process_id", flt.process_ids))
        params += flt.process_ids
    return Query(" AND ".join(where), tuple(params))


def visits_table(d: Dialect, flt: ReportFilter, *, working: bool = False) -> Query:
    """``CREATE TEMPORARY TABLE report_all``: every visit entered before
    ``until``, timed, ``in_period`` when entered from ``since`` on. The views of
    :data:`VIEWS` read it."""
    where, params = _journal_where(d, flt, VISIT_KINDS)
    p = d.param
    since = f"entered_at >= {p}" if flt.since else "1 = 1"
    # ``working``: the backend has registered d.working, which counts the working
    # time of a visit of a stage with business hours (NULL for other stages); else
    # the column stays NULL, a number the backend may fill in (see WORKING_TABLE)
    working_s = (f"CASE WHEN left_at IS NOT NULL THEN ROUND({d.working}(process_id, stage, "
                 "entered_at, left_at)) END" if working and d.working
                 else "CAST(NULL AS DOUBLE PRECISION)")
    sql = f"""
CREATE TEMPORARY TABLE report_all AS
WITH ev AS (
    SELECT instance_id, process_id, seq, at, kind, stage, result, actor,
        {_branch(d)} AS branch,
        CASE WHEN kind = 'stage_entered' THEN {_json(d, 'data', 'due_at')} END AS due_at,
        CASE WHEN kind = 'escalation' THEN {_json(d, 'data', 'action')} END AS action
    FROM journal
    WHERE stage IS NOT NULL AND {where}
        AND NOT (kind = 'stage_entered' AND {_json(d, 'data', 'join')} IS NOT NULL)
),
numbered AS (
    SELECT ev.*,
        SUM(CASE WHEN kind = 'stage_entered' THEN 1 ELSE 0 END) OVER (
            PARTITION BY instance_id, stage, branch ORDER BY seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit
    FROM ev
),
visits AS (
    SELECT instance_id, process_id, stage, branch, visit,
        MIN(CASE WHEN kind = 'stage_entered' THEN at END) AS entered_at,
        MAX(due_at) AS due_at,
        MIN(CASE WHEN kind = 'began' THEN at END) AS began_at,
        MIN(CASE WHEN kind IN {_kinds(LEAVING_KINDS)} THEN at END) AS left_at,
        MAX(CASE WHEN kind IN {_kinds(LEAVING_KINDS)} THEN actor END) AS holder,
        MAX(CASE WHEN kind = 'result' THEN result END) AS result,
        SUM(CASE WHEN action = 'remind' THEN 1 ELSE 0 END) AS reminders,
        SUM(CASE WHEN kind = 'escalation' AND action <> 'remind' THEN 1 ELSE 0 END)
            AS escalations
    FROM numbered
    WHERE visit > 0
    GROUP BY instance_id, process_id, stage, branch, visit
)
SELECT visits.*,
    {_secs(d, 'entered_at', f'COALESCE(left_at, {p})')} AS dur,
    CASE WHEN left_at IS NULL THEN 0 ELSE 1 END AS closed,
    CASE WHEN began_at IS NOT NULL THEN {_secs(d, 'entered_at', 'began_at')} END AS wait_s,
    CASE WHEN began_at IS NOT NULL AND left_at IS NOT NULL
        THEN {_secs(d, 'began_at', 'left_at')} END AS work_s,
    {working_s} AS working_s,
    MAX(visit) OVER (PARTITION BY instance_id, stage, branch) AS rounds,
    CASE WHEN {since} THEN 1 ELSE 0 END AS in_period
FROM visits
WHERE entered_at IS NOT NULL
"""
    return Query(sql, (*params, flt.until, *((flt.since,) if flt.since else ())))


VIEWS = (
    "CREATE TEMPORARY VIEW report_visits AS SELECT * FROM report_all WHERE in_period = 1",
    "CREATE TEMPORARY VIEW report_open AS SELECT * FROM report_all WHERE closed = 0",
)
TEMPORARY = ("report_visits", "report_open", "report_all", "report_cycles", "report_instances",
             "report_working")

# A backend whose SQL cannot call Python (PostgreSQL) counts the working time in
# Python, stage by stage, over the closed visits streamed from report_all
# (WORKING_STAGES, WORKING_VISITS), writes it to this table and sets report_all's
# working_s from it (SET_WORKING), rounded as SQLite's ROUND does (half away from
# zero): the aggregates are then the same SQL on both stores.
WORKING_TABLE = """CREATE TEMPORARY TABLE report_working (
    process_id TEXT, stage TEXT, instance_id TEXT, branch TEXT, visit BIGINT,
    seconds DOUBLE PRECISION)"""
# one closed visit per stage that had some (its times probe whether the stage counts
# business hours: ``working_seconds`` says None for a stage that does not)
WORKING_STAGES = """SELECT process_id, stage, MIN(entered_at) FROM report_all
WHERE closed = 1 AND in_period = 1 GROUP BY process_id, stage ORDER BY process_id, stage"""
WORKING_VISITS = """SELECT instance_id, branch, visit, entered_at, left_at FROM report_all
WHERE closed = 1 AND in_period = 1 AND process_id = {p} AND stage = {p}"""
SET_WORKING = """UPDATE report_all SET working_s = ROUND(CAST(w.seconds AS NUMERIC))
FROM report_working w
WHERE report_all.process_id = w.process_id AND report_all.stage = w.stage
    AND report_all.instance_id = w.instance_id AND report_all.branch = w.branch
    AND report_all.visit = w.visit"""


def _percentiles(source: str, keys: str, value: str, where: str = "1 = 1") -> str:
    """Median, 90th percentile (nearest rank) and maximum of ``value`` per ``keys``."""
    return f"""
SELECT {keys},
    MAX(CASE WHEN rn = (n + 1) / 2 THEN v END) AS median,
    MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN v END) AS p90,
    MAX(v) AS maximum
FROM (
    SELECT {keys}, {value} AS v,
        ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {value}) AS rn,
        COUNT(*) OVER (PARTITION BY {keys}) AS n
    FROM {source}
    WHERE {value} IS NOT NULL AND {where}
) ranked
GROUP BY {keys}"""


def stage_stats(d: Dialect, flt: ReportFilter, table: str = "report_visits") -> Query:
    p = d.param
    sql = f"""
WITH counts AS (
    SELECT process_id, stage, COUNT(*) AS entered, SUM(closed) AS left_n, SUM(dur) AS total,
        SUM(CASE WHEN began_at IS NOT NULL THEN 1 ELSE 0 END) AS began,
        SUM(CASE WHEN due_at IS NOT NULL AND (left_at IS NOT NULL OR due_at < {p})
            THEN 1 ELSE 0 END) AS sla_due,
        SUM(CASE WHEN due_at IS NOT NULL AND left_at IS NOT NULL AND left_at <= due_at
            THEN 1 ELSE 0 END) AS sla_met,
        SUM(reminders) AS reminders, SUM(escalations) AS escalations,
        SUM(CASE WHEN due_at IS NOT NULL AND COALESCE(left_at, {p}) > due_at
            THEN 1 ELSE 0 END) AS overdue,
        SUM(CASE WHEN visit > 1 THEN 1 ELSE 0 END) AS reentered
    FROM {table} GROUP BY process_id, stage
),
dur AS (
    -- one sort for the median, p90, maximum and the longest visit (the last
    -- row: the longest time, the first instance id among equals)
    SELECT process_id, stage,
        MAX(CASE WHEN rn = (n + 1) / 2 THEN dur END) AS median,
        MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN dur END) AS p90,
        MAX(dur) AS maximum,
        MAX(CASE WHEN rn = n THEN holder END) AS holder,
        MAX(CASE WHEN rn = n THEN instance_id END) AS instance_id
    FROM (
        SELECT process_id, stage, dur, holder, instance_id,
            ROW_NUMBER() OVER w AS rn,
            COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
        FROM {table}
        WHERE dur IS NOT NULL AND closed = 1
        WINDOW w AS (PARTITION BY process_id, stage ORDER BY dur, instance_id DESC)
    ) ranked
    GROUP BY process_id, stage
),
wait AS ({_percentiles(table, 'process_id, stage', 'wait_s')}),
work AS ({_percentiles(table, 'process_id, stage', 'work_s')}),
working AS ({_percentiles(table, 'process_id, stage', 'working_s', 'closed = 1')})
SELECT c.process_id, c.stage, c.entered, c.left_n, c.total,
    dur.median, dur.p90, dur.maximum, c.began, wait.median, work.median,
    c.sla_due, c.sla_met, c.reminders, c.escalations, c.overdue, c.reentered,
    dur.holder, dur.instance_id, dur.maximum, working.median, working.p90
FROM counts c
LEFT JOIN dur ON dur.process_id = c.process_id AND dur.stage = c.stage
LEFT JOIN wait ON wait.process_id = c.process_id AND wait.stage = c.stage
LEFT JOIN work ON work.process_id = c.process_id AND work.stage = c.stage
LEFT JOIN working ON working.process_id = c.process_id AND working.stage = c.stage
ORDER BY c.process_id, c.stage"""
    return Query(sql, (flt.until, flt.until))


def result_stats(table: str = "report_visits") -> str:
    return f"""
SELECT process_id, stage, result, COUNT(*),
    SUM(CASE WHEN rounds > visit THEN 1 ELSE 0 END)
FROM {table} WHERE result IS NOT NULL
GROUP BY process_id, stage, result
ORDER BY process_id, stage, COUNT(*) DESC, result"""


def rounds_stats(table: str = "report_visits") -> str:
    return f"""
SELECT process_id, stage, COUNT(*), SUM(CASE WHEN r > 1 THEN 1 ELSE 0 END), MAX(r),
    AVG(1.0 * r)
FROM (SELECT process_id, stage, instance_id, MAX(rounds) AS r FROM {table}
      GROUP BY process_id, stage, instance_id) per_instance
GROUP BY process_id, stage
ORDER BY process_id, stage"""


def wip_stats(d: Dialect) -> Query:
    """Visits still open at ``until``, whenever they were entered (``since`` does
    not apply: work in progress is a state, not an event)."""
    a, b, c = AGE_BUCKETS
    sql = f"""
SELECT process_id, stage, COUNT(*),
    SUM(CASE WHEN dur < {a} THEN 1 ELSE 0 END),
    SUM(CASE WHEN dur >= {a} AND dur < {b} THEN 1 ELSE 0 END),
    SUM(CASE WHEN dur >= {b} AND dur < {c} THEN 1 ELSE 0 END),
    SUM(CASE WHEN dur >= {c} THEN 1 ELSE 0 END),
    MAX(dur),
    MIN(CASE WHEN oldest = 1 THEN instance_id END)
FROM (
    SELECT process_id, stage, instance_id, dur,
        ROW_NUMBER() OVER (PARTITION BY process_id, stage ORDER BY dur DESC, instance_id)
            AS oldest
    FROM report_open
) o
GROUP BY process_id, stage
ORDER BY process_id, stage"""
    return Query(sql, ())


def breakdown_stats(d: Dialect, flt: ReportFilter, table: str = "report_visits") -> Query:
    """Visits grouped by ``flt.by``: stage, the assignee who left it, their
    department, or the month it was entered."""
    params: tuple[Any, ...] = ()
    source = table
    dept = ""
    if flt.by == "assignee":
        key = "COALESCE(holder, '(open)')"
    elif flt.by == "month":
        key = "substr(entered_at, 1, 7)"
    elif flt.by == "department":
        rows = flt.departments or (("", ""),)
        values = ", ".join([f"({d.param}, {d.param})"] * len(rows))
        params = tuple(x for row in rows for x in row)
        dept = f"dept(username, department) AS (VALUES {values}),\n"
        source = (f"(SELECT v.*, COALESCE(dept.department, "
                  f"CASE WHEN v.holder IS NULL THEN '(open)' ELSE '(none)' END) AS dkey "
                  f"FROM {table} v LEFT JOIN dept ON dept.username = v.holder) with_dept")
        key = "dkey"
    else:
        key = "stage"
    # months in time order, other keys by the time spent
    order = "c.k NULLS FIRST" if flt.by == "month" else "c.total DESC, c.k NULLS FIRST"
    sql = f"""
WITH {dept}keyed AS (SELECT process_id, {key} AS k, dur, closed FROM {source}),
counts AS (SELECT process_id, k, COUNT(*) AS visits, SUM(closed) AS left_n, SUM(dur) AS total
           FROM keyed GROUP BY process_id, k),
pct AS ({_percentiles('keyed', 'process_id, k', 'dur', 'closed = 1')})
SELECT c.process_id, c.k, c.visits, c.left_n, pct.median, pct.p90, pct.maximum, c.total
FROM counts c LEFT JOIN pct ON pct.process_id = c.process_id AND pct.k = c.k
ORDER BY c.process_id, {order}"""
    return Query(sql, params)


def stage_breakdown(stages: tuple[StageStat, ...]) -> tuple[BreakdownStat, ...]:
    """The breakdown by stage, from the stage statistics that hold the same
    figures (visits, left, median, p90, maximum and total time of the same
    visits): what :func:`breakdown_stats` gives for ``by="stage"``, in its
    order (per process, the most time first, then by stage id), without
    sorting every visit again."""
    rows = sorted(stages, key=lambda s: (s.process_id, -s.total_s, s.stage))
    return tuple(BreakdownStat(s.process_id, s.stage, s.entered, s.left, s.median_s, s.p90_s,
                               s.max_s, s.total_s) for s in rows)


def instances_table(d: Dialect, flt: ReportFilter) -> Query:
    """``CREATE TEMPORARY TABLE report_instances``: each instance's start, end and outcome."""
    where, params = _journal_where(d, flt, ("started", "completed", "cancelled"))
    sql = f"""
CREATE TEMPORARY TABLE report_instances AS
SELECT instance_id, process_id,
    MIN(CASE WHEN kind = 'started' THEN at END) AS started_at,
    MIN(CASE WHEN kind IN ('completed', 'cancelled') THEN at END) AS ended_at,
    MAX(CASE WHEN kind = 'completed' THEN {_json(d, 'data', 'outcome')}
             WHEN kind = 'cancelled' THEN 'cancelled' END) AS outcome,
    MAX(CASE WHEN kind = 'cancelled' THEN 1 ELSE 0 END) AS cancelled
FROM journal WHERE {where}
GROUP BY instance_id, process_id"""
    return Query(sql, params)


def process_stats(d: Dialect, flt: ReportFilter) -> Query:
    p = d.param
    since = flt.since or ""
    sql = f"""
WITH counts AS (
    SELECT process_id,
        SUM(CASE WHEN started_at >= {p} THEN 1 ELSE 0 END) AS started,
        SUM(CASE WHEN ended_at >= {p} THEN 1 ELSE 0 END) AS ended,
        SUM(CASE WHEN ended_at >= {p} AND cancelled = 0 THEN 1 ELSE 0 END) AS completed,
        SUM(CASE WHEN ended_at >= {p} AND cancelled = 1 THEN 1 ELSE 0 END) AS cancelled
    FROM report_instances GROUP BY process_id
),
cycle AS ({_percentiles('report_cycles', 'process_id', 'cycle_s')})
SELECT c.process_id, c.started, c.ended, c.completed, c.cancelled,
    cycle.median, cycle.p90, cycle.maximum
FROM counts c LEFT JOIN cycle ON cycle.process_id = c.process_id
ORDER BY c.process_id"""
    return Query(sql, (since, since, since, since))


def cycles_table(d: Dialect, flt: ReportFilter) -> Query:
    """``CREATE TEMPORARY TABLE report_cycles``: the cycle times of the instances
    that ended at an end stage in the period."""
    sql = f"""
CREATE TEMPORARY TABLE report_cycles AS
SELECT process_id, instance_id, ended_at, {_secs(d, "started_at", "ended_at")} AS cycle_s
FROM report_instances
WHERE ended_at IS NOT NULL AND started_at IS NOT NULL AND cancelled = 0 AND ended_at >= {d.param}"""
    return Query(sql, (flt.since or "",))


def outcome_stats(d: Dialect, flt: ReportFilter) -> Query:
    sql = f"""
SELECT process_id, outcome, COUNT(*) FROM report_instances
WHERE ended_at >= {d.param} AND outcome IS NOT NULL
GROUP BY process_id, outcome ORDER BY process_id, COUNT(*) DESC, outcome NULLS FIRST"""
    return Query(sql, (flt.since or "",))


def histogram(d: Dialect, buckets: int) -> str:
    """Cycle times in ``buckets`` bins of equal width from 0 to the longest. The
    bin is an integer division of whole seconds: CAST(real AS INTEGER) truncates
    on SQLite but rounds on PostgreSQL."""
    return f"""
WITH w AS (SELECT process_id, MAX(cycle_s) AS top FROM report_cycles GROUP BY process_id)
SELECT c.process_id, w.top,
    CASE WHEN w.top <= 0 THEN 0
         WHEN c.cycle_s >= w.top THEN {buckets - 1}
         ELSE CAST(ROUND(c.cycle_s) AS BIGINT) * {buckets} / CAST(ROUND(w.top) AS BIGINT)
         END AS bin,
    COUNT(*)
FROM report_cycles c JOIN w ON w.process_id = c.process_id
GROUP BY c.process_id, w.top, bin
ORDER BY c.process_id, bin"""


def day_counts() -> str:
    return """
SELECT process_id, day, SUM(s), SUM(e) FROM (
    SELECT process_id, substr(started_at, 1, 10) AS day, 1 AS s, 0 AS e
    FROM report_instances WHERE started_at IS NOT NULL
    UNION ALL
    SELECT process_id, substr(ended_at, 1, 10) AS day, 0 AS s, 1 AS e
    FROM report_instances WHERE ended_at IS NOT NULL
) d
GROUP BY process_id, day ORDER BY process_id, day"""


def edge_counts(d: Dialect, flt: ReportFilter) -> Query:
    """Arrows taken: a result reported at a stage (by its name), a decision's
    branch (by its number, or ``default``), and each arrival at a stage from the
    stage the instance (branch) was at before (for arrows without a result)."""
    where, params = _journal_where(d, flt, (*ARRIVING_KINDS, "result"))
    p = d.param
    since = f"at >= {p}" if flt.since else "1 = 1"
    sql = f"""
WITH ev AS (
    SELECT process_id, instance_id, seq, at, kind, stage, result,
        {_branch(d)} AS branch,
        CASE WHEN kind = 'decision' THEN COALESCE(CAST({_json(d, 'data', 'choice')} AS TEXT),
            CAST({_json(d, 'data', 'branch')} AS TEXT)) END AS via
    FROM journal WHERE stage IS NOT NULL AND {where}
),
arrivals AS (
    SELECT process_id, at, stage, via, kind,
        LAG(stage) OVER (PARTITION BY instance_id, branch ORDER BY seq) AS source
    FROM ev WHERE kind <> 'result'
)
SELECT process_id, source, stage, NULL, COUNT(*) FROM arrivals WHERE {since}
GROUP BY process_id, source, stage
UNION ALL
SELECT process_id, stage, NULL, result, COUNT(*) FROM ev
WHERE kind = 'result' AND {since} GROUP BY process_id, stage, result
UNION ALL
SELECT process_id, stage, NULL, via, COUNT(*) FROM ev
WHERE kind = 'decision' AND {since} GROUP BY process_id, stage, via
ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST, 4 NULLS FIRST"""
    extra = (flt.since,) if flt.since else ()
    return Query(sql, (*params, *extra, *extra, *extra))


def heat_stats(d: Dialect, flt: ReportFilter) -> Query:
    """Per stage, what a heat map shows: visits entered in the period, their
    total time, the median time of those that left, SLAs due and met: the
    figures :func:`stage_stats` gives, in one statement over the entering and
    leaving entries only. A visit is a ``stage_entered`` entry; it was left by
    the next entry of the same (instance, stage, branch) when that one is a
    leaving kind (a next ``stage_entered``, or none: still open), which is the
    pairing of :func:`visits_table` without grouping every entry into visits."""
    where, params = _journal_where(d, flt, ("stage_entered", *LEAVING_KINDS))
    p = d.param
    since = f"at >= {p}" if flt.since else "1 = 1"
    sql = f"""
WITH rows_ AS MATERIALIZED (
    SELECT instance_id, process_id, seq, stage, kind, at, {_branch(d)} AS branch,
        CASE WHEN kind = 'stage_entered' THEN {_json(d, 'data', 'due_at')} END AS due_at
    FROM journal
    WHERE stage IS NOT NULL AND {where}
        AND NOT (kind = 'stage_entered' AND {_json(d, 'data', 'join')} IS NOT NULL)
),
ev AS (
    SELECT process_id, stage, kind, at, due_at,
        LEAD(kind) OVER w AS next_kind,
        LEAD(at) OVER w AS next_at
    FROM rows_
    WINDOW w AS (PARTITION BY instance_id, stage, branch ORDER BY seq)
),
timed AS (
    SELECT process_id, stage, due_at, left_at,
        {_secs(d, 'at', f'COALESCE(left_at, {p})')} AS dur
    FROM (SELECT process_id, stage, at, due_at,
              CASE WHEN next_kind <> 'stage_entered' THEN next_at END AS left_at
          FROM ev WHERE kind = 'stage_entered' AND {since}) entered
),
ranked AS (
    SELECT process_id, stage, due_at, left_at, dur,
        ROW_NUMBER() OVER w AS rn,
        SUM(CASE WHEN left_at IS NOT NULL THEN 1 ELSE 0 END) OVER (
            w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
    FROM timed
    -- one sort: the visits that left first, by time in stage
    WINDOW w AS (PARTITION BY process_id, stage
                 ORDER BY CASE WHEN left_at IS NULL THEN 1 ELSE 0 END, dur)
)
SELECT process_id, stage, COUNT(*), SUM(dur),
    MAX(CASE WHEN left_at IS NOT NULL AND rn = (n + 1) / 2 THEN dur END),
    SUM(CASE WHEN due_at IS NOT NULL AND (left_at IS NOT NULL OR due_at < {p})
        THEN 1 ELSE 0 END),
    SUM(CASE WHEN due_at IS NOT NULL AND left_at IS NOT NULL AND left_at <= due_at
        THEN 1 ELSE 0 END)
FROM ranked
GROUP BY process_id, stage
ORDER BY process_id, stage"""
    extra = (flt.since,) if flt.since else ()
    return Query(sql, (*params, flt.until, *extra, flt.until))

"""``flowctl test``: run scenario files against the definitions in the working tree.

Each scenario runs on its own SQLite store in memory (``:memory:``, nothing on
disk) through the same calls as the operator commands: :func:`start`,
:func:`advance` and the others of :mod:`flowctl.api.instances`, and
:func:`flowctl.api.timers.tick` when the clock moves. So a scenario sees the
rules, refusals, journal entries and notifications an operator would, under
the ``"trust"`` identity policy (a scenario acts as several people).

Before anything runs, each file is read (the hardened YAML loader and the
scenario JSON Schema) and checked against its process and the org directory
(:mod:`flowctl.lint.scenarios`): a file with problems is reported and its
scenarios are not run. Many scenarios run in worker processes
(``concurrent.futures``). The report carries each scenario's result (a
failure at the ``file:line`` of its step, with what was expected and what
was found) and the coverage of each process tested: the stages, results and
decision branches that no scenario took.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from msgspec import Struct, field

from flowctl import engine
from flowctl.api import workspace
from flowctl.api.definitions import DefinitionError
from flowctl.api.instances import (
    InstanceView,
    Loaded,
    advance,
    begin,
    cancel,
    from_row,
    org_directory,
    reassign,
    start,
    stored_process,
    task_done,
    view,
)
from flowctl.api.timers import tick
from flowctl.definition import scenario as scenario_file
from flowctl.definition.durations import parse_duration
from flowctl.definition.files import expand_paths
from flowctl.definition.scenario import Scenario, ScenarioFile, Step
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.engine.calendars import add_duration
from flowctl.errors import FlowctlError, UsageError
from flowctl.lint import scenarios as scenario_lint
from flowctl.lint.run import process_files
from flowctl.model import Calendar, Process, StageKind
from flowctl.store.base import InstanceFilter, JournalEntry, JournalFilter
from flowctl.store.sqlite import SqliteStore

PARALLEL_MIN: Final = 40  # from this many scenarios on, worker processes run them
TRUST: Final = workspace.IDENTITY_TRUST


class Failure(Struct, frozen=True):
    """Where a scenario failed: its step, what was expected, what was found."""

    line: int
    step: int
    action: str  # "act as carol: approve"
    message: str
    expected: Any = None
    actual: Any = None


class ScenarioResult(Struct, frozen=True):
    file: str
    line: int
    process: str
    name: str
    passed: bool
    seconds: float
    failure: Failure | None = None
    steps: int = 0
    # what it took: ("stage", process, stage), ("result", process, stage, result),
    # ("branch", process, stage, "1" | "2" | ... | "default")
    covered: tuple[tuple[str, ...], ...] = ()


class Coverage(Struct, frozen=True):
    """What the scenarios of one process took, and what no scenario took."""

    process: str
    stages: int
    results: int
    branches: int
    missing_stages: tuple[str, ...] = ()
    missing_results: tuple[str, ...] = ()  # "stage: result"
    missing_branches: tuple[str, ...] = ()  # "stage: when <condition>" / "stage: default"

    @property
    def total(self) -> int:
        return self.stages + self.results + self.branches

    @property
    def taken(self) -> int:
        return self.total - len(self.missing_stages) - len(self.missing_results) \
            - len(self.missing_branches)

    @property
    def percent(self) -> float:
        return 100.0 * self.taken / self.total if self.total else 100.0


class ScenarioReport(Struct):
    diagnostics: list[Diagnostic]  # problems of the scenario files: those files did not run
    results: list[ScenarioResult]
    coverage: list[Coverage]
    files: list[str]
    seconds: float
    min_coverage: float | None = None
    sources: dict[str, str] = field(default_factory=dict)  # file -> text, for snippets
    workers: int = 1

    @property
    def failed(self) -> list[ScenarioResult]:
        return [r for r in self.results if not r.passed]

    @property
    def below(self) -> list[Coverage]:
        """Processes whose coverage is under ``min_coverage``."""
        if self.min_coverage is None:
            return []
        return [c for c in self.coverage if c.percent + 1e-9 < self.min_coverage]

    def exit_code(self) -> int:
        """0 every scenario passed (and coverage is enough), 1 otherwise."""
        errors = any(d.severity is Severity.ERROR for d in self.diagnostics)
        return 1 if errors or self.failed or self.below else 0


# ---------------------------------------------------------------- running


class _Run:
    """One scenario on its own store in memory."""

    def __init__(self, sf: ScenarioFile, scenario: Scenario, loaded: Loaded) -> None:
        self.sf = sf
        self.scenario = scenario
        self.loaded = loaded
        self.store = _empty_store().copy_in_memory(search_index=False)
        self.now = engine.parse_time(scenario.clock)
        self.instance: str | None = None
        self.seen_seq = 0  # journal entries up to this one were looked at
        self.last_seq = 0  # the journal's last entry
        self.seen_notice = 0  # notifications up to this id were looked at

    def context(self, user: str) -> dict[str, Any]:
        return {"as_user": user, "store": self.store, "loaded": self.loaded,
                "now": self.now, "identity": TRUST}

    def act(self, step: Step) -> None:
        a = step.args
        name = step.action
        if name == "after":
            # calendar months in UTC, working days Monday to Friday
            self.now = add_duration(self.now, parse_duration(a), Calendar(path=()))
            report = tick(now=self.now, store=self.store, deliver=False, loaded=self.loaded)
            self.wrote(e for f in report.fired for e in f.entries)
            return
        ctx = self.context(a["as"])
        if name == "start":
            result = start(self.sf.process, values=a.get("fields") or {}, note=a.get("note"),
                           **ctx)
            if self.instance is None:
                self.instance = result.instance.id
            self.wrote(result.entries)
            return
        iid = self.require_instance()
        if name == "act":
            result = advance(iid, result=a["result"], values=a.get("fields") or {},
                             comment=a.get("comment"), next_assignee=a.get("next_assignee"),
                             stage=a.get("stage"), **ctx)
        elif name == "begin":
            result = begin(iid, stage=a.get("stage"), **ctx)
        elif name == "reassign":
            result = reassign(iid, user=a["to"], comment=a.get("comment"), stage=a.get("stage"),
                              **ctx)
        elif name == "cancel":
            result = cancel(iid, reason=a.get("reason"), **ctx)
        else:  # task_done
            result = task_done(iid, a["task"], comment=a.get("comment"), **ctx)
        self.wrote(result.entries)

    def wrote(self, entries: Iterable[JournalEntry]) -> None:
        """Entries written by the last action: the journal goes up to them."""
        self.last_seq = max([self.last_seq, *(e.seq or 0 for e in entries)])

    def require_instance(self) -> str:
        if self.instance is None:
            raise _Broken("no instance yet: a scenario starts with a `start` step")
        return self.instance

    def run(self) -> tuple[Failure | None, int]:
        for step in self.scenario.steps:
            try:
                failure = self.step(step)
            except Exception as exc:  # a fault of flowctl's, not a refusal: this one fails
                failure = Failure(step.line, step.number, step.describe(),
                                  f"internal error: {type(exc).__name__}: {exc}")
            if failure is not None:
                return failure, step.number
        return None, len(self.scenario.steps)

    def step(self, step: Step) -> Failure | None:
        def fail(message: str, expected: Any = None, actual: Any = None) -> Failure:
            return Failure(step.line, step.number, step.describe(), message, expected, actual)

        if step.action is not None:
            try:
                self.act(step)
            except _Broken as exc:
                return fail(str(exc))
            except FlowctlError as exc:
                if step.refused is None:
                    return fail("was refused", None, exc.message)
                want = step.refused
                if want.message not in exc.message:
                    return fail("refused with another message",
                                f"a message containing {want.message!r}", exc.message)
                if want.exit_code is not None and want.exit_code != exc.exit_code:
                    return fail("refused with another exit code", want.exit_code,
                                exc.exit_code)
            else:
                if step.refused is not None:
                    return fail("was not refused", f"refused: {step.refused.message!r}",
                                "done")
        if step.expect is not None:
            problem = self.check(step.expect)
            self.mark()
            if problem is not None:
                return fail(*problem)
        return None

    def mark(self) -> None:
        self.seen_seq = self.last_seq
        notes = self.store.notifications(None, unread_only=False, limit=1)
        self.seen_notice = notes[0].id or 0 if notes else 0

    def check(self, expect: dict[str, Any]) -> tuple[str, Any, Any] | None:
        if self.instance is None:
            return "nothing to expect from: no instance was started", None, None
        row = self.store.get_instance(self.instance)
        if row is None:  # pragma: no cover - the instance was written by start
            return f"instance {self.instance} is missing", None, None
        process = stored_process(self.store, row.definition_digest)
        inst = view(from_row(row), process, self.loaded.org, self.now)
        if "stage" in expect:
            actual = inst.stage if inst.stage is not None else inst.last_stage
            if expect["stage"] is None:
                actual = inst.stage
            if actual != expect["stage"]:
                return "unexpected stage", expect["stage"], actual
        if "active_stages" in expect:
            live = [b.stage for b in inst.branches if b.status in (engine.ACTIVE, engine.WAITING)]
            have = sorted(s for s in live if s) if inst.branches else (
                [] if inst.stage is None else [inst.stage])
            if sorted(expect["active_stages"]) != have:
                return "unexpected active stages", sorted(expect["active_stages"]), have
        if "status" in expect and inst.status != expect["status"]:
            return "unexpected status", expect["status"], inst.status
        if "outcome" in expect and inst.outcome != expect["outcome"]:
            return "unexpected outcome", expect["outcome"], inst.outcome
        problem = self.check_holder(inst, expect)
        if problem is not None:
            return problem
        notices = expect.get("notifications")
        if notices:
            problem = self.check_notifications(notices)
            if problem is not None:
                return problem
        entries = expect.get("journal")
        if entries:
            return self.check_journal(entries)
        return None

    def check_holder(self, inst: InstanceView, expect: dict[str, Any]
                     ) -> tuple[str, Any, Any] | None:
        """The assignees, the due time and the fields."""
        if "assignee" in expect:
            want = expect["assignee"]
            wanted = sorted(_principal(p) for p in (want if isinstance(want, list) else [want]))
            have = sorted(inst.assignees)
            if wanted != have:
                return "unexpected assignee", _shown_principals(wanted), _shown_principals(have)
        if "due" in expect:
            want_due = expect["due"]
            if want_due is not None:
                want_due = engine.iso(engine.parse_time(want_due))
            if inst.due_at != want_due:
                return "unexpected due time", want_due, inst.due_at
        for name, value in (expect.get("fields") or {}).items():
            have_value = inst.record.get(name)
            if not _same(value, have_value):
                return f"unexpected value of field '{name}'", value, have_value
        return None

    def check_notifications(self, wanted: list[dict[str, Any]]) -> tuple[str, Any, Any] | None:
        rows = [n for n in self.store.notifications(None, unread_only=False)
                if (n.id or 0) > self.seen_notice]
        rows.reverse()  # oldest first
        for want in wanted:
            match = [n for n in rows if n.user == want["to"]
                     and ("kind" not in want or n.kind == want["kind"])
                     and want.get("contains", "") in n.message]
            if not match:
                have = [f"{n.user} {n.kind}: {n.message}" for n in rows]
                return ("no such notification", _describe(want), have or "no notification")
        return None

    def check_journal(self, wanted: list[dict[str, Any]]) -> tuple[str, Any, Any] | None:
        entries = [e for e in self.store.journal(JournalFilter()) if (e.seq or 0) > self.seen_seq]
        i = 0
        for want in wanted:
            while i < len(entries) and not all(
                getattr(entries[i], key) == value for key, value in want.items()
            ):
                i += 1
            if i == len(entries):
                have = [_entry_text(e) for e in entries]
                return ("no such journal entry (in this order)", _describe(want),
                        have or "no journal entry")
            i += 1
        return None

    def covered(self) -> tuple[tuple[str, ...], ...]:
        owner = {row.id: row.process_id for row in self.store.list_instances(InstanceFilter())}
        out: set[tuple[str, ...]] = set()
        for e in self.store.journal(JournalFilter()):
            pid = owner.get(e.instance_id)
            if pid is None or not e.stage:
                continue
            if e.kind in ("stage_entered", "decision", "completed", "branch_joined", "joined"):
                out.add(("stage", pid, e.stage))
            if e.kind == "stage_entered" and "join" in e.data:  # a parallel stage's branches
                out.update(("branch", pid, e.stage, str(name))
                           for name in e.data.get("branches") or ())
            if e.kind == "result" and e.result:
                out.add(("result", pid, e.stage, e.result))
            elif e.kind == "decision":  # inside a parallel branch, its pick is its "choice"
                out.add(("branch", pid, e.stage, str(e.data.get("choice", e.data.get("branch")))))
        return tuple(sorted(out))

    def close(self) -> None:
        self.store.close()


_TEMPLATE: list[SqliteStore] = []


def _empty_store() -> SqliteStore:
    """An empty store in memory, made and migrated once per process: each
    scenario runs on a copy of it."""
    if not _TEMPLATE:
        _TEMPLATE.append(SqliteStore.open(":memory:"))
    return _TEMPLATE[0]


class _Broken(Exception):
    """A scenario that cannot go on (a step before any start)."""


def _principal(name: str) -> str:
    return name if ":" in name else engine.user_principal(name)


def _shown_principals(principals: Iterable[str]) -> list[str]:
    return [p.removeprefix("user:") for p in principals]


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return bool(expected == actual)


def _describe(want: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in want.items())


def _entry_text(e: Any) -> str:
    parts = [e.kind, f"stage={e.stage}" if e.stage else "", f"result={e.result}" if e.result
             else "", f"actor={e.actor}"]
    return " ".join(p for p in parts if p)


def run_scenario(sf: ScenarioFile, scenario: Scenario, loaded: Loaded) -> ScenarioResult:
    """Run one scenario on a fresh store in memory."""
    began = time.perf_counter()
    run = _Run(sf, scenario, loaded)
    try:
        failure, steps = run.run()
        covered = run.covered()
    finally:
        run.close()
    return ScenarioResult(sf.path, scenario.line, sf.process, scenario.name, failure is None,
                          time.perf_counter() - began, failure, steps, covered)


# ---------------------------------------------------------------- files and coverage


class _Prepared(Struct):
    files: list[ScenarioFile]
    processes: dict[str, Process]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]


def _prepare(paths: list[str], loaded: Loaded) -> _Prepared:
    out = _Prepared([], {}, [], {})
    folder = workspace.resolve(processes=loaded.processes_dir).processes.value
    # every process id of the folder in one scan (each file read once, or its
    # summary from the lint cache), not a scan per scenario file
    files_of = process_files([folder]) if os.path.isdir(folder) else {}
    for path in paths:
        sf, problems = scenario_file.load(path)
        text = sf.document.text if sf is not None else None
        if text is not None:
            out.sources[path] = text
        if sf is None:
            out.diagnostics += problems
            if problems and problems[0].file not in out.sources:
                from flowctl.definition.loader import load_file

                doc = load_file(path)
                if doc.text is not None:
                    out.sources[path] = doc.text
            continue
        try:
            found = files_of.get(sf.process, [])
            process = (loaded.process_in(sf.process, found[0]) if len(found) == 1
                       else loaded.process(sf.process))[0]
        except DefinitionError as exc:
            out.diagnostics.append(scenario_lint.process_problem(
                sf, f"process '{sf.process}' does not lint clean, so its scenarios cannot run: "
                    f"{exc.message}"))
            continue
        except UsageError as exc:
            out.diagnostics.append(scenario_lint.process_problem(sf, exc.message))
            continue
        problems += scenario_lint.check(sf, process, loaded.org)
        if any(d.severity is Severity.ERROR for d in problems):
            out.diagnostics += problems
            continue
        out.diagnostics += problems
        out.processes[process.id] = process
        out.files.append(sf)
    return out


def _coverage(process: Process, taken: set[tuple[str, ...]]) -> Coverage:
    pid = process.id
    stages = [s.id for s in process.stages]
    results = [(s.id, r.name) for s in process.stages for r in s.results]
    branches = [(s.id, str(i + 1), b.when) for s in process.stages
                if s.kind is StageKind.DECISION for i, b in enumerate(s.branches)]
    branches += [(s.id, "default", "default") for s in process.stages
                 if s.kind is StageKind.DECISION and s.default]
    # a parallel stage's branches, by name: taken when a scenario started them
    forks = [(s.id, b.name, b.when) for s in process.stages for b in s.forks]
    return Coverage(
        pid, len(stages), len(results), len(branches) + len(forks),
        tuple(s for s in stages if ("stage", pid, s) not in taken),
        tuple(f"{s}: {r}" for s, r in results if ("result", pid, s, r) not in taken),
        tuple(f"{s}: " + ("default" if n == "default" else f"when {w}")
              for s, n, w in branches if ("branch", pid, s, n) not in taken)
        + tuple(f"{s}: branch {n}" + (f" (when {w})" if w else "")
                for s, n, w in forks if ("branch", pid, s, n) not in taken),
    )


# ---------------------------------------------------------------- workers


_WORKER: dict[str, Any] = {}


def _worker_init(processes_dir: str | None, org: str | None,
                 files_of: dict[str, str]) -> None:
    directory, path = org_directory(org, processes_dir)
    _WORKER["loaded"] = Loaded(directory, processes_dir, path)
    _WORKER["files_of"] = files_of


def _worker_run(job: tuple[str, list[int]]) -> list[ScenarioResult]:
    path, indices = job
    sf, _ = scenario_file.load(path)
    if sf is None:  # pragma: no cover - the parent read it clean a moment ago
        return []
    loaded: Loaded = _WORKER["loaded"]
    found = _WORKER["files_of"].get(sf.process)
    if found is not None:
        loaded.process_in(sf.process, found)
    return [run_scenario(sf, sf.scenarios[i], loaded) for i in indices]


def _jobs(files: list[ScenarioFile], workers: int) -> list[tuple[str, list[int]]]:
    """Chunks of scenarios, a few per worker, each from one file."""
    total = sum(len(f.scenarios) for f in files)
    size = max(1, total // (workers * 4))
    out = []
    for sf in files:
        n = len(sf.scenarios)
        for first in range(0, n, size):
            out.append((sf.path, list(range(first, min(n, first + size)))))
    return out


def scenario_paths(paths: Sequence[str] | None, *, scenarios: str | None = None) -> list[str]:
    """The scenario files ``paths`` name (files, folders searched recursively),
    else those of the workspace's scenarios folder."""
    if paths:
        return expand_paths(list(paths))
    setting = workspace.resolve(scenarios=scenarios).scenarios
    if not os.path.isdir(setting.value):
        raise UsageError(
            f"no scenarios: the folder {workspace.describe(setting)} does not exist",
            hint="write scenario files there (see docs/testing.md; `flowctl schema scenario` "
                 "prints their schema), or name files: flowctl test PATH...",
        )
    return expand_paths([setting.value])


def run_tests(
    paths: Sequence[str] | None = None,
    *,
    processes_dir: str | None = None,
    org: str | None = None,
    jobs: int | None = None,
    min_coverage: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScenarioReport:
    """Read, check and run scenario files (default: the workspace's scenarios
    folder); ``jobs``: worker processes (default: one per CPU when there are
    at least PARALLEL_MIN scenarios; 1 runs them here). ``progress`` is called
    with 1 as each scenario ends."""
    if min_coverage is not None and not 0 <= min_coverage <= 100:
        raise UsageError(f"--min-coverage {min_coverage:g} is not a percentage",
                         hint="give a number from 0 to 100, e.g. --min-coverage 90")
    began = time.perf_counter()
    files = scenario_paths(paths)
    if not files:
        raise UsageError("no scenario files (*.yaml, *.yml) in "
                         + ", ".join(paths or ["the scenarios folder"]),
                         hint="see docs/testing.md for the format")
    directory, org_file = org_directory(org, processes_dir)
    loaded = Loaded(directory, processes_dir, org_file)
    prepared = _prepare(files, loaded)
    count = sum(len(f.scenarios) for f in prepared.files)
    workers = jobs if jobs is not None else (
        min(os.cpu_count() or 1, 8) if count >= PARALLEL_MIN else 1)
    workers = max(1, min(workers, count or 1))
    results: list[ScenarioResult] = []
    if workers == 1:
        for sf in prepared.files:
            for sc in sf.scenarios:
                results.append(run_scenario(sf, sc, loaded))
                if progress is not None:
                    progress(1)
    else:
        from concurrent.futures import ProcessPoolExecutor  # only for many scenarios

        files_of = {pid: p.source for pid, p in prepared.processes.items() if p.source}
        with ProcessPoolExecutor(workers, initializer=_worker_init,
                                 initargs=(processes_dir, org, files_of)) as pool:
            for chunk in pool.map(_worker_run, _jobs(prepared.files, workers)):
                results += chunk
                if progress is not None:
                    progress(len(chunk))
    taken = {item for r in results for item in r.covered}
    # the processes the files test (a child process started on the way counts
    # towards its own coverage only when a file tests it too)
    coverage = [_coverage(prepared.processes[pid], taken) for pid in sorted(prepared.processes)]
    return ScenarioReport(
        diagnostics=sorted(prepared.diagnostics), results=results, coverage=coverage,
        files=files, seconds=time.perf_counter() - began, min_coverage=min_coverage,
        sources=prepared.sources, workers=workers,
    )


# ---------------------------------------------------------------- reports


def junit_xml(report: ScenarioReport) -> str:
    """The report as JUnit XML: a test suite per scenario file, a test case per
    scenario (its failure with the step's file:line, expected and actual),
    each problem of a file that could not run as an error, and each tested
    process's coverage as a property (``coverage.PROCESS``, a percentage)."""
    import xml.etree.ElementTree as ET  # only for --format junit

    suites = ET.Element("testsuites", name="flowctl test")
    if report.coverage:  # coverage per process, for CI systems that show properties
        props = ET.SubElement(suites, "properties")
        for c in report.coverage:
            ET.SubElement(props, "property", name=f"coverage.{c.process}",
                          value=f"{c.percent:.1f}")
    by_file: dict[str, list[ScenarioResult]] = {}
    for r in report.results:
        by_file.setdefault(r.file, []).append(r)
    broken: dict[str, list[Diagnostic]] = {}
    for d in report.diagnostics:
        if d.severity is Severity.ERROR:
            broken.setdefault(d.file, []).append(d)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for path in sorted(set(by_file) | set(broken)):
        cases = by_file.get(path, [])
        problems = broken.get(path, [])
        failures = sum(not r.passed for r in cases)
        seconds = sum(r.seconds for r in cases)
        suite = ET.SubElement(suites, "testsuite", name=path, tests=str(len(cases) + len(problems)),
                              failures=str(failures), errors=str(len(problems)),
                              time=f"{seconds:.3f}")
        for r in cases:
            case = ET.SubElement(suite, "testcase", name=r.name, classname=r.process,
                                 file=r.file, line=str(r.line), time=f"{r.seconds:.3f}")
            if r.failure is not None:
                node = ET.SubElement(case, "failure", message=failure_line(r),
                                     type="ScenarioFailure")
                node.text = failure_text(r)
        for d in problems:
            case = ET.SubElement(suite, "testcase", name=f"{d.file}:{d.line}", classname=d.code,
                                 file=d.file, line=str(d.line), time="0")
            node = ET.SubElement(case, "error", message=d.format(), type=d.code)
            node.text = d.format()
        totals["tests"] += len(cases) + len(problems)
        totals["failures"] += failures
        totals["errors"] += len(problems)
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("time", f"{report.seconds:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") \
        + "\n"


def failure_line(r: ScenarioResult) -> str:
    """``file:line: step 3 (act as carol: approve): stage``: one line."""
    f = r.failure
    if f is None:
        return f"{r.file}:{r.line}: passed"
    return f"{r.file}:{f.line}: step {f.step} ({f.action}): {f.message}"


def failure_text(r: ScenarioResult) -> str:
    """The failure with what was expected and what was found, one per line."""
    f = r.failure
    if f is None:
        return ""
    lines = [failure_line(r)]
    if f.expected is not None:
        lines.append(f"  expected: {_value(f.expected)}")
    if f.actual is not None or f.expected is not None:
        lines.append(f"  actual:   {_value(f.actual)}")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + "; ".join(str(v) for v in value) + "]"
    if value is None:
        return "none"
    return str(value)


def to_json(report: ScenarioReport) -> dict[str, Any]:
    """The report as plain data (``--format json``; see docs/testing.md)."""
    return {
        "passed": report.exit_code() == 0,
        "summary": {
            "files": len(report.files),
            "scenarios": len(report.results),
            "failed": len(report.failed),
            "problems": sum(d.severity is Severity.ERROR for d in report.diagnostics),
            "seconds": round(report.seconds, 3),
            "min_coverage": report.min_coverage,
        },
        "problems": [
            {"file": d.file, "line": d.line, "col": d.col, "code": d.code,
             "message": d.message, "severity": d.severity.value}
            for d in report.diagnostics
        ],
        "scenarios": [
            {"file": r.file, "line": r.line, "process": r.process, "name": r.name,
             "passed": r.passed, "seconds": round(r.seconds, 4), "steps": r.steps,
             "failure": None if r.failure is None else {
                 "line": r.failure.line, "step": r.failure.step, "action": r.failure.action,
                 "message": r.failure.message, "expected": r.failure.expected,
                 "actual": r.failure.actual}}
            for r in report.results
        ],
        "coverage": [
            {"process": c.process, "percent": round(c.percent, 1), "taken": c.taken,
             "total": c.total, "stages": c.stages, "results": c.results,
             "branches": c.branches, "missing": {"stages": list(c.missing_stages),
                                                 "results": list(c.missing_results),
                                                 "branches": list(c.missing_branches)}}
            for c in report.coverage
        ],
    }

"""flowctl report and flowctl export: figures checked against the journal itself
(an independent pairing of entries in Python), exact output of a small case,
the event log read back by pm4py, and every refusal."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke, trust_workspace
from typer.testing import Result

from flowctl.api.analytics import human_duration

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
END = "2026-12-01T00:00:00Z"


def _gen_month() -> Any:
    spec = importlib.util.spec_from_file_location("gen_month", ROOT / "scripts" / "gen_month.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A month of contract approvals (scripts/gen_month.py, 24 contracts)."""
    folder = tmp_path_factory.mktemp("month")
    trust_workspace(folder)
    here = os.getcwd()
    os.chdir(folder)
    try:
        _gen_month().build(str(folder / "month.db"), 24, 3)
    finally:
        os.chdir(here)
    return folder


def run(folder: Path, *args: str, user: str = "grace", code: int = 0,
        now: str = END) -> Result:
    env = {"FLOWCTL_DB": str(folder / "month.db"), "FLOWCTL_PROCESSES": PROCESSES,
           "FLOWCTL_NOW": now, "FLOWCTL_USER": user, "FLOWCTL_ORG": None}
    here = os.getcwd()
    os.chdir(folder)
    try:
        result = invoke(list(args), env=env)
    finally:
        os.chdir(here)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def _journal(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT seq, instance_id, at, kind, stage, result, actor, data "
                            "FROM journal ORDER BY seq").fetchall()
    finally:
        conn.close()


def _secs(a: str, b: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(b, fmt) - datetime.strptime(a, fmt)).total_seconds()


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = -(-len(ordered) * int(q * 10) // 10)  # ceil(q * n) for q in tenths
    return ordered[max(k, 1) - 1]


def _visits(db: Path) -> dict[str, list[tuple[float | None, str | None]]]:
    """An independent pairing: per stage, each visit's time (None while open)
    and the result that ended it."""
    open_at: dict[tuple[str, str], str] = {}
    out: dict[str, list[tuple[float | None, str | None]]] = defaultdict(list)
    for _, inst, at, kind, stage, result, _, data in _journal(db):
        if stage is None:
            continue
        if kind == "stage_entered" and "join" not in json.loads(data):  # not a parallel stage
            open_at[(inst, stage)] = at
        elif kind in ("result", "woke", "cancelled", "branch_cancelled") \
                and (inst, stage) in open_at:
            out[stage].append((_secs(open_at.pop((inst, stage)), at), result))
    for (_, stage), _at in open_at.items():
        out[stage].append((None, None))
    return out


def test_report_json_matches_the_journal(month: Path) -> None:
    data = json.loads(run(month, "report", "contract-approval", "--json").stdout)
    assert data["until"] > END
    assert data["since"] is None
    (proc,) = data["processes"]
    assert proc["process_id"] == "contract-approval"
    assert proc["name"] == "Contract Approval"
    visits = _visits(month / "month.db")
    stages = {s["stage"]: s for s in proc["stages"]}
    assert set(stages) == set(visits)
    for stage, vs in visits.items():
        closed = [v for v, _ in vs if v is not None]
        s = stages[stage]
        assert s["entered"] == len(vs), stage
        assert s["left"] == len(closed), stage
        assert s["median_s"] == _nearest_rank(closed, 0.5), stage
        assert s["p90_s"] == _nearest_rank(closed, 0.9), stage
        assert s["max_s"] == max(closed), stage
    # results and rework: what carol sent back is submitted again
    results = {(r["stage"], r["result"]): r for r in proc["results"]}
    rejects = sum(1 for _, r in visits["manager-review"] if r == "reject")
    assert rejects > 0
    assert results[("manager-review", "reject")]["count"] == rejects
    assert results[("manager-review", "reject")]["sent_back"] == rejects
    assert results[("manager-review", "approve")]["sent_back"] == 0
    # frank waits a day or more before he begins: the bottleneck is finance review
    assert proc["bottleneck_stage"] == "finance-review"
    share = stages["finance-review"]["share"]
    assert proc["bottleneck"].startswith(
        "The bottleneck of Contract Approval is 'Finance review' (finance-review): "
        f"{share:.0%} of all the time instances spent in its stages")
    assert stages["finance-review"]["began"] == stages["finance-review"]["left"]
    assert stages["finance-review"]["wait_median_s"] > 20 * 3600
    summary = proc["summary"]
    starts = sum(1 for row in _journal(month / "month.db") if row[3] == "started")
    assert summary["started"] == starts == 24


def test_report_table_names_the_bottleneck(month: Path) -> None:
    out = run(month, "report", "contract-approval", "--since", "2026-11-01").stdout
    lines = out.splitlines()
    assert lines[0] == f"period: 2026-11-01T00:00:00Z until now ({END})"
    assert lines[2] == "Contract Approval (contract-approval)"
    assert any(line.startswith("The bottleneck of Contract Approval is 'Finance review'")
               for line in lines)
    assert "time in stage:" in lines
    assert "results:" in lines
    header = next(line for line in lines if line.startswith("STAGE  "))
    assert header.split() == ["STAGE", "ENTERED", "LEFT", "MEDIAN", "P90", "MAX", "WORKING",
                              "TIME", "WAIT", "WORK", "SLA", "MET", "REMINDERS", "ESCALATIONS",
                              "HELD", "LONGEST", "SHARE"]


def test_report_csv_and_markdown(month: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run(month, "report", "--csv").stdout)))
    by_stage = {r["stage"]: r for r in rows}
    visits = _visits(month / "month.db")
    assert set(by_stage) == set(visits)
    assert int(by_stage["submit"]["entered"]) == len(visits["submit"])
    md = run(month, "report", "--format", "markdown").stdout
    assert md.startswith("# Process report\n")
    assert "## Contract Approval (`contract-approval`)" in md
    assert "| STAGE | ENTERED | LEFT |" in md


def test_report_by_assignee_department_month(month: Path) -> None:
    data = json.loads(run(month, "report", "--by", "department", "--json").stdout)
    keys = {b["key"]: b for b in data["processes"][0]["breakdown"]}
    assert "finance" in keys
    assert "sales" in keys
    assert "legal" in keys
    data = json.loads(run(month, "report", "--by", "assignee", "--json").stdout)
    keys = {b["key"]: b for b in data["processes"][0]["breakdown"]}
    assert keys["frank"]["median_s"] > keys["carol"]["median_s"]
    data = json.loads(run(month, "report", "--by", "month", "--json").stdout)
    assert [b["key"] for b in data["processes"][0]["breakdown"]] == ["2026-11"]


def test_report_period_is_applied(month: Path) -> None:
    data = json.loads(run(month, "report", "--since", "2026-11-20", "--json").stdout)
    (proc,) = data["processes"]
    starts = sum(1 for row in _journal(month / "month.db")
                 if row[3] == "started" and row[2] >= "2026-11-20")
    assert proc["summary"]["started"] == starts
    entered = sum(1 for row in _journal(month / "month.db")
                  if row[3] == "stage_entered" and row[2] >= "2026-11-20"
                  and "join" not in json.loads(row[7]))  # a parallel stage is no visit
    assert sum(s["entered"] for s in proc["stages"]) == entered


def test_report_refusals(month: Path, tmp_path: Path) -> None:
    r = run(month, "report", "--since", "2026-11-20", "--until", "2026-11-10", code=2)
    assert r.stderr == (
        "flowctl: error: --since 2026-11-20T00:00:00Z is not before --until "
        "2026-11-10T00:00:00Z: the period is empty\n"
        "flowctl: hint: give --since an earlier time than --until (ISO-8601: 2026-11-01)\n")
    r = run(month, "report", "--since", "2027-02-01", "--until", "2027-03-01", code=1)
    assert r.stdout == ""
    assert r.stderr.startswith(
        "flowctl: error: nothing happened in any process from 2027-02-01T00:00:00Z until "
        "2027-03-01T00:00:00Z: no instance started or ended, and none was at a stage\n")
    r = run(month, "report", "contract-aproval", code=2)
    assert r.stderr.startswith("flowctl: error: no process 'contract-aproval' in the store or "
                               "the processes folder: no process 'contract-aproval' in ")
    assert "did you mean 'contract-approval'?" in r.stderr
    r = run(month, "report", user="alice", code=1)
    assert r.stderr == (
        "flowctl: error: alice may not run reports: a report covers every instance of a "
        "process, and only admins and auditors see every instance\n"
        "flowctl: hint: ask an admin (grace) or an auditor; `flowctl list` and `flowctl "
        "journal` show the instances you may see\n")
    r = run(month, "report", "--html", code=2)
    assert r.stderr == ("flowctl: error: the HTML report is a page, not written to the terminal\n"
                        "flowctl: hint: pass -o report.html\n")
    r = run(month, "report", "--json", "--csv", code=2)
    assert r.stderr.startswith("flowctl: error: choose one format; asked for json, csv\n")
    r = run(month, "report", "--since", "yesterday", code=2)
    assert "--since 'yesterday' is not a date or time" in r.stderr
    # no store: exit 4, and nothing is created
    empty = tmp_path / "empty"
    empty.mkdir()
    trust_workspace(empty)
    env = {"FLOWCTL_DB": None, "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_USER": "grace"}
    here = os.getcwd()
    os.chdir(empty)
    try:
        r = invoke(["report"], env=env)
        r2 = invoke(["export", "--format", "csv"], env=env)
    finally:
        os.chdir(here)
    assert r.exit_code == 4
    assert r2.exit_code == 4
    assert r.stderr.startswith("flowctl: error: no store at .flowctl/flowctl.db")
    assert sorted(p.name for p in empty.iterdir()) == ["flowctl.toml"]


# ------------------------------------------------------------------- export


def _arrivals(db: Path) -> Counter[tuple[str, str]]:
    """Stage -> next stage of each instance, as the journal recorded them."""
    last: dict[str, str] = {}
    pairs: Counter[tuple[str, str]] = Counter()
    for _, inst, _, kind, stage, _, _, _ in _journal(db):
        if kind in ("stage_entered", "decision", "completed", "branch_joined", "branch_ended") \
                and stage is not None:
            if inst in last:
                pairs[(last[inst], stage)] += 1
            last[inst] = stage
    return pairs


@pytest.mark.filterwarnings("ignore:Install the optional requirement:UserWarning")
def test_export_xes_read_by_pm4py(month: Path) -> None:
    import pm4py  # the test extra: a real process-mining library reads the log
    from pm4py.util import constants

    constants.SHOW_PROGRESS_BAR = False
    r = run(month, "export", "--format", "xes", "-o", "log.xes", "contract-approval")
    assert r.stderr == "wrote log.xes\n"
    log = pm4py.read_xes(str(month / "log.xes"), return_legacy_log_object=False)
    starts = log[log["lifecycle:transition"] == "start"]
    dfg, start_activities, _ = pm4py.discover_dfg(starts)
    assert dict(dfg) == dict(_arrivals(month / "month.db"))
    assert start_activities == {"submit": 24}
    # every case carries its process and record; resources are the actors
    assert set(log["case:process"]) == {"contract-approval"}
    assert "case:record:amount" in log.columns
    assert {"alice", "bob", "carol", "frank"} <= set(log["org:resource"])
    completes = log[log["lifecycle:transition"] == "complete"]
    assert len(completes) + len(starts) == len(log)


def test_export_csv_and_jsonl(month: Path) -> None:
    out = run(month, "export", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["case_id", "activity", "lifecycle", "timestamp", "resource",
                             "process", "result", "kind", "seq"]
    # a parallel stage is entered and left at once: a start and a complete row
    entered = sum(1 if "join" not in json.loads(row[7]) else 2
                  for row in _journal(month / "month.db") if row[3] == "stage_entered")
    assert sum(1 for r in rows if r["kind"] == "stage_entered") == entered
    lines = run(month, "export", "--format", "jsonl", "--since", "2026-11-20").stdout
    events = [json.loads(line) for line in lines.splitlines()]
    assert events
    assert all(e["timestamp"] >= "2026-11-20" for e in events)
    assert {e["lifecycle"] for e in events} == {"start", "complete"}


def test_export_refusals(month: Path) -> None:
    r = run(month, "export", "--format", "xes", "-o", "nope.xes", "nope", code=2)
    assert r.stderr == (
        "flowctl: error: no instance of process 'nope' in the store (processes with "
        "instances: contract-approval)\n"
        "flowctl: hint: name a process that was started (`flowctl list` shows them)\n")
    assert not (month / "nope.xes").exists()
    r = run(month, "export", "-o", "alice.xes", user="alice", code=1)
    assert r.stderr.startswith("flowctl: error: alice may not export the journal")
    assert not (month / "alice.xes").exists()
    r = run(month, "export", "--since", "2026-12-01", "--until", "2026-11-01", code=2)
    assert "is not before --until" in r.stderr


def test_docs_worked_example_is_what_report_prints(month: Path) -> None:
    text = (ROOT / "docs" / "analytics.md").read_text(encoding="utf-8")
    block = text.split("<!-- analytics-report -->\n```console\n", 1)[1].split("```", 1)[0]
    command, _, expected = block.partition("\n")
    args = command.removeprefix("$ flowctl ").split()
    assert run(month, *args).stdout == expected


# ------------------------------------------------------------------- heat map


def _positions(svg: str) -> dict[str, tuple[float, float]]:
    """Each node's first drawn point, relative to the start point."""
    import re

    out: dict[str, tuple[float, float]] = {}
    for m in re.finditer(r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>(.*?)</g>',
                         svg, re.S):
        nums = re.search(r'(?:points="|d="M|cx=")(-?[\d.]+)[," ]+(?:cy=")?(-?[\d.]+)', m[2])
        assert nums is not None, m[1]
        out[m[1].replace("&#45;", "-")] = (float(nums[1]), float(nums[2]))
    x0, y0 = out["(start)"]
    return {k: (round(x - x0, 1), round(y - y0, 1)) for k, (x, y) in out.items()}


def test_heat_map_counts_and_layout(month: Path) -> None:
    dot = run(month, "render", "contract-approval", "--heat", "time", "--format", "dot",
              "--processes", PROCESSES).stdout
    arrivals = _arrivals(month / "month.db")
    rejects = sum(1 for row in _journal(month / "month.db")
                  if row[3] == "result" and row[4] == "manager-review" and row[5] == "reject")

    def taken(source: str, target: str, label: str) -> int:
        import re

        line = next(x for x in dot.splitlines()
                    if x.startswith(f'  "{source}" -> "{target}" [label=<{label}'))
        m = re.search(r"×(\d+)<", line)
        assert m is not None, line
        return int(m[1])

    assert taken("manager-review", "submit", "reject") == rejects
    assert taken("manager-review", "reviews", "approve") == arrivals[
        ("manager-review", "reviews")]
    started = sum(1 for row in _journal(month / "month.db")
                  if row[3] == "stage_entered" and row[4] == "finance-review")
    assert started > 0
    assert taken("reviews", "finance-review", "Finance review") == started
    assert taken("submit", "withdrawn", "withdraw") == 0
    # out of the join: every instance that went on from it to the end
    approved = sum(1 for row in _journal(month / "month.db")
                   if row[3] == "completed" and row[4] == "approved")
    assert approved > 0
    assert f'"reviews-done" -> "approved" [xlabel=<<FONT COLOR="#B71C1C"><B>×{approved}<' in dot
    assert '"(start)" -> "submit" [arrowsize="0.6", xlabel=<<FONT COLOR="#B71C1C"><B>×24<' in dot
    # the slowest stage is the darkest; the legend says what is measured
    assert '"finance-review" [label=' in dot
    finance = next(x for x in dot.splitlines() if x.startswith('    "finance-review" ['))
    assert 'fillcolor="#BD0026"' in finance
    data = json.loads(run(month, "report", "--json").stdout)
    median = next(s["median_s"] for s in data["processes"][0]["stages"]
                  if s["stage"] == "finance-review")
    assert f"median {human_duration(median)}" in finance
    assert "median time in stage, the beginning until 2026-12-01" in dot
    # the same layout as the plain diagram: every node where it was
    heat_svg = run(month, "render", "contract-approval", "--heat", "count", "--format", "svg",
                   "--processes", PROCESSES).stdout
    plain_svg = run(month, "render", "contract-approval", "--format", "svg",
                    "--processes", PROCESSES).stdout
    assert _positions(heat_svg) == _positions(plain_svg)


HEAT_PERIODS = ((None, END), ("2026-11-10T00:00:00Z", END),
                (None, "2026-11-15T12:00:00Z"), ("2026-11-05T00:00:00Z", "2026-11-20T00:00:00Z"))


def _heat_against_stages(store: Any, full: Any) -> None:
    """The heat map's lean query gives, per stage, the very figures of the full
    report's stage statistics, over several periods."""
    from flowctl.store.analytics import ReportFilter

    for since, until in HEAT_PERIODS:
        flt = ReportFilter(until=until, since=since, process_ids=("contract-approval",))
        stages = full(flt).stages
        heat = store.report(ReportFilter(until=until, since=since,
                                         process_ids=("contract-approval",),
                                         parts=("heat",))).heat
        assert stages, (since, until)
        assert [(h.stage, h.entered, h.total_s, h.median_s, h.sla_due, h.sla_met)
                for h in heat] == [(s.stage, s.entered, s.total_s, s.median_s, s.sla_due,
                                    s.sla_met) for s in stages], (since, until)
        assert any(h.sla_due for h in heat)
        assert any(h.median_s for h in heat)


def test_heat_query_gives_the_report_figures(month: Path) -> None:
    from flowctl.store.backends import open_readonly

    store = open_readonly(str(month / "month.db"))
    try:
        _heat_against_stages(store, store.report)
        # only what was asked: no visits, no percentiles beyond the median's sort
        from flowctl.store.analytics import ReportFilter

        data = store.report(ReportFilter(until=END, parts=("heat", "edges")))
        assert data.heat
        assert data.edges
        assert (data.stages, data.processes, data.wip) == ((), (), ())
    finally:
        store.close()
    # the heat map's figures are no part of a report's JSON
    report = json.loads(run(month, "report", "--json").stdout)
    assert "heat" not in report["processes"][0]


def test_heat_query_on_postgres(month: Path, pg_url: str) -> None:
    from flowctl.store.backends import open_readonly

    run(month, "db", "copy", "--db", str(month / "month.db"), "--to", pg_url)
    local = open_readonly(str(month / "month.db"))
    server = open_readonly(pg_url)
    try:
        _heat_against_stages(server, local.report)
        _heat_against_stages(server, server.report)
        # SQLite takes the breakdown by stage from the stage statistics; the
        # server sorts the visits again for it: the same rows, in the same order
        from flowctl.store.analytics import ReportFilter

        for since in (None, "2026-11-10T00:00:00Z"):
            flt = ReportFilter(until=END, since=since)
            mine = local.report(flt)
            assert mine.breakdown == server.report(flt).breakdown
            assert [b.key for b in mine.breakdown if b.process_id == "contract-approval"]
    finally:
        server.close()
        local.close()


def test_heat_map_png_and_sla(month: Path) -> None:
    r = run(month, "render", "contract-approval", "--heat", "sla", "-o", "heat.png",
            "--since", "2026-11-01", "--processes", PROCESSES)
    assert r.stdout == "wrote heat.png\n"
    assert (month / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dot = run(month, "render", "contract-approval", "--heat", "sla", "--format", "dot",
              "--processes", PROCESSES).stdout
    assert "SLA met 100% of" in dot


def test_heat_map_refusals(month: Path) -> None:
    r = run(month, "render", "--all", "--heat", "time", "-o", "out", code=2)
    assert r.stderr.startswith("flowctl: error: --heat draws one process from the store")
    r = run(month, "render", "contract-approval", "--heat", "time", "--format", "mermaid",
            "--processes", PROCESSES, code=2)
    assert r.stderr.startswith("flowctl: error: a heat map is drawn as svg, png or dot")
    r = run(month, "render", "contract-approval", "--since", "2026-11-01",
            "--processes", PROCESSES, code=2)
    assert r.stderr.startswith("flowctl: error: --since and --until choose the period of a "
                               "heat map")
    r = run(month, "render", "contract-approval", "--heat", "time", "--format", "dot",
            "--processes", PROCESSES, user="alice", code=1)
    assert r.stderr.startswith("flowctl: error: alice may not run reports")
    r = run(month, "render", "contract-approval", "--heat", "time", "--format", "dot",
            "--since", "2027-01-01", "--until", "2027-02-01", "--processes", PROCESSES, code=1)
    assert r.stderr.startswith("flowctl: error: nothing happened in contract-approval")


# ---------------------------------------------------------------- HTML report

ARTIFACTS = ROOT / "test-artifacts"


def test_html_report_in_chromium(month: Path) -> None:
    """The page opened in headless Chromium (Debian's package, installed by
    scripts/install-system-deps.sh --with-node): no console errors, no request
    leaves the page, and it shows the process, the bottleneck and the charts.
    The screenshot is kept in test-artifacts/html-report.png."""
    import shutil

    from playwright.sync_api import sync_playwright

    r = run(month, "report", "--html", "-o", "report.html", "--since", "2026-11-01")
    assert r.stdout == "wrote report.html\n"
    html = (month / "report.html").read_text(encoding="utf-8")
    bottleneck = json.loads(run(month, "report", "--json", "--since", "2026-11-01").stdout)[
        "processes"][0]["bottleneck"]
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser_path, "Chromium is installed by scripts/install-system-deps.sh --with-node"
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, headless=True,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda q: requests.append(q.url))
            page.goto((month / "report.html").as_uri())
            page.wait_for_load_state("load")
            assert page.title() == "Process report: Contract Approval"
            assert page.locator("h2").first.inner_text() == "Contract Approval contract-approval"
            assert page.locator(".bottleneck").first.inner_text() == bottleneck
            charts = page.locator("svg.pygal-chart")
            assert charts.count() == 3
            for i in range(3):
                box = charts.nth(i).bounding_box()
                assert box is not None
                assert box["width"] > 300
                assert box["height"] > 100
            titles = page.eval_on_selector_all(
                "svg.pygal-chart text.plot_title", "els => els.map(e => e.textContent)")
            assert titles == ["Time in stage: median and p90 (hours)",
                              "Cycle time: instances per band",
                              "Work in progress: instances running at the end of each day"]
            diagram = page.locator(".diagram svg")
            assert diagram.count() == 1
            assert "Finance review" in (diagram.text_content() or "")
            box = diagram.bounding_box()
            assert box is not None
            assert box["height"] > 400
            assert page.locator("table").count() == 2
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "html-report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [(month / "report.html").as_uri()]
    assert "<script src" not in html


def _moscow_working_seconds(a: str, b: str) -> float:
    """contract-approval's calendar (Europe/Moscow, Mon-Fri 09:00-18:00, its
    holidays), counted minute by minute: independent of the engine's calendar code."""
    from datetime import UTC, timedelta
    from zoneinfo import ZoneInfo

    fmt = "%Y-%m-%dT%H:%M:%SZ"
    start = datetime.strptime(a, fmt).replace(tzinfo=UTC)
    end = datetime.strptime(b, fmt).replace(tzinfo=UTC)
    zone = ZoneInfo("Europe/Moscow")
    holidays = {"2026-12-31", "2027-01-01", "2027-01-07"}
    total = 0.0
    t = start
    while t < end:
        step = min(end, (t + timedelta(minutes=1)).replace(second=0)) if t.second else min(
            end, t + timedelta(minutes=1))
        local = t.astimezone(zone)
        if (local.weekday() < 5 and local.date().isoformat() not in holidays
                and 9 <= local.hour < 18):
            total += (step - t).total_seconds()
        t = step
    return total


def test_report_working_time_in_the_process_calendar(month: Path) -> None:
    data = json.loads(run(month, "report", "--json").stdout)
    stages = {s["stage"]: s for s in data["processes"][0]["stages"]}
    opened: dict[str, str] = {}
    spans: list[float] = []
    for _, inst, at, kind, stage, _, _, _ in _journal(month / "month.db"):
        if stage != "finance-review":
            continue
        if kind == "stage_entered":
            opened[inst] = at
        elif kind == "result" and inst in opened:
            spans.append(_moscow_working_seconds(opened.pop(inst), at))
    assert spans
    finance = stages["finance-review"]
    assert finance["working_median_s"] == round(_nearest_rank(spans, 0.5))
    assert finance["working_p90_s"] == round(_nearest_rank(spans, 0.9))
    assert finance["working_median_s"] < finance["median_s"]
    # submit has no SLA in business hours: no working time
    assert stages["submit"]["working_median_s"] is None


def test_report_working_time_on_postgresql_is_the_sqlite_figures(month: Path,
                                                                  pg_url: str) -> None:
    """The server cannot call the calendar code from its SQL: the store times
    the visits of business-hours stages itself and the server aggregates them.
    Same history (db copy), same report, to the second, through the CLI."""
    run(month, "db", "copy", "--db", str(month / "month.db"), "--to", pg_url)
    on_file = json.loads(run(month, "report", "--json").stdout)
    on_server = json.loads(run(month, "report", "--json", "--db", pg_url).stdout)
    assert on_server == on_file
    stages = {s["stage"]: s for s in on_server["processes"][0]["stages"]}
    opened: dict[str, str] = {}
    spans: list[float] = []
    for _, inst, at, kind, stage, _, _, _ in _journal(month / "month.db"):
        if stage != "legal-review":
            continue
        if kind == "stage_entered":
            opened[inst] = at
        elif kind == "result" and inst in opened:
            spans.append(_moscow_working_seconds(opened.pop(inst), at))
    assert spans
    legal = stages["legal-review"]
    assert legal["working_median_s"] == round(_nearest_rank(spans, 0.5))
    assert legal["working_p90_s"] == round(_nearest_rank(spans, 0.9))
    with_hours = [s for s in stages.values() if s["working_median_s"] is not None]
    assert len(with_hours) >= 2
    assert stages["submit"]["working_median_s"] is None
    # the table's WORKING TIME column, the same on both stores
    text = run(month, "report", "--db", pg_url).stdout
    assert text == run(month, "report").stdout
    for stage in ("finance-review", "legal-review"):
        row = next(line for line in text.splitlines() if line.startswith(f"{stage} "))
        figures = (f"{human_duration(stages[stage]['working_median_s'])} / "
                   f"{human_duration(stages[stage]['working_p90_s'])}")
        assert f"  {figures}  " in row, row

"""``flowctl report`` and ``flowctl export``: how processes perform, and the
journal as an event log for process-mining tools."""

from __future__ import annotations

import csv
import io
import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from flowctl.api import analytics, eventlog
from flowctl.api.analytics import ProcessReport, Report, human_duration
from flowctl.cli import options as opt
from flowctl.cli import views as fmt
from flowctl.cli.output import Table, echo, handle_errors, print_table, table_lines
from flowctl.errors import UsageError


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


class ByChoice(StrEnum):
    stage = "stage"
    assignee = "assignee"
    department = "department"
    month = "month"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _d(seconds: float | None) -> str:
    return human_duration(seconds)


def _period(r: Report) -> str:
    end = f"now ({r.now})" if r.now else r.until
    return f"{r.since or 'the beginning'} until {end}"


def summary_lines(p: ProcessReport) -> list[str]:
    s = p.summary
    lines = [f"{p.name} ({p.process_id})"]
    if s is not None:
        outcomes = ", ".join(f"{o.outcome} {o.count}" for o in p.outcomes)
        lines.append(
            f"started {s.started}, ended {s.ended}"
            + (f" ({outcomes})" if outcomes else "")
            + f"; cycle time median {_d(s.cycle_median_s)}, "
            f"p90 {_d(s.cycle_p90_s)}, max {_d(s.cycle_max_s)}"
        )
    wip = sum(w.open for w in p.wip)
    lines.append(f"work in progress: {wip} stage visit{'' if wip == 1 else 's'} open")
    lines.append(p.bottleneck)
    return lines


def stage_table(p: ProcessReport) -> Table:
    rows: list[list[Any]] = []
    for r in p.stages:
        s = r.stat
        rows.append([
            r.stage, str(s.entered), str(s.left), _d(s.median_s), _d(s.p90_s), _d(s.max_s),
            f"{_d(s.working_median_s)} / {_d(s.working_p90_s)}"
            if s.working_median_s is not None else "-",
            _d(s.wait_median_s), _d(s.work_median_s),
            f"{_pct(s.sla_met, s.sla_due)} of {s.sla_due}" if s.sla_due else "-",
            str(s.reminders), str(s.escalations),
            f"{s.longest_holder} ({_d(s.longest_s)})" if s.longest_holder else "-",
            f"{r.share:.0%}",
        ])
    return Table(["STAGE", "ENTERED", "LEFT", "MEDIAN", "P90", "MAX", "WORKING TIME", "WAIT",
                  "WORK",
                  "SLA MET", "REMINDERS", "ESCALATIONS", "HELD LONGEST", "SHARE"], rows,
                 prose=["HELD LONGEST"])


def result_table(p: ProcessReport) -> Table:
    totals: dict[str, int] = {}
    for r in p.results:
        totals[r.stage] = totals.get(r.stage, 0) + r.count
    rounds = {r.stage: r for r in p.rounds}
    rows: list[list[Any]] = []
    for r in p.results:
        rd = rounds.get(r.stage)
        rows.append([
            r.stage, r.result, str(r.count), _pct(r.count, totals[r.stage]),
            str(r.sent_back),
            f"{rd.reworked} of {rd.instances}, up to {rd.max_rounds}" if rd else "-",
        ])
    return Table(["STAGE", "RESULT", "COUNT", "RATE", "SENT BACK", "INSTANCES IN >1 ROUND"],
                 rows)


def wip_table(p: ProcessReport) -> Table:
    rows: list[list[Any]] = [
        [w.stage, str(w.open), *(str(n) for n in w.ages),
         f"{w.oldest_instance} ({_d(w.oldest_s)})"]
        for w in p.wip
    ]
    return Table(["STAGE", "OPEN", *(a.upper() for a in analytics.AGE_LABELS), "OLDEST"], rows)


def breakdown_table(p: ProcessReport, by: str) -> Table:
    rows: list[list[Any]] = [
        [b.key, str(b.visits), str(b.left), _d(b.median_s), _d(b.p90_s), _d(b.max_s),
         _d(b.total_s)]
        for b in p.breakdown
    ]
    return Table([by.upper(), "VISITS", "LEFT", "MEDIAN", "P90", "MAX", "TOTAL"], rows)


def sections(p: ProcessReport, by: str) -> list[tuple[str, Table]]:
    out = [("time in stage", stage_table(p))]
    if p.results:
        out.append(("results", result_table(p)))
    if p.wip:
        out.append(("work in progress by age", wip_table(p)))
    if by != "stage":
        out.append((f"by {by}", breakdown_table(p, by)))
    return out


def _text(r: Report) -> None:
    echo(f"period: {_period(r)}")
    for p in r.processes:
        echo()
        for line in summary_lines(p):
            echo(line)
        for title, table in sections(p, r.by):
            echo()
            echo(f"{title}:")
            print_table(table)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> list[str]:
    head = "| " + " | ".join(table.headers) + " |"
    rule = "| " + " | ".join("---" for _ in table.headers) + " |"
    body = ["| " + " | ".join(_md_cell(str(c if isinstance(c, str) else c.text)) for c in row)
            + " |" for row in table.rows]
    return [head, rule, *body]


def markdown(r: Report) -> str:
    out = ["# Process report", "", f"Period: {_period(r)}."]
    for p in r.processes:
        out += ["", f"## {_md_cell(p.name)} (`{p.process_id}`)", ""]
        out += [f"- {_md_cell(line)}" for line in summary_lines(p)[1:]]
        for title, table in sections(p, r.by):
            out += ["", f"### {title[0].upper()}{title[1:]}", "", *markdown_table(table)]
    return "\n".join(out) + "\n"


CSV_HEADERS = ["process", "stage", "name", "kind", "entered", "left", "total_s", "median_s",
               "p90_s", "max_s", "began", "wait_median_s", "work_median_s", "sla_due",
               "sla_met", "reminders", "escalations", "overdue", "reentered",
               "longest_holder", "longest_instance", "longest_s", "share", "working_median_s",
               "working_p90_s"]
CSV_BY_HEADERS = ["process", "key", "visits", "left", "median_s", "p90_s", "max_s", "total_s"]


def csv_text(r: Report) -> str:
    """Per stage (or per --by key), one row each: numbers as numbers, times in seconds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if r.by != "stage":
        w.writerow(["by", *CSV_BY_HEADERS])
        for p in r.processes:
            for b in p.breakdown:
                w.writerow([r.by, p.process_id, b.key, b.visits, b.left, _n(b.median_s),
                            _n(b.p90_s), _n(b.max_s), _n(b.total_s)])
        return buf.getvalue()
    w.writerow(CSV_HEADERS)
    for p in r.processes:
        for row in p.stages:
            s = row.stat
            w.writerow([
                p.process_id, row.stage, row.name, row.kind, s.entered, s.left, _n(s.total_s),
                _n(s.median_s), _n(s.p90_s), _n(s.max_s), s.began, _n(s.wait_median_s),
                _n(s.work_median_s), s.sla_due, s.sla_met, s.reminders, s.escalations,
                s.overdue, s.reentered, s.longest_holder or "", s.longest_instance or "",
                _n(s.longest_s), f"{row.share:.4f}", _n(s.working_median_s),
                _n(s.working_p90_s),
            ])
    return buf.getvalue()


def _n(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def report_json(r: Report) -> dict[str, Any]:
    out: dict[str, Any] = {"since": r.since, "until": r.until, "by": r.by, "processes": []}
    for p in r.processes:
        data = fmt.plain(p)
        data.pop("definition", None)
        data.pop("heat", None)  # the heat map's own figures, filled only for render --heat
        data["stages"] = [
            {"stage": row.stage, "name": row.name, "kind": row.kind, "share": row.share,
             **{k: v for k, v in fmt.plain(row.stat).items() if k not in ("process_id", "stage")}}
            for row in p.stages
        ]
        data["wip_days"] = [{"day": d, "running": n} for d, n in p.wip_days]
        out["processes"].append(data)
    return out


def _write(path: str, content: str | bytes) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}",
                         hint="pass -o a path you can write to") from exc


def report(
    process: Annotated[
        list[str] | None,
        typer.Argument(metavar="[PROCESS]...",
                       help="Process ids (default: every process with instances).",
                       show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME",
                     help="From TIME (ISO-8601): visits entered, instances started or ended "
                          "from then on."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME",
                     help="Until TIME (ISO-8601, exclusive; default: now): the report "
                          "describes that moment."),
    ] = None,
    by: Annotated[
        ByChoice,
        typer.Option("--by", help="Also break time in stage down by the assignee who "
                                  "finished the visit, their department, or the month.",
                     case_sensitive=False),
    ] = ByChoice.stage,
    out_format: Annotated[
        ReportFormat | None,
        typer.Option("--format", "-f", help="table (default), json, csv, markdown or html.",
                     case_sensitive=False, show_default=False),
    ] = None,
    json_out: Annotated[bool, opt.json_out()] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Same as --format csv.")] = False,
    html_out: Annotated[bool, typer.Option("--html", help="Same as --format html.")] = False,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="PATH",
                     help="File to write (default: standard output; html needs a file)."),
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Show how processes perform: time in each stage, results, rework, cycle time, the bottleneck.

    Per stage: visits entered and left, time in stage (median, p90, max),
    waiting before `begin` and working after it, SLA met, reminders and
    escalations, who held it longest, and its share of all the time. Per
    approval: result rates, how often a result sent work back, rounds. Per
    process: started, ended, outcomes, cycle time, work in progress by age,
    and the bottleneck in one sentence. The store does the counting (SQL):
    memory stays flat however long the journal is. For admins and auditors.

    Exit status: 0 shown, 1 refused or nothing happened in the period,
    2 usage error, 4 no store.

    Examples:

        flowctl report contract-approval --since 2026-11-01

        flowctl report --by assignee --format markdown

        flowctl report contract-approval --json

        flowctl report --html -o report.html
    """
    with handle_errors():
        chosen = _report_format(out_format, json_out, csv_out, html_out, output)
        if chosen is ReportFormat.html and output is None:
            raise UsageError("the HTML report is a page, not written to the terminal",
                             hint="pass -o report.html")
        r = analytics.report(process or (), since=since, until=until, by=by.value,
                             as_user=as_user, db=db, org=org, processes_dir=processes)
        if chosen is ReportFormat.table and output is None:
            _text(r)
            return
        content = _render(r, chosen)
        if output is None:
            sys.stdout.write(content)
            sys.stdout.flush()
            return
        _write(output, content)
        echo(f"wrote {output}")


def _render(r: Report, chosen: ReportFormat) -> str:
    if chosen is ReportFormat.json:
        return fmt.to_json(report_json(r)) + "\n"
    if chosen is ReportFormat.csv:
        return csv_text(r)
    if chosen is ReportFormat.markdown:
        return markdown(r)
    if chosen is ReportFormat.html:
        from flowctl.api import htmlreport  # pygal and the diagrams: only for this page

        return htmlreport.page(r, {
            "period": _period(r),
            "summaries": {p.process_id: summary_lines(p) for p in r.processes},
            "tables": {p.process_id: [(t, table.headers, [
                [c if isinstance(c, str) else c.text for c in row] for row in table.rows
            ]) for t, table in sections(p, r.by)] for p in r.processes},
        })
    lines: list[str] = [f"period: {_period(r)}"]
    for p in r.processes:
        lines += ["", *summary_lines(p)]
        for title, table in sections(p, r.by):
            lines += ["", f"{title}:", *table_lines(table)]
    return "\n".join(lines) + "\n"


def _report_format(out_format: ReportFormat | None, json_out: bool, csv_out: bool,
                   html_out: bool, output: str | None) -> ReportFormat:
    asked = [f for f, on in ((ReportFormat.json, json_out), (ReportFormat.csv, csv_out),
                             (ReportFormat.html, html_out)) if on]
    if out_format is not None:
        asked.append(out_format)
    if len(set(asked)) > 1:
        raise UsageError(
            f"choose one format; asked for {', '.join(a.value for a in asked)}",
            hint="pass one of --format table|json|csv|markdown|html (or --json, --csv, --html)",
        )
    if asked:
        return asked[0]
    if output is not None:
        suffix = os.path.splitext(output)[1].lower()
        by_suffix = {".json": ReportFormat.json, ".csv": ReportFormat.csv,
                     ".md": ReportFormat.markdown, ".html": ReportFormat.html,
                     ".htm": ReportFormat.html}
        return by_suffix.get(suffix, ReportFormat.table)
    return ReportFormat.table


class ExportFormat(StrEnum):
    xes = "xes"
    csv = "csv"
    jsonl = "jsonl"


def export(
    process: Annotated[
        list[str] | None,
        typer.Argument(metavar="[PROCESS]...",
                       help="Process ids (default: every process).", show_default=False),
    ] = None,
    out_format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="xes (IEEE 1849), csv or jsonl.",
                     case_sensitive=False),
    ] = ExportFormat.xes,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Only entries at or after TIME (ISO-8601)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help="Only entries before TIME (ISO-8601)."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="PATH",
                     help="File to write (default: standard output)."),
    ] = None,
    as_user: Annotated[str | None, opt.as_user()] = None,
    db: Annotated[str | None, opt.db()] = None,
    org: Annotated[str | None, opt.org()] = None,
    processes: Annotated[str | None, opt.processes()] = None,
) -> None:
    """Write the journal as an event log for process-mining tools: XES, CSV or JSON lines.

    One case per instance (its process and record fields), one event per
    stage entered (lifecycle start) and left (complete), with the actor as
    resource and UTC timestamps. XES follows IEEE 1849 (pm4py, ProM, Celonis
    read it). Streamed: memory stays flat however long the journal is. For
    admins and auditors.

    Examples:

        flowctl export --format xes -o contracts.xes contract-approval

        flowctl export --format csv --since 2026-11-01 > events.csv

        flowctl export --format jsonl | jq .activity
    """
    with handle_errors():
        stream = eventlog.export(process or (), out_format.value, since=since, until=until,
                                 as_user=as_user, db=db, org=org, processes_dir=processes)
        if output is None:
            for chunk in stream:
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return
        _export_to(output, stream)
        echo(f"wrote {output}", err=True)


def _export_to(path: str, stream: Any) -> None:
    """Write to ``path`` only once the export is under way (a refusal writes
    nothing); a failure half-way removes the partial file."""
    first = next(stream, "")
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - removed on failure
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}",
                         hint="pass -o a path you can write to") from exc
    try:
        with fh:
            fh.write(first)
            for chunk in stream:
                fh.write(chunk)
    except BaseException:
        os.unlink(path)
        raise


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("export")(export)

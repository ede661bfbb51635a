"""``flowctl report --html``: one self-contained page.

Everything is inline (styles, the heat diagram as SVG, the charts as SVG):
the page opens without network access. The charts are drawn by pygal, a
library made to emit SVG charts from Python (imported here only, so that no
other command pays for it), with its JavaScript turned off: the SVG carries
everything, and nothing is fetched.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from flowctl.api.analytics import ProcessReport, Report, heat_data, human_duration
from flowctl.diagram import GraphvizFailed, GraphvizNotFound, extract, render_graph
from flowctl.diagram.extract import START_ID
from flowctl.diagram.heat import apply_heat

Tables = Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]]]]

STYLE = """
body { font-family: "Noto Sans", "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #1A2327; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #B0BEC5; padding-bottom: 0.2em;
     margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.6em; }
.period { color: #455A64; }
.bottleneck { background: #FFF3E0; border-left: 4px solid #BD0026; padding: 0.6em 0.9em;
              font-weight: bold; }
.summary { list-style: none; padding: 0; color: #37474F; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border-bottom: 1px solid #CFD8DC; padding: 0.25em 0.6em; text-align: left; }
th { background: #ECEFF1; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
          gap: 1em; }
.chart { min-width: 0; }
.chart svg, .diagram svg { max-width: 100%; height: auto; }
.diagram { overflow-x: auto; border: 1px solid #ECEFF1; padding: 0.5em; }
.note { color: #78909C; font-size: 0.85em; }
"""


def _svg_only(text: str) -> str:
    """An SVG document as an element to inline: no XML declaration or doctype."""
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _chart_config() -> Any:
    import pygal  # the charting library: only for this page (~40 ms to import)

    # pygal appends a finder for its map plugins to sys.meta_path, of the kind
    # Python 3.11 warns about (ImportWarning) whenever an import reaches it;
    # flowctl draws no maps, so the finder is taken out again
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

    style = pygal.style.Style(
        background="white", plot_background="white", foreground="#37474F",
        foreground_strong="#1A2327", foreground_subtle="#CFD8DC", colors=("#F03B20", "#2E7D32"),
        font_family="Noto Sans, DejaVu Sans, sans-serif",
    )
    return pygal, {"js": [], "disable_xml_declaration": True, "style": style, "width": 640,
                   "height": 320, "show_legend": False, "explicit_size": False,
                   "print_values": False}


def histogram_svg(p: ProcessReport) -> str | None:
    if not p.histogram:
        return None
    pygal, config = _chart_config()
    chart = pygal.Bar(title="Cycle time: instances per band", x_title="cycle time",
                      y_title="instances", x_label_rotation=30, **config)
    chart.x_labels = [f"{human_duration(b.low_s)}–{human_duration(b.high_s)}"
                      for b in p.histogram]
    chart.add("instances", [b.count for b in p.histogram])
    return str(chart.render(is_unicode=True))


def wip_svg(p: ProcessReport) -> str | None:
    if not p.wip_days:
        return None
    pygal, config = _chart_config()
    chart = pygal.Line(title="Work in progress: instances running at the end of each day",
                       x_title="day", y_title="instances", x_label_rotation=30,
                       show_dots=len(p.wip_days) <= 60, fill=True,
                       show_minor_x_labels=False, max_scale=8, **config)
    chart.x_labels = [d for d, _ in p.wip_days]
    step = max(1, len(p.wip_days) // 12)
    chart.x_labels_major = [d for i, (d, _) in enumerate(p.wip_days) if i % step == 0]
    chart.add("running", [n for _, n in p.wip_days])
    return str(chart.render(is_unicode=True))


def stage_time_svg(p: ProcessReport) -> str | None:
    rows = [r for r in p.stages if r.stat.median_s is not None]
    if not rows:
        return None
    pygal, config = _chart_config()
    chart = pygal.HorizontalBar(title="Time in stage: median and p90 (hours)", **{
        **config, "show_legend": True, "legend_at_bottom": True})
    rows.reverse()  # drawn from the bottom up: the first stage on top
    chart.x_labels = [r.name for r in rows]
    chart.add("median", [round((r.stat.median_s or 0) / 3600, 1) for r in rows])
    chart.add("p90", [round((r.stat.p90_s or 0) / 3600, 1) for r in rows])
    return str(chart.render(is_unicode=True))


def heat_svg(p: ProcessReport, period: str) -> tuple[str | None, str | None]:
    """The heat diagram (median time in stage) and, when it cannot be drawn, why."""
    if p.definition is None:
        return None, "no definition of this process to draw"
    graph = apply_heat(extract(p.definition), heat_data(p, "time", period), START_ID)
    try:
        content = render_graph(graph, "svg").content
    except (GraphvizNotFound, GraphvizFailed) as exc:
        return None, f"the diagram could not be drawn: {exc.message}"
    return _svg_only(content if isinstance(content, str) else content.decode()), None


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{escape(c)}</td>' if c[:1].isdigit() or c == "-" else
            f"<td>{escape(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(r: Report, text: Mapping[str, Any]) -> str:
    """The report as one HTML page. ``text``: what the command line prints, to
    show the same words: ``period``, ``summaries`` (process id -> lines) and
    ``tables`` (process id -> [(title, headers, rows)])."""
    names = ", ".join(p.name for p in r.processes)
    period = str(text["period"])
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Process report: {escape(names)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Process report</h1>",
        f'<p class="period">Period: {escape(period)}</p>',
    ]
    short = f"{r.since[:10] if r.since else 'the beginning'} until {(r.now or r.until)[:10]}"
    for p in r.processes:
        out.append(f'<section class="process" id="{escape(p.process_id)}">')
        out.append(f"<h2>{escape(p.name)} <code>{escape(p.process_id)}</code></h2>")
        out.append(f'<p class="bottleneck">{escape(p.bottleneck)}</p>')
        lines = list(text["summaries"].get(p.process_id, []))[1:-1]
        out.append('<ul class="summary">' + "".join(f"<li>{escape(x)}</li>" for x in lines)
                   + "</ul>")
        svg, why = heat_svg(p, short)
        out.append("<h3>Heat map: median time in stage, instances on each arrow</h3>")
        out.append(f'<div class="diagram">{svg}</div>' if svg else
                   f'<p class="note">{escape(why or "")}</p>')
        charts = [c for c in (stage_time_svg(p), histogram_svg(p), wip_svg(p)) if c]
        if charts:
            out.append('<div class="charts">' + "".join(
                f'<div class="chart">{c}</div>' for c in charts) + "</div>")
        for title, headers, rows in text["tables"].get(p.process_id, []):
            out.append(f"<h3>{escape(title[0].upper() + title[1:])}</h3>")
            out.append(_table(headers, rows))
        out.append("</section>")
    out.append('<p class="note">Made by flowctl report from the journal. Times are calendar '
               "time; medians and p90 are nearest-rank.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

"""A heat map on the diagram: stages coloured by a measure, arrows labelled with
how many instances took them (``flowctl render --heat``).

Pure: the figures come in as plain mappings (the API reads them from the
store). The colours and counts do not move anything: each stage's figure and
each arrow's count are Graphviz *external* labels (``xlabel``), placed after
the layout, so a heat map has exactly the layout of the plain diagram.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from flowctl.diagram.ir import EdgeKind, Graph, HeatMark, Legend, NodeKind

# ColorBrewer's YlOrRd, 6 classes (sequential, print- and colour-blind-safe):
# light for little, dark red for much; text in white on the two darkest
PALETTE: tuple[tuple[str, str], ...] = (
    ("#FFFFB2", "#1A2327"),
    ("#FED976", "#1A2327"),
    ("#FEB24C", "#1A2327"),
    ("#FD8D3C", "#1A2327"),
    ("#F03B20", "#FFFFFF"),
    ("#BD0026", "#FFFFFF"),
)
NO_DATA = ("#FFFFFF", "#90A4AE")
MEASURES = ("time", "count", "sla")


class HeatData(NamedTuple):
    """What a heat map shows. ``values``: per stage, the measure (seconds, a
    count, or the share of SLAs met, 0..1); ``figures``: the text shown beside
    each stage; ``results``: (stage, result or decision branch) -> count;
    ``arrivals``: (source stage, or None for the start, target) -> count."""

    measure: str
    values: Mapping[str, float]
    figures: Mapping[str, str]
    results: Mapping[tuple[str, str], int]
    arrivals: Mapping[tuple[str | None, str], int]
    title: str  # the legend's title: what is measured, over which period
    low: str  # the legend's ends: "0 min" / "3.0 d"
    high: str


def shade(value: float, low: float, high: float, *, reverse: bool = False) -> tuple[str, str]:
    """The palette's (fill, text) for ``value`` between ``low`` and ``high``."""
    span = high - low
    x = 0.0 if span <= 0 else (value - low) / span
    if reverse:
        x = 1.0 - x
    i = min(len(PALETTE) - 1, max(0, int(x * len(PALETTE))))
    return PALETTE[i]


def apply_heat(graph: Graph, heat: HeatData, start_id: str) -> Graph:
    """The same graph, its stages coloured by ``heat`` and its arrows counted."""
    values = heat.values
    low = min(values.values(), default=0.0)
    high = max(values.values(), default=0.0)
    if heat.measure == "sla":
        low, high = 0.0, 1.0
    nodes = []
    for n in graph.nodes:
        if n.kind in (NodeKind.START, NodeKind.PROCESS, NodeKind.MISSING):
            nodes.append(n)
            continue
        figure = heat.figures.get(n.id, "")
        if n.id in values:
            fill, text = shade(values[n.id], low, high, reverse=heat.measure == "sla")
        elif n.kind in (NodeKind.DECISION, NodeKind.END):
            nodes.append(n)  # takes no time and has no SLA: drawn as in the plain diagram
            continue
        else:
            fill, text = NO_DATA
        nodes.append(n._replace(heat=HeatMark(fill, text, figure)))
    edges = []
    for e in graph.edges:
        if e.kind is EdgeKind.CHILD:
            edges.append(e)
            continue
        if e.kind in (EdgeKind.RESULT, EdgeKind.BRANCH, EdgeKind.DEFAULT):
            taken = heat.results.get((e.source, e.via), 0)
        elif e.kind is EdgeKind.FORK:  # a branch's first arrival comes from no stage of it
            taken = heat.arrivals.get((None, e.target), 0)
        else:
            source = None if e.source == start_id else e.source
            taken = heat.arrivals.get((source, e.target), 0)
        edges.append(e._replace(taken=taken))
    legend = Legend(
        title=heat.title,
        swatches=PALETTE[::-1] if heat.measure == "sla" else PALETTE,
    )
    return graph._replace(nodes=tuple(nodes), edges=tuple(edges),
                          legend=legend._replace(title=f"{heat.title}: {heat.low} → {heat.high}"))

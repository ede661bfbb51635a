"""Diagram IR -> Mermaid ``flowchart`` text (pure, deterministic).

Written for GitHub's Mermaid: every label is quoted and its special
characters are Mermaid entity codes (``#quot;``, ``#lt;``...), ids are
sanitised and prefixed (stage ``end`` becomes ``s_end``), and each phase
is a ``subgraph``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import NamedTuple

from flowctl.diagram import theme
from flowctl.diagram.ir import Edge, EdgeKind, Graph, Mark, Node, NodeKind
from flowctl.text import sanitize

_ENTITIES = {
    "#": "#35;",  # first: every other code starts with '#'
    "&": "#amp;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "|": "#124;",
    "`": "#96;",
}
_ESCAPE = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")

# (opening, closing) brackets of each node shape
_SHAPES: dict[NodeKind, tuple[str, str]] = {
    NodeKind.START: ("((", "))"),
    NodeKind.TASK: ("(", ")"),
    NodeKind.APPROVAL: ("{{", "}}"),
    NodeKind.DECISION: ("{", "}"),
    NodeKind.WAIT: ("[/", "/]"),
    NodeKind.SUBPROCESS: ("[[", "]]"),
    NodeKind.FORK: ("@{ shape: fork, label: ", " }"),
    NodeKind.JOIN: ("@{ shape: fork, label: ", " }"),
    NodeKind.END: ("([", "])"),
    NodeKind.PROCESS: ("[", "]"),
    NodeKind.MISSING: ("[", "]"),
}

_ARROWS: dict[EdgeKind, str] = {
    EdgeKind.START: "-->",
    EdgeKind.RESULT: "-->",
    EdgeKind.BRANCH: "-->",
    EdgeKind.DEFAULT: "-.->",
    EdgeKind.NEXT: "-->",
    EdgeKind.CHILD: "-.->",
    EdgeKind.FORK: "-->",
}

_EXTRA_STYLE: dict[NodeKind, str] = {
    NodeKind.APPROVAL: ",stroke-width:2px",
    NodeKind.END: ",stroke-width:3px",
    NodeKind.PROCESS: ",stroke-dasharray:5 3",
    NodeKind.MISSING: ",stroke-dasharray:5 3",
}

_MARK_STYLES: dict[Mark, str] = {
    Mark.VISITED: f"stroke:{theme.VISITED},stroke-width:2px",
    Mark.CURRENT: f"stroke:{theme.CURRENT},stroke-width:4px",
    Mark.FADED: f"fill:{theme.FADED_FILL},stroke:{theme.FADED},color:{theme.FADED_TEXT}",
    Mark.ADDED: f"fill:{theme.ADDED_FILL},stroke:{theme.ADDED},stroke-width:4px",
    Mark.CHANGED: f"fill:{theme.CHANGED_FILL},stroke:{theme.CHANGED},stroke-width:4px",
    Mark.REMOVED: f"fill:{theme.REMOVED_FILL},stroke:{theme.REMOVED},color:{theme.REMOVED},"
                  "stroke-width:2px,stroke-dasharray:5 3",
}


def escape(text: str) -> str:
    """Text for a quoted Mermaid label: special characters as entity codes,
    control characters shown escaped (``\\x1b``)."""
    text = sanitize(" ".join(text.split()), keep="")
    return _ESCAPE.sub(lambda m: _ENTITIES[m.group(0)], text)


def _word(text: str) -> str:
    """Letters, digits and ``_`` only (ASCII): a safe Mermaid id."""
    return re.sub(r"\W", "_", text, flags=re.ASCII)


def _label(lines: Iterable[str], bold: Iterable[str] = ()) -> str:
    parts = [f"<b>{escape(line)}</b>" for line in bold]
    parts += [escape(line) for line in lines]
    return '"' + "<br>".join(parts) + '"'


class _Ids:
    """Stage ids -> Mermaid ids: ``s_`` + the id with non-word characters as
    ``_``; a clash gets ``_2``, ``_3``... in graph order."""

    def __init__(self, graph: Graph) -> None:
        self.ids: dict[str, str] = {}
        used: set[str] = set()
        for node in graph.nodes:
            base = self._base(node)
            candidate, n = base, 1
            while candidate in used:
                n += 1
                candidate = f"{base}_{n}"
            used.add(candidate)
            self.ids[node.id] = candidate

    @staticmethod
    def _base(node: Node) -> str:
        if node.kind is NodeKind.START:
            return "start_"
        prefix = "c_" if node.kind is NodeKind.PROCESS else "s_"
        name = node.id.split(":", 1)[1] if node.kind is NodeKind.PROCESS else node.id
        return _word(prefix + name)

    def __getitem__(self, node_id: str) -> str:
        return self.ids[node_id]


def _node_line(node: Node, ids: _Ids) -> str:
    opening, closing = _SHAPES[node.kind]
    if node.kind is NodeKind.START:
        return f'{ids[node.id]}{opening}" "{closing}'
    bold = () if node.kind is NodeKind.PROCESS else node.title
    plain = node.title if node.kind is NodeKind.PROCESS else ()
    return f"{ids[node.id]}{opening}{_label((*plain, *node.details), bold)}{closing}"


def _edge_line(edge: Edge, ids: _Ids, nodes: dict[str, Node] | None = None) -> str:
    arrow = _ARROWS[edge.kind]
    lines = edge.label
    source = (nodes or {}).get(edge.source)
    if not lines and source is not None and source.kind is NodeKind.JOIN:
        # Mermaid draws a fork/join bar without its text: the join's name and
        # rule go on the arrow that leaves it
        lines = (*source.title, *source.details)
    label = f"|{_label(lines)}|" if lines else ""
    return f"{ids[edge.source]} {arrow}{label} {ids[edge.target]}"


def _class_lines(graph: Graph, ids: _Ids) -> list[str]:
    out: list[str] = []
    for kind in NodeKind:
        members = [ids[n.id] for n in graph.nodes if n.kind is kind]
        if not members:
            continue
        c = theme.KIND_COLORS[kind]
        # class names are prefixed: ``end`` is a Mermaid keyword
        out.append(
            f"classDef k_{kind.value} fill:{c.fill},stroke:{c.border},color:{c.text}"
            + _EXTRA_STYLE.get(kind, "")
        )
        out.append(f"class {','.join(members)} k_{kind.value}")
    return out


def _highlight_lines(graph: Graph, ids: _Ids) -> list[str]:
    out: list[str] = []
    for mark, style in _MARK_STYLES.items():
        members = [ids[n.id] for n in graph.nodes if n.mark is mark]
        if members:
            out.append(f"classDef m_{mark.value} {style}")
            out.append(f"class {','.join(members)} m_{mark.value}")
    for mark, style in (
        (Mark.VISITED, f"stroke:{theme.VISITED},stroke-width:3px"),
        (Mark.FADED, f"stroke:{theme.FADED}"),
        (Mark.ADDED, f"stroke:{theme.ADDED},stroke-width:3px"),
        (Mark.CHANGED, f"stroke:{theme.CHANGED},stroke-width:3px"),
        (Mark.REMOVED, f"stroke:{theme.REMOVED},stroke-width:2px,stroke-dasharray:5 3"),
    ):
        indexes = [str(i) for i, e in enumerate(graph.edges) if e.mark is mark]
        if indexes:
            out.append(f"linkStyle {','.join(indexes)} {style}")
    return out


# What Mermaid draws with its default settings (mermaid.initialize: maxEdges,
# maxTextSize; secure settings, which a diagram cannot raise): a viewer that
# keeps them shows an error instead of a bigger diagram.
MAX_EDGES = 500
MAX_TEXT_SIZE = 50_000
_EDGE_LINE = re.compile(r"^\s*\S+ (-->|-\.->)")


class MermaidCounts(NamedTuple):
    edges: int  # links, as Mermaid counts them against maxEdges
    text_size: int  # UTF-16 code units after the front matter, as against maxTextSize


def counts(text: str) -> MermaidCounts:
    """The sizes of a flowchart from :func:`render_mermaid` that Mermaid limits."""
    body = text
    if text.startswith("---\n"):
        end = text.find("\n---\n", 3)
        if end >= 0:
            body = text[end + 5:]
    edges = sum(1 for line in body.splitlines() if _EDGE_LINE.match(line))
    return MermaidCounts(edges, len(body.encode("utf-16-le")) // 2)


def over_limits(text: str) -> list[str]:
    """Why Mermaid with its default settings would not draw ``text``, if it would not."""
    found = counts(text)
    out: list[str] = []
    if found.edges > MAX_EDGES:
        out.append(f"{found.edges} edges, more than Mermaid draws by default "
                   f"(maxEdges {MAX_EDGES})")
    if found.text_size > MAX_TEXT_SIZE:
        out.append(f"{found.text_size} characters of Mermaid text, more than Mermaid draws "
                   f"by default (maxTextSize {MAX_TEXT_SIZE})")
    return out


def render_mermaid(graph: Graph) -> str:
    """The whole graph as a Mermaid flowchart, ending with a newline."""
    ids = _Ids(graph)
    title = sanitize(" ".join(graph.title) + f" ({graph.id})", keep="")
    out = ["---", f"title: {json.dumps(title, ensure_ascii=False)}", "---", "flowchart TD"]
    nodes = {n.id: n for n in graph.nodes}
    body: list[str] = [_node_line(n, ids) for n in graph.loose_nodes if n.kind is NodeKind.START]
    for cluster in graph.clusters:
        body.append(f"subgraph {_word('ph_' + cluster.id)}[{_label(cluster.label)}]")
        body += ["    " + _node_line(nodes[n], ids) for n in cluster.nodes]
        body.append("end")
    body += [_node_line(n, ids) for n in graph.loose_nodes if n.kind is not NodeKind.START]
    body += [_edge_line(e, ids, nodes) for e in graph.edges]
    body += _class_lines(graph, ids)
    if graph.highlighted:
        body += _highlight_lines(graph, ids)
    out += ["    " + line for line in body]
    return "\n".join(out) + "\n"

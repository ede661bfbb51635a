"""Diagram IR -> Graphviz DOT text (pure string building, deterministic)."""

from __future__ import annotations

from collections.abc import Iterable

from flowctl.diagram import theme
from flowctl.diagram.ir import Cluster, Edge, EdgeKind, Graph, Mark, Node, NodeKind
from flowctl.text import sanitize


class Html(str):
    """An attribute value written as a DOT HTML-like label ``<...>``."""


Attrs = list[tuple[str, str]]

_SHAPES: dict[NodeKind, Attrs] = {
    NodeKind.START: [
        ("shape", "circle"),
        ("style", "filled"),
        ("width", "0.22"),
        ("fixedsize", "true"),
    ],
    NodeKind.TASK: [("shape", "box"), ("style", "rounded,filled")],
    NodeKind.APPROVAL: [("shape", "box"), ("style", "filled"), ("peripheries", "2")],
    NodeKind.DECISION: [("shape", "diamond"), ("style", "filled"), ("margin", "0.05,0.05")],
    NodeKind.WAIT: [("shape", "note"), ("style", "filled")],
    NodeKind.SUBPROCESS: [("shape", "component"), ("style", "filled")],
    NodeKind.FORK: [("shape", "box"), ("style", "filled"), ("height", "0.08"),
                    ("width", "2.2"), ("fixedsize", "true")],
    NodeKind.JOIN: [("shape", "box"), ("style", "filled"), ("height", "0.08"),
                    ("width", "2.2"), ("fixedsize", "true")],
    NodeKind.END: [("shape", "box"), ("style", "rounded,filled,bold"), ("penwidth", "2.5")],
    NodeKind.PROCESS: [("shape", "folder"), ("style", "filled,dashed")],
    NodeKind.MISSING: [("shape", "box"), ("style", "filled,dashed")],
}

_EDGE_STYLES: dict[EdgeKind, Attrs] = {
    EdgeKind.START: [("arrowsize", "0.6")],
    EdgeKind.RESULT: [],
    EdgeKind.BRANCH: [("fontcolor", theme.CONDITION_TEXT)],
    EdgeKind.DEFAULT: [("style", "dashed"), ("fontcolor", theme.CONDITION_TEXT)],
    EdgeKind.NEXT: [],
    EdgeKind.FORK: [("penwidth", "1.6")],
    EdgeKind.CHILD: [
        ("style", "dashed"),
        ("color", theme.KIND_COLORS[NodeKind.PROCESS].border),
        ("arrowhead", "empty"),
    ],
}


def quote(text: str) -> str:
    """A DOT double-quoted string; control characters shown escaped (``\\x1b``)."""
    text = sanitize(text)  # keeps line breaks, as before
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def html_escape(text: str) -> str:
    """Text for an HTML-like label; control characters shown escaped (``\\x1b``):
    Graphviz refuses them, and they must not reach a terminal through the SVG."""
    text = sanitize(text)  # keeps line breaks, as before
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _attrs(attrs: Attrs) -> str:
    """``[a="x", b=<...>]``: ``Html`` values go in angle brackets."""
    parts = [f"{k}=<{v}>" if isinstance(v, Html) else f"{k}={quote(v)}" for k, v in attrs]
    return "[" + ", ".join(parts) + "]"


def _html_lines(
    lines: Iterable[str], *, bold: bool = False, size: int | None = None, color: str | None = None
) -> list[str]:
    out = []
    for line in lines:
        text = html_escape(line)
        if bold:
            text = f"<B>{text}</B>"
        if size is not None or color is not None:
            font = "".join(
                [f' POINT-SIZE="{size}"' if size else "", f' COLOR="{color}"' if color else ""]
            )
            text = f"<FONT{font}>{text}</FONT>"
        out.append(text)
    return out


def node_label(node: Node) -> str:
    if node.kind is NodeKind.START:
        return ""
    color = theme.FADED_TEXT if node.mark is Mark.FADED else theme.DETAIL_TEXT
    if node.heat is not None:  # readable on the heat map's fill, dark or light
        color = node.heat.text
    lines = _html_lines(node.title, bold=node.kind is not NodeKind.PROCESS)
    lines += _html_lines(node.details, size=9, color=color)
    return Html("<BR/>".join(lines))


def _mark_node_attrs(node: Node, colors: theme.Colors) -> Attrs:
    if node.mark is Mark.CURRENT:
        return [
            ("color", theme.CURRENT),
            ("fillcolor", colors.fill),
            ("penwidth", "3.5"),
            ("fontcolor", colors.text),
        ]
    if node.mark is Mark.VISITED:
        return [
            ("color", theme.VISITED),
            ("fillcolor", colors.fill),
            ("penwidth", "2"),
            ("fontcolor", colors.text),
        ]
    if node.mark is Mark.FADED:
        fill = theme.FADED if node.kind is NodeKind.START else theme.FADED_FILL
        return [("color", theme.FADED), ("fillcolor", fill), ("fontcolor", theme.FADED_TEXT)]
    return [("color", colors.border), ("fillcolor", colors.fill), ("fontcolor", colors.text)]


_BARS = (NodeKind.FORK, NodeKind.JOIN)


def node_attrs(node: Node) -> Attrs:
    colors = theme.KIND_COLORS[node.kind]
    if node.kind in _BARS:  # a bar: its name and details beside it
        attrs = [("label", ""), ("xlabel", node_label(node)), *_SHAPES[node.kind]]
    else:
        attrs = [("label", node_label(node)), *_SHAPES[node.kind]]
    attrs += _mark_node_attrs(node, colors)
    if node.start and node.mark is Mark.NONE:
        attrs.append(("penwidth", "2"))
    if node.heat is not None:
        # colours and an external label: nothing that moves the layout
        attrs += [("fillcolor", node.heat.fill), ("fontcolor", node.heat.text)]
        if node.heat.figure:
            figure = _html_lines([node.heat.figure], bold=True, color=theme.HEAT_TEXT)
            attrs.append(("xlabel", Html("".join(figure))))
    attrs.append(("tooltip", node.id))
    return attrs


def edge_attrs(edge: Edge) -> Attrs:
    attrs: Attrs = []
    if edge.label:
        attrs.append(("label", Html("<BR/>".join(_html_lines(edge.label)))))
    attrs += _EDGE_STYLES[edge.kind]
    if edge.mark is Mark.VISITED:
        attrs += [("color", theme.VISITED), ("penwidth", "2.2"), ("fontcolor", theme.VISITED)]
    elif edge.mark is Mark.FADED:
        attrs += [("color", theme.FADED), ("fontcolor", theme.FADED_TEXT)]
    if edge.taken is not None:
        taken = _html_lines([f"×{edge.taken}"], bold=True, color=theme.HEAT_TEXT)
        attrs.append(("xlabel", Html("".join(taken))))
        if not edge.taken:
            attrs += [("color", theme.FADED), ("style", "dashed")]
    return attrs


def _cluster_lines(cluster: Cluster, nodes: dict[str, Node]) -> list[str]:
    label = Html("<BR/>".join(_html_lines(cluster.label, bold=True)))
    out = [
        f"  subgraph {quote('cluster_' + cluster.id)} {{",
        f"    graph {_attrs([('label', label), *_CLUSTER])};",
    ]
    out += [f"    {quote(n)} {_attrs(node_attrs(nodes[n]))};" for n in cluster.nodes]
    out.append("  }")
    return out


def _graph_label(graph: Graph) -> str:
    lines = _html_lines(graph.title, bold=True)
    lines += _html_lines([graph.id], size=10, color=theme.DETAIL_TEXT)
    if graph.legend is None:
        return Html("<BR/>".join(lines))
    # the heat map's key under the title: a row of swatches, low to high (a
    # label is text or one table, so the title becomes the table's first row)
    title = "".join(_html_lines([graph.legend.title], size=10))
    cells = "".join(
        f'<TD BGCOLOR="{fill}" WIDTH="28" HEIGHT="12" FIXEDSIZE="TRUE"></TD>'
        for fill, _ in graph.legend.swatches
    )
    key = (f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="0">'
           f"<TR>{cells}</TR></TABLE>")
    return Html(
        '<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="0">'
        f'<TR><TD>{"<BR/>".join(lines)}</TD></TR><TR><TD>{title}</TD></TR>'
        f"<TR><TD>{key}</TD></TR></TABLE>"
    )


_GRAPH: Attrs = [
    ("labelloc", "t"),
    ("fontname", theme.FONT),
    ("fontsize", "16"),
    ("rankdir", "TB"),
    ("newrank", "true"),
    ("nodesep", "0.4"),
    ("ranksep", "0.45"),
    ("pad", "0.3"),
    ("bgcolor", "white"),
]
_NODE_DEFAULTS: Attrs = [
    ("fontname", theme.FONT),
    ("fontsize", "11"),
    ("penwidth", "1.3"),
    ("margin", "0.18,0.08"),
]
_EDGE_DEFAULTS: Attrs = [
    ("fontname", theme.FONT),
    ("fontsize", "9"),
    ("color", theme.EDGE),
    ("fontcolor", theme.EDGE_TEXT),
    ("arrowsize", "0.8"),
]
_CLUSTER: Attrs = [
    ("style", "rounded,filled"),
    ("fillcolor", theme.CLUSTER_FILL),
    ("color", theme.CLUSTER_BORDER),
    ("fontsize", "12"),
    ("fontcolor", theme.EDGE_TEXT),
    ("labeljust", "l"),
    ("margin", "14"),
]


def render_dot(graph: Graph) -> str:
    """The whole graph as DOT text, ending with a newline."""
    out = [
        f"digraph {quote(graph.id)} {{",
        f"  graph {_attrs([('label', _graph_label(graph)), *_GRAPH])};",
        f"  node {_attrs(_NODE_DEFAULTS)};",
        f"  edge {_attrs(_EDGE_DEFAULTS)};",
    ]
    nodes = {n.id: n for n in graph.nodes}
    loose = graph.loose_nodes
    starts = [n for n in loose if n.kind is NodeKind.START]
    out += [f"  {quote(n.id)} {_attrs(node_attrs(n))};" for n in starts]
    for cluster in graph.clusters:
        out += _cluster_lines(cluster, nodes)
    out += [f"  {quote(n.id)} {_attrs(node_attrs(n))};" for n in loose if n not in starts]
    out += [
        f"  {quote(e.source)} -> {quote(e.target)} {_attrs(edge_attrs(e))};" for e in graph.edges
    ]
    out.append("}")
    return "\n".join(out) + "\n"

"""Diagrams of processes: model -> graph IR -> DOT / Mermaid -> SVG / PNG.

from flowctl.diagram import Highlight, render_process

svg = render_process(process, "svg")
card = render_process(process, "mermaid", Highlight.from_path(["edit-customer", "check-level"]))
"""

from flowctl.diagram.extract import changes_graph, extract
from flowctl.diagram.graphviz_run import GraphvizFailed, GraphvizNotFound
from flowctl.diagram.ir import Cluster, Edge, EdgeKind, Graph, Highlight, Mark, Node, NodeKind
from flowctl.diagram.render import (
    DiagramFormat,
    Rendered,
    format_for_path,
    render,
    render_graph,
    render_process,
)

__all__ = [
    "Cluster",
    "DiagramFormat",
    "Edge",
    "EdgeKind",
    "Graph",
    "GraphvizFailed",
    "GraphvizNotFound",
    "Highlight",
    "Mark",
    "Node",
    "NodeKind",
    "Rendered",
    "changes_graph",
    "extract",
    "format_for_path",
    "render",
    "render_graph",
    "render_process",
]

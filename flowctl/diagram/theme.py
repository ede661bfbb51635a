"""Colours shared by the DOT and Mermaid renderers, one set per node kind."""

from __future__ import annotations

from typing import NamedTuple

from flowctl.diagram.ir import NodeKind

# A family with Chinese, Japanese, Korean and Cyrillic glyphs first (installed
# by scripts/install-system-deps.sh), then common fallbacks.
FONT = "Noto Sans CJK SC,Noto Sans,DejaVu Sans,sans-serif"


class Colors(NamedTuple):
    fill: str
    border: str
    text: str = "#1A2327"


KIND_COLORS: dict[NodeKind, Colors] = {
    NodeKind.START: Colors("#263238", "#263238"),
    NodeKind.TASK: Colors("#E3F2FD", "#1E88E5"),
    NodeKind.APPROVAL: Colors("#FFF3E0", "#EF6C00"),
    NodeKind.DECISION: Colors("#FFF9C4", "#F9A825"),
    NodeKind.WAIT: Colors("#F3E5F5", "#8E24AA"),
    NodeKind.SUBPROCESS: Colors("#E8F5E9", "#2E7D32"),
    NodeKind.FORK: Colors("#263238", "#263238"),
    NodeKind.JOIN: Colors("#263238", "#263238"),
    NodeKind.END: Colors("#ECEFF1", "#263238"),
    NodeKind.PROCESS: Colors("#FFFFFF", "#2E7D32"),
    NodeKind.MISSING: Colors("#FFEBEE", "#C62828", "#C62828"),
}

DETAIL_TEXT = "#455A64"
EDGE = "#546E7A"
EDGE_TEXT = "#37474F"
CONDITION_TEXT = "#8D6E00"
CLUSTER_FILL = "#F7F9FA"
CLUSTER_BORDER = "#B0BEC5"
CURRENT = "#D32F2F"
VISITED = "#263238"
FADED = "#CFD8DC"
FADED_TEXT = "#90A4AE"
FADED_FILL = "#FAFAFA"
# a drawing of a change (flowctl diff --format markdown)
ADDED = "#2E7D32"
ADDED_FILL = "#C8E6C9"
CHANGED = "#EF8F00"
CHANGED_FILL = "#FFE082"
REMOVED = "#C62828"
REMOVED_FILL = "#FFEBEE"
HEAT_TEXT = "#B71C1C"  # a heat map's figures and arrow counts

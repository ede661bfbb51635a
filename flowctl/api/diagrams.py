"""Diagrams through the API: what the command line (and a script) needs of
:mod:`flowctl.diagram` to draw a process or an instance."""

from __future__ import annotations

from flowctl.api.instances import InstanceCard, path_taken
from flowctl.diagram import (
    DiagramFormat,
    Highlight,
    Rendered,
    format_for_path,
    render,
)
from flowctl.diagram.mermaid import over_limits
from flowctl.engine import FINISHED

__all__ = ["DiagramFormat", "Highlight", "Rendered", "format_for_path", "highlight", "over_limits",
           "render"]


def highlight(card: InstanceCard) -> Highlight:
    """What a diagram of the instance marks: the path it took, and where it is."""
    return Highlight.from_path(path_taken(card), finished=card.instance.status in FINISHED)

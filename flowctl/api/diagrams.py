"""Diagrams through the API: what the command line (and a script) needs of
:mod:`flowctl.diagram` to draw a process or an instance."""

from __future__ import annotations

from flowctl.diagram import (
    DiagramFormat,
    Highlight,
    Rendered,
    format_for_path,
    render,
)
from flowctl.diagram.mermaid import over_limits

__all__ = ["DiagramFormat", "Highlight", "Rendered", "format_for_path", "over_limits", "render"]

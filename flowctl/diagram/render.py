"""Process -> diagram in one call: DOT, Mermaid, SVG or PNG."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import NamedTuple

from flowctl.diagram.dot import render_dot
from flowctl.diagram.extract import extract
from flowctl.diagram.graphviz_run import DOT_TIMEOUT, layout
from flowctl.diagram.ir import Graph, Highlight
from flowctl.diagram.mermaid import render_mermaid
from flowctl.errors import UsageError
from flowctl.model import Process


class DiagramFormat(StrEnum):
    SVG = "svg"
    PNG = "png"
    DOT = "dot"
    MERMAID = "mermaid"

    @property
    def extension(self) -> str:
        return {"mermaid": "mmd"}.get(self.value, self.value)

    @property
    def is_text(self) -> bool:
        return self is not DiagramFormat.PNG


# file suffix -> format, for ``-o diagram.svg``
SUFFIXES: dict[str, DiagramFormat] = {
    ".svg": DiagramFormat.SVG,
    ".png": DiagramFormat.PNG,
    ".dot": DiagramFormat.DOT,
    ".gv": DiagramFormat.DOT,
    ".mmd": DiagramFormat.MERMAID,
    ".mermaid": DiagramFormat.MERMAID,
}


def format_for_path(path: str) -> DiagramFormat:
    """The format a file name asks for, by its suffix."""
    suffix = os.path.splitext(path)[1].lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        allowed = ", ".join(sorted(SUFFIXES))
        raise UsageError(
            f"cannot tell the diagram format from '{path}' (suffix '{suffix}'); "
            f"known suffixes: {allowed}",
            hint="pass --format svg|png|dot|mermaid",
        )
    return fmt


class Rendered(NamedTuple):
    content: str | bytes  # bytes for png, text otherwise
    note: str | None = None  # set when Graphviz fell back to a quicker layout


def render_graph(
    graph: Graph, fmt: DiagramFormat | str, *, timeout: float = DOT_TIMEOUT
) -> Rendered:
    fmt = DiagramFormat(fmt)
    if fmt is DiagramFormat.MERMAID:
        return Rendered(render_mermaid(graph))
    dot_text = render_dot(graph)
    if fmt is DiagramFormat.DOT:
        return Rendered(dot_text)
    result = layout(dot_text, fmt.value, timeout=timeout)
    content: str | bytes = (
        result.output.decode("utf-8") if fmt is DiagramFormat.SVG else result.output
    )
    return Rendered(content, result.note)


def render(
    process: Process,
    fmt: DiagramFormat | str,
    *,
    highlight: Highlight | None = None,
    timeout: float = DOT_TIMEOUT,
) -> Rendered:
    """A process's diagram, with the note about any Graphviz fallback."""
    return render_graph(extract(process, highlight), fmt, timeout=timeout)


def render_process(
    process: Process, fmt: DiagramFormat | str, highlight: Highlight | None = None
) -> str | bytes:
    """A process's diagram: ``str`` for svg/dot/mermaid, ``bytes`` for png.

    ``highlight`` marks an instance's current stage, visited stages and taken
    edges. Raises ``GraphvizNotFound`` for svg/png without Graphviz.
    """
    return render(process, fmt, highlight=highlight).content

"""Diagrams through the API: what the command line (and a script) needs of
:mod:`flowctl.diagram` to draw a process or an instance."""

from __future__ import annotations

from flowctl.api.instances import PATH_KINDS, InstanceCard, path_taken
from flowctl.diagram import (
    DiagramFormat,
    Highlight,
    Rendered,
    format_for_path,
    render,
)
from flowctl.diagram.mermaid import over_limits
from flowctl.engine import ACTIVE, FINISHED, WAITING

__all__ = ["DiagramFormat", "Highlight", "Rendered", "format_for_path", "highlight", "over_limits",
           "render"]


def highlight(card: InstanceCard) -> Highlight:
    """What a diagram of the instance marks: the path it took, and where it is
    (with parallel branches: each branch's path, and every stage they are at)."""
    finished = card.instance.status in FINISHED
    if not any(isinstance(e.data.get("branch"), str) for e in card.history):
        return Highlight.from_path(path_taken(card), finished=finished)
    visited: set[str] = set()
    taken: set[tuple[str, str]] = set()
    last: str | None = None  # where the instance is outside the branches
    branch_last: dict[str, str] = {}  # where each branch is

    def step(source: str | None, target: str) -> None:
        visited.add(target)
        if source is not None and source != target:
            taken.add((source, target))

    for e in card.history:
        branch = e.data.get("branch")
        if not e.stage or (e.kind not in PATH_KINDS and e.kind not in _BRANCH_KINDS):
            continue
        if isinstance(branch, str):
            step(branch_last.get(branch, last), e.stage)
            branch_last[branch] = e.stage
            if e.kind == "branch_ended":
                last = e.stage
            continue
        if e.kind == "completed" and e.stage == last:
            continue
        step(last, e.stage)
        last = e.stage
        if e.kind == "joined":
            branch_last.clear()
    active = frozenset() if finished else frozenset(
        b.stage for b in card.instance.branches if b.stage and b.status in (ACTIVE, WAITING))
    current = None if finished or active else last
    return Highlight(current=current, visited=frozenset(visited), taken=frozenset(taken),
                     active=active)


# the entries of parallel branches that move along the diagram
_BRANCH_KINDS = ("branch_joined", "branch_ended", "joined")

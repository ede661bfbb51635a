"""The diagram IR: a small graph of named tuples, no I/O.

``extract`` builds it from a ``Process``; the DOT and Mermaid renderers turn
it into text. Everything is ordered (tuples in definition order), so the
same process always gives the same graph and the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple


class NodeKind(StrEnum):
    START = "start"  # the synthetic entry point before the start stage
    TASK = "task"
    APPROVAL = "approval"
    DECISION = "decision"
    WAIT = "wait"
    SUBPROCESS = "subprocess"
    FORK = "fork"  # a parallel stage: a bar its branches leave from
    JOIN = "join"  # the bar where they meet again
    END = "end"
    PROCESS = "process"  # a child process started by a subprocess stage
    MISSING = "missing"  # a stage named by a transition but not defined


class EdgeKind(StrEnum):
    START = "start"  # start point -> start stage
    RESULT = "result"  # a result a person reports
    BRANCH = "branch"  # a decision's condition
    DEFAULT = "default"  # a decision's "else"
    NEXT = "next"  # wait / subprocess continuation
    CHILD = "child"  # subprocess stage -> child process
    FORK = "fork"  # parallel stage -> a branch's first stage


class Mark(StrEnum):
    """How an instance highlight, or a drawing of a change, shows a node or an edge."""

    NONE = "none"  # no highlight asked for
    CURRENT = "current"  # the stage the instance is at
    VISITED = "visited"  # a stage it passed / an edge it took
    FADED = "faded"  # not on the instance's path
    # a drawing of a change (``flowctl diff``): the new version, with
    ADDED = "added"  # what it adds
    CHANGED = "changed"  # what it changes
    REMOVED = "removed"  # and what it removes, drawn from the old version


class Node(NamedTuple):
    id: str  # the stage id (unique within the graph)
    kind: NodeKind
    title: tuple[str, ...]  # the stage's name, wrapped into lines
    details: tuple[str, ...] = ()  # who, SLA, fields... wrapped into lines
    phase: str | None = None  # phase id, when the stage is in a declared phase
    start: bool = False
    mark: Mark = Mark.NONE
    heat: HeatMark | None = None  # a heat map's colour and figure (``render --heat``)


class Edge(NamedTuple):
    source: str
    target: str
    kind: EdgeKind
    label: tuple[str, ...] = ()  # wrapped lines; empty for no label
    mark: Mark = Mark.NONE
    via: str = ""  # the result's name, or the decision branch: "1", "2"... or "default"
    taken: int | None = None  # a heat map's count of instances that took it


class HeatMark(NamedTuple):
    """How a heat map shows a stage: its fill, text colour and figure."""

    fill: str
    text: str
    figure: str  # e.g. "median 46.2 h", shown beside the stage


class Legend(NamedTuple):
    """A heat map's key, drawn under the title: what the colours measure."""

    title: str  # "median time in stage, 2026-11-01 until 2026-12-01"
    swatches: tuple[tuple[str, str], ...]  # (fill, text) from low to high


class Cluster(NamedTuple):
    id: str  # phase id
    label: tuple[str, ...]  # phase name, wrapped
    nodes: tuple[str, ...]  # node ids in definition order


class Graph(NamedTuple):
    id: str  # process id
    title: tuple[str, ...]  # process name, wrapped
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...]  # phases in declared order, empty ones left out
    highlighted: bool = False
    legend: Legend | None = None  # a heat map's key

    def node(self, node_id: str) -> Node | None:
        for n in self.nodes:
            if n.id == node_id:
                return n
        return None

    @property
    def loose_nodes(self) -> tuple[Node, ...]:
        """Nodes outside every cluster, in order."""
        inside = {n for c in self.clusters for n in c.nodes}
        return tuple(n for n in self.nodes if n.id not in inside)


class Highlight(NamedTuple):
    """An instance's position: current stage, stages visited, edges taken.

    ``taken`` holds ``(source stage, target stage)`` pairs; when two results
    of a stage lead to the same stage, both edges show as taken.
    """

    current: str | None = None
    visited: frozenset[str] = frozenset()
    taken: frozenset[tuple[str, str]] = frozenset()
    active: frozenset[str] = frozenset()  # parallel branches: every stage they are at

    @classmethod
    def from_path(cls, stages: Sequence[str], *, finished: bool = False) -> Highlight:
        """From the stages an instance entered, oldest first.

        The last one is the current stage, unless ``finished`` (then every
        stage is just visited).
        """
        if not stages:
            return cls()
        taken = frozenset(zip(stages, stages[1:], strict=False))
        current = None if finished else stages[-1]
        return cls(current=current, visited=frozenset(stages), taken=taken)

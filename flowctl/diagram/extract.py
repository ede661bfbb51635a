"""Process model -> diagram IR (pure).

Each stage becomes a node whose lines say what a reader needs at a glance:
who does it, the SLA, what a wait waits for, which child process a
subprocess starts. Results, conditions and "else" become labelled edges.
"""

from __future__ import annotations

from flowctl.diagram.ir import (
    Cluster,
    Edge,
    EdgeKind,
    Graph,
    Highlight,
    Mark,
    Node,
    NodeKind,
)
from flowctl.diagram.text import (
    DECISION_WIDTH,
    DETAIL_WIDTH,
    EDGE_WIDTH,
    TITLE_WIDTH,
    wrap,
    wrap_all,
)
from flowctl.model import (
    ApprovalPolicy,
    Escalation,
    EscalationAction,
    Process,
    Sla,
    Stage,
    StageKind,
)

# Stage ids match ^[a-z][a-z0-9-]*$, so these can never clash with one.
START_ID = "(start)"
PROCESS_PREFIX = "process:"

_STAGE_NODE_KIND = {
    StageKind.TASK: NodeKind.TASK,
    StageKind.APPROVAL: NodeKind.APPROVAL,
    StageKind.DECISION: NodeKind.DECISION,
    StageKind.WAIT: NodeKind.WAIT,
    StageKind.SUBPROCESS: NodeKind.SUBPROCESS,
    StageKind.PARALLEL: NodeKind.FORK,
    StageKind.JOIN: NodeKind.JOIN,
    StageKind.END: NodeKind.END,
}


def approvers_texts(stage: Stage) -> list[str]:
    """``countersign: role general-manager``, ``+ head of finance``: one approver
    per line, so long lists wrap between approvers."""
    names = [a.describe() for a in stage.approvers]
    if not names:
        return ["approver named on entry"]
    if len(names) == 1:
        return ["approver: " + names[0]]
    if stage.policy is ApprovalPolicy.ALL:
        head, joiner = "countersign: ", "+ "
    elif stage.policy is ApprovalPolicy.ANY:
        head, joiner = "any of: ", "or "
    else:
        head, joiner = "one of: ", "or "
    return [head + names[0], *(joiner + n for n in names[1:])]


def escalation_text(e: Escalation) -> str:
    """``after 48h: reassign to manager of assignee`` and the like."""
    if e.action is EscalationAction.RESULT:
        return f"after {e.after}: auto result {e.result}"
    if e.action is EscalationAction.REASSIGN and e.to is not None:
        return f"after {e.after}: reassign to {e.to.describe()}"
    if e.to is not None:
        return f"after {e.after}: {e.action.value} {e.to.describe()}"
    return f"after {e.after}: {e.action.value}"


def sla_texts(sla: Sla | None) -> list[str]:
    """``SLA 48h (business hours)``, then one line per escalation."""
    if sla is None:
        return []
    head = f"SLA {sla.within}" + (" (business hours)" if sla.business_hours else "")
    return [head, *(escalation_text(e) for e in sla.escalations)]


def _kind_texts(stage: Stage) -> list[str]:
    kind = stage.kind
    if kind is StageKind.APPROVAL:
        return approvers_texts(stage)
    if kind is StageKind.WAIT:
        if stage.wait_until is not None:
            return [f"waits until record.{stage.wait_until}"]
        return [f"waits {stage.wait_for}"] if stage.wait_for is not None else []
    if kind is StageKind.SUBPROCESS:
        return [
            f"starts {stage.process}",
            "waits for it to end" if stage.wait_child else "does not wait for it",
        ]
    if kind is StageKind.END and stage.outcome is not None:
        return [f"outcome: {stage.outcome}"]
    if kind is StageKind.JOIN:
        return join_texts(stage)
    return []


def join_texts(stage: Stage) -> list[str]:
    """``waits for all branches``, ``an end in a branch cancels the others``."""
    wanted = {"all": "all branches", "any": "any one branch (cancels the others)"}.get(
        stage.complete, f"{stage.complete} branches (cancels the others)")
    end = ("an end in a branch cancels the others" if stage.on_reject.value == "cancel-others"
           else "an end in a branch waits for the others")
    return [f"waits for {wanted}", end]


def stage_details(stage: Stage) -> tuple[str, ...]:
    """The lines under a stage's name, wrapped."""
    texts: list[str] = []
    if stage.assignee is not None and stage.kind is not StageKind.APPROVAL:
        texts.append("by " + stage.assignee.describe())
    texts += _kind_texts(stage)
    if stage.required_fields:
        texts.append("requires: " + ", ".join(stage.required_fields))
    texts += sla_texts(stage.sla)
    texts += on_enter_texts(stage)
    return wrap_all(texts, DETAIL_WIDTH)


def on_enter_texts(stage: Stage) -> list[str]:
    """``task: Check the price list (before accepted)``, ``event: offer-prepared``."""
    out = []
    for t in stage.tasks:
        extra = [f"by {t.assignee.describe()}"] if t.assignee is not None else []
        if t.delay:
            extra.append(f"after {t.delay}")
        if t.blocks:
            extra.append("before " + ", ".join(t.blocks))
        elif t.blocking:
            extra.append("before any result")
        out.append(f"task: {t.name}" + (f" ({'; '.join(extra)})" if extra else ""))
    out += [f"event: {e.type}" for e in stage.events]
    return out


def _auto_after(stage: Stage, result: str) -> str | None:
    """The SLA escalation that reports ``result`` automatically, if any."""
    if stage.sla is None:
        return None
    for e in stage.sla.escalations:
        if e.action is EscalationAction.RESULT and e.result == result:
            return e.after
    return None


def _stage_edges(stage: Stage) -> list[Edge]:
    edges: list[Edge] = []
    for r in stage.results:
        texts = [r.label or r.name]
        if r.required:
            texts.append("requires " + ", ".join(r.required))
        after = _auto_after(stage, r.name)
        if after is not None:
            texts.append(f"(auto after {after})")
        edges.append(Edge(stage.id, r.to, EdgeKind.RESULT, wrap_all(texts, EDGE_WIDTH),
                          via=r.name))
    for i, b in enumerate(stage.branches):
        edges.append(Edge(stage.id, b.to, EdgeKind.BRANCH, wrap(b.when, EDGE_WIDTH),
                          via=str(i + 1)))
    for f in stage.forks:
        texts = [f.label or f.name] + ([f"when {f.when}"] if f.when else [])
        edges.append(Edge(stage.id, f.to, EdgeKind.FORK, wrap_all(texts, EDGE_WIDTH),
                          via=f.name))
    if stage.default is not None:
        edges.append(Edge(stage.id, stage.default, EdgeKind.DEFAULT, ("else",), via="default"))
    if stage.next is not None:
        edges.append(Edge(stage.id, stage.next, EdgeKind.NEXT))
    if stage.kind is StageKind.SUBPROCESS and stage.process:
        edges.append(Edge(stage.id, PROCESS_PREFIX + stage.process, EdgeKind.CHILD, ("starts",)))
    return edges


def _stage_node(stage: Stage, phases: set[str]) -> Node:
    # a diamond grows in both directions with its text: keep its lines short
    width = DECISION_WIDTH if stage.kind is StageKind.DECISION else TITLE_WIDTH
    return Node(
        id=stage.id,
        kind=_STAGE_NODE_KIND[stage.kind],
        title=wrap(stage.label, width),
        details=stage_details(stage),
        phase=stage.phase if stage.phase in phases else None,
        start=stage.start,
    )


def _extra_nodes(edges: list[Edge], known: set[str]) -> list[Node]:
    """Nodes for child processes and for stages named but not defined."""
    out: list[Node] = []
    seen = set(known)
    for e in edges:
        if e.target in seen:
            continue
        seen.add(e.target)
        if e.kind is EdgeKind.CHILD:
            title = wrap(e.target.removeprefix(PROCESS_PREFIX), TITLE_WIDTH)
            out.append(Node(e.target, NodeKind.PROCESS, title, ("child process",)))
        else:
            title = wrap(e.target, TITLE_WIDTH)
            out.append(Node(e.target, NodeKind.MISSING, title, ("not defined",)))
    return out


def _mark_node(node: Node, hl: Highlight, graph_edges: list[Edge]) -> Mark:
    if node.id == hl.current or node.id in hl.active:
        return Mark.CURRENT
    if node.id in hl.visited:
        return Mark.VISITED
    if node.kind is NodeKind.START and hl.visited:
        return Mark.VISITED
    if node.kind is NodeKind.PROCESS:
        parents = {e.source for e in graph_edges if e.target == node.id}
        if parents & hl.visited:
            return Mark.VISITED
    return Mark.FADED


def _mark_edge(edge: Edge, hl: Highlight) -> Mark:
    if edge.kind is EdgeKind.START:
        return Mark.VISITED if edge.target in hl.visited else Mark.FADED
    if edge.kind is EdgeKind.CHILD:
        return Mark.VISITED if edge.source in hl.visited else Mark.FADED
    return Mark.VISITED if (edge.source, edge.target) in hl.taken else Mark.FADED


def apply_highlight(graph: Graph, hl: Highlight) -> Graph:
    """The same graph with every node and edge marked for an instance."""
    edges = list(graph.edges)
    nodes = tuple(n._replace(mark=_mark_node(n, hl, edges)) for n in graph.nodes)
    marked = tuple(e._replace(mark=_mark_edge(e, hl)) for e in edges)
    return graph._replace(nodes=nodes, edges=marked, highlighted=True)


def extract(process: Process, highlight: Highlight | None = None) -> Graph:
    """The diagram IR of a process, optionally marked for an instance."""
    phases = {p.id for p in process.phases}
    nodes = [Node(START_ID, NodeKind.START, ("start",))]
    nodes += [_stage_node(s, phases) for s in process.stages]
    edges = [Edge(START_ID, s.id, EdgeKind.START) for s in process.start_stages]
    for s in process.stages:
        edges += _stage_edges(s)
    nodes += _extra_nodes(edges, {n.id for n in nodes})
    clusters = tuple(
        Cluster(p.id, wrap(p.name, TITLE_WIDTH * 2), tuple(n.id for n in nodes if n.phase == p.id))
        for p in process.phases
    )
    graph = Graph(
        id=process.id,
        title=wrap(process.name, TITLE_WIDTH * 3),
        nodes=tuple(nodes),
        edges=tuple(edges),
        clusters=tuple(c for c in clusters if c.nodes),
    )
    return apply_highlight(graph, highlight) if highlight is not None else graph


def _edge_key(e: Edge) -> tuple[str, ...]:
    """What identifies an edge between two versions: a result or a parallel
    branch by its source and name, a decision's branch by its source and
    target, the others by source and kind."""
    if e.kind in (EdgeKind.RESULT, EdgeKind.FORK):
        return (e.source, e.kind.value, e.via or (e.label[0] if e.label else ""))
    if e.kind is EdgeKind.BRANCH:
        return (e.source, e.kind.value, e.target)
    return (e.source, e.kind.value)


def _changed_nodes(old: Graph, new: Graph, changed: set[str]) -> list[Node]:
    before = {n.id for n in old.nodes}
    nodes: list[Node] = []
    for n in new.nodes:
        if n.kind is NodeKind.START:
            mark = Mark.NONE
        elif n.id not in before:
            mark = Mark.ADDED
        else:
            mark = Mark.CHANGED if n.id in changed else Mark.NONE
        nodes.append(n._replace(mark=mark))
    known = {n.id for n in new.nodes}
    phases = {c.id for c in new.clusters} | {n.phase for n in new.nodes if n.phase}
    nodes += [n._replace(mark=Mark.REMOVED, phase=n.phase if n.phase in phases else None)
              for n in old.nodes if n.id not in known]
    return nodes


def _changed_edges(old: Graph, new: Graph) -> list[Edge]:
    old_edges = {_edge_key(e): e for e in old.edges}
    new_edges = {_edge_key(e): e for e in new.edges}
    edges: list[Edge] = []
    for e in new.edges:
        o = old_edges.get(_edge_key(e))
        if o is None:
            mark = Mark.ADDED
        else:
            mark = Mark.CHANGED if (o.target, o.label) != (e.target, e.label) else Mark.NONE
        edges.append(e._replace(mark=mark))
    for key, o in old_edges.items():
        now = new_edges.get(key)
        if now is None or now.target != o.target:
            edges.append(o._replace(mark=Mark.REMOVED))
    return edges


def changes_graph(old: Graph, new: Graph, changed: set[str]) -> Graph:
    """``new`` drawn as a change from ``old``: stages and arrows it adds marked
    added, stages in ``changed`` and arrows that differ marked changed, and what
    it removes put back from ``old``, marked removed (in its phase, when the new
    version still has it)."""
    nodes = _changed_nodes(old, new, changed)
    edges = _changed_edges(old, new)
    before = {n.id: n for n in old.nodes}
    present = {n.id for n in nodes}
    for e in edges:  # a removed arrow to a child process no longer started
        for end in (e.source, e.target):
            found = before.get(end)
            if end not in present and found is not None:
                nodes.append(found._replace(mark=Mark.REMOVED))
                present.add(end)
    new_ids = [c.id for c in new.clusters]
    cluster_ids = new_ids + [c.id for c in old.clusters if c.id not in new_ids]
    labels = {c.id: c.label for c in (*old.clusters, *new.clusters)}
    clusters = [Cluster(cid, labels[cid], members) for cid in cluster_ids
                if (members := tuple(n.id for n in nodes if n.phase == cid))]
    return new._replace(nodes=tuple(nodes), edges=tuple(edges), clusters=tuple(clusters),
                        highlighted=True)

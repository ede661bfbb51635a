"""Diagrams: the graph IR, the DOT and Mermaid text, Graphviz and Mermaid for real.

Golden files: ``tests/golden/<process-id>.dot`` and ``.mmd`` hold the exact
output for every ``processes/*.yaml``. After an intended change, regenerate
them with ``UPDATE_GOLDEN=1 pytest tests/test_diagram.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flowctl.definition.build import build_process
from flowctl.diagram import (
    EdgeKind,
    Graph,
    GraphvizFailed,
    GraphvizNotFound,
    Highlight,
    Mark,
    Node,
    NodeKind,
    extract,
    render,
    render_process,
)
from flowctl.diagram.dot import html_escape, quote, render_dot
from flowctl.diagram.graphviz_run import layout
from flowctl.diagram.ir import Edge
from flowctl.diagram.mermaid import escape, render_mermaid
from flowctl.diagram.text import display_width, wrap
from flowctl.diagram.theme import FONT
from flowctl.model import Process

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
GOLDEN = Path(__file__).parent / "golden"
MERMAID_DIR = Path(__file__).parent / "mermaid"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAS_DOT, reason="Graphviz `dot` is not installed (sh scripts/install-system-deps.sh)"
)


def load_yaml_process(path: Path) -> Process:
    return build_process(YAML(typ="safe").load(path.read_text(encoding="utf-8")), source=str(path))


def process_from(text: str) -> Process:
    return build_process(YAML(typ="safe").load(textwrap.dedent(text)))


def example_files() -> list[Path]:
    out = []
    for path in sorted(PROCESSES.glob("*.yaml")):
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        if data.get("kind") == "process":
            out.append(path)
    return out


EXAMPLES = example_files()
EXAMPLE_IDS = [p.stem for p in EXAMPLES]


def example(process_id: str) -> Process:
    return load_yaml_process(PROCESSES / f"{process_id}.yaml")


# A process that tries every escaping problem at once: quotes, angle
# brackets, '#', pipes, brackets, backticks, Mermaid and DOT keywords as ids,
# non-Latin text.
HOSTILE = """\
kind: process
id: hostile
name: 'Quotes "double" & <b>tags</b> #hash | pipe [x] {y} (z) `tick` ; end'
phases:
  - id: end
    name: 'Phase "end" <&> #1 | [a]'
  - id: subgraph
    name: 客户 & Клиент
stages:
  - id: end
    kind: task
    start: true
    name: '"end" <script>alert(1)</script> #35; #quot;'
    phase: end
    assignee: {role: 'a"b'}
    results:
      'ok|"yes"': graph
      '-->': subgraph
  - id: graph
    kind: decision
    name: 'x --> y [z] | "w"'
    phase: subgraph
    branches:
      - when: 'record.note == "a|b" and record.n < 3 or record.m > 4 # not a comment'
        to: subgraph
    default: style
  - id: subgraph
    kind: end
    name: 'class default click style linkStyle'
    phase: subgraph
  - id: style
    kind: end
    name: '大客户备案 Возврат'
"""


# ---------------------------------------------------------------- text wrapping


def test_display_width_counts_wide_characters_double() -> None:
    assert display_width("abc") == 3
    assert display_width("大客户") == 6
    assert display_width("Клиент") == 6


def test_wrap_breaks_between_words_and_inside_long_words() -> None:
    assert wrap("approver: department-head of owner", 20) == (
        "approver:",
        "department-head of",
        "owner",
    )
    assert wrap("  many   spaces\nand lines ", 40) == ("many spaces and lines",)
    assert wrap("", 10) == ()
    # CJK text has no spaces: cut between characters by display width
    assert wrap("大客户备案审批流程", 8) == ("大客户备", "案审批流", "程")


# ---------------------------------------------------------------- the IR


def test_ir_of_key_account_filing_approval() -> None:
    g = extract(example("key-account-filing-approval"))
    assert g.id == "key-account-filing-approval"
    assert g.title == ("大客户备案审批流程 (Key Account Filing Approval)",)
    assert [(n.id, n.kind, n.title, n.details, n.phase, n.start) for n in g.nodes] == [
        ("(start)", NodeKind.START, ("start",), (), None, False),
        ("edit-customer", NodeKind.TASK, ("Edit customer info",),
         ("by initiator", "requires: level"), "info", True),
        ("check-level", NodeKind.DECISION, ("Check customer", "level"), (), "info", False),
        ("level-approval", NodeKind.APPROVAL, ("Level approval",),
         ("approver: department-head of owner", "SLA 24h"), "review", False),
        ("change-owner", NodeKind.TASK, ("Change owner",),
         ("by department-head of owner", "requires: owner"), "handover", False),
        ("end", NodeKind.END, ("Done",), (), None, False),
    ]  # fmt: skip
    assert [(e.source, e.target, e.kind, e.label) for e in g.edges] == [
        ("(start)", "edit-customer", EdgeKind.START, ()),
        ("edit-customer", "check-level", EdgeKind.RESULT, ("done",)),
        ("check-level", "level-approval", EdgeKind.BRANCH, ('record.level == "key"',)),
        ("check-level", "end", EdgeKind.DEFAULT, ("else",)),
        ("level-approval", "change-owner", EdgeKind.RESULT, ("approve",)),
        ("level-approval", "edit-customer", EdgeKind.RESULT, ("reject",)),
        ("change-owner", "end", EdgeKind.RESULT, ("done",)),
    ]
    assert [(c.id, c.label, c.nodes) for c in g.clusters] == [
        ("info", ("客户信息补充 Customer info",), ("edit-customer", "check-level")),
        ("review", ("客户审批 Review",), ("level-approval",)),
        ("handover", ("变更负责人 Handover",), ("change-owner",)),
    ]
    assert [n.id for n in g.loose_nodes] == ["(start)", "end"]
    assert not g.highlighted
    assert all(n.mark is Mark.NONE for n in g.nodes)


def test_ir_of_contract_approval_shows_countersign_sla_and_conditions() -> None:
    g = extract(example("contract-approval"))
    signature = g.node("executive-signature")
    assert signature is not None
    assert signature.kind is NodeKind.APPROVAL
    assert signature.details == (
        "countersign: role general-manager",
        "+ head of finance",
        "SLA 5d",
        "after 2d: remind",
        "after 5d: auto result reject",
    )
    manager = g.node("manager-review")
    assert manager is not None
    assert manager.details == (
        "approver: role sales-manager",
        "SLA 48h (business hours)",
        "after 24h: remind",
        "after 48h: reassign to manager of assignee",
    )
    forks = [(e.source, e.target, e.kind, e.label) for e in g.edges if e.source == "reviews"]
    assert forks == [
        ("reviews", "finance-review", EdgeKind.FORK,
         ("Finance review", "when record.credit_score <", "70")),
        ("reviews", "legal-review", EdgeKind.FORK,
         ("Legal review", "when record.term_months >", "12")),
        ("reviews", "executive-signature", EdgeKind.FORK,
         ("General manager's", "countersignature", "when record.amount >", "100000")),
    ]
    bars = [(n.id, n.kind, n.details) for n in g.nodes if n.id in ("reviews", "reviews-done")]
    assert bars == [
        ("reviews", NodeKind.FORK, ()),
        ("reviews-done", NodeKind.JOIN,
         ("waits for all branches", "an end in a branch cancels the others")),
    ]
    auto = [e.label for e in g.edges
            if e.source == "executive-signature" and e.target == "rejected"]
    assert auto == [("reject", "requires rejection_reason", "(auto after 5d)")]
    assert [c.id for c in g.clusters] == ["submission", "review"]
    assert [n.id for n in g.loose_nodes] == ["(start)", "approved", "rejected", "withdrawn"]
    approved = g.node("approved")
    assert approved is not None
    assert approved.details == ("outcome: approved",)


def test_ir_of_lost_customer_recovery_shows_wait_and_child_process() -> None:
    g = extract(example("lost-customer-recovery"))
    pause, delivery, child = g.node("pause"), g.node("delivery"), g.node("process:goods-delivery")
    assert pause is not None
    assert delivery is not None
    assert child is not None
    assert (pause.kind, pause.details) == (NodeKind.WAIT, ("waits 30d",))
    assert (delivery.kind, delivery.details) == (
        NodeKind.SUBPROCESS,
        ("starts goods-delivery", "does not wait for it"),
    )
    assert (child.kind, child.title, child.details, child.phase) == (
        NodeKind.PROCESS,
        ("goods-delivery",),
        ("child process",),
        None,
    )
    assert [(e.source, e.target, e.kind, e.label) for e in g.edges if e.source == "delivery"] == [
        ("delivery", "won", EdgeKind.NEXT, ()),
        ("delivery", "process:goods-delivery", EdgeKind.CHILD, ("starts",)),
    ]
    unpaid = [e.label for e in g.edges if e.source == "await-payment" and e.target == "lost"]
    assert unpaid == [("unpaid", "(auto after 7d)")]
    call = g.node("call-customer")
    assert call is not None
    assert call.details[-1] == "after 3d: notify department-head of owner"


def test_ir_of_goods_delivery_wait_until_a_field() -> None:
    g = extract(example("goods-delivery"))
    wait = g.node("wait-ship-date")
    assert wait is not None
    assert wait.details == ("waits until record.ship_date",)
    ship = g.node("ship")
    assert ship is not None
    assert ship.details[-1] == "after 1d: reassign to head of logistics"


def test_subprocess_that_waits_says_so() -> None:
    p = process_from(
        """
        kind: process
        id: parent
        name: Parent
        stages:
          - {id: a, kind: subprocess, start: true, process: child, results: {done: z}}
          - {id: z, kind: end}
        """
    )
    a = extract(p).node("a")
    assert a is not None
    assert a.details == ("starts child", "waits for it to end")


def test_clusters_follow_declared_phase_order_and_skip_empty_or_unknown_phases() -> None:
    p = process_from(
        """
        kind: process
        id: order
        name: Order
        phases:
          - {id: first, name: First}
          - {id: empty, name: Nobody here}
          - {id: second, name: Second}
        stages:
          - {id: b, kind: task, phase: second, results: {done: a}}
          - {id: a, kind: task, start: true, phase: first, results: {done: c}}
          - {id: c, kind: task, phase: undeclared, results: {done: b}}
        """
    )
    g = extract(p)
    assert [(c.id, c.nodes) for c in g.clusters] == [("first", ("a",)), ("second", ("b",))]
    c = g.node("c")
    assert c is not None
    assert c.phase is None
    assert [n.id for n in g.loose_nodes] == ["(start)", "c"]


def test_undefined_target_becomes_a_missing_node() -> None:
    p = process_from(
        """
        kind: process
        id: broken
        name: Broken
        stages:
          - {id: a, kind: task, start: true, results: {done: nowhere}}
        """
    )
    g = extract(p)
    missing = g.node("nowhere")
    assert missing is not None
    assert (missing.kind, missing.details) == (NodeKind.MISSING, ("not defined",))
    assert 'shape="box", style="filled,dashed"' in render_dot(g)


def test_approval_policies_read_naturally() -> None:
    p = process_from(
        """
        kind: process
        id: approvals
        name: Approvals
        stages:
          - id: any
            kind: approval
            start: true
            approvers: [{role: a}, {user: b}]
            policy: any
            results: {approve: all}
          - id: all
            kind: approval
            approvers: [{department: finance}, initiator]
            policy: all
            results: {approve: z}
          - {id: z, kind: end}
        """
    )
    g = extract(p)
    any_, all_ = g.node("any"), g.node("all")
    assert any_ is not None
    assert all_ is not None
    assert any_.details == ("any of: role a", "or user b")
    assert all_.details == ("countersign: head of finance", "+ initiator")


# ---------------------------------------------------------------- highlight


def test_highlight_from_path() -> None:
    hl = Highlight.from_path(["a", "b", "a", "c"])
    assert hl.current == "c"
    assert hl.visited == frozenset({"a", "b", "c"})
    assert hl.taken == frozenset({("a", "b"), ("b", "a"), ("a", "c")})
    done = Highlight.from_path(["a", "b"], finished=True)
    assert done.current is None
    assert done.visited == frozenset({"a", "b"})
    assert Highlight.from_path([]) == Highlight()


def test_highlight_marks_nodes_and_edges() -> None:
    path = ["edit-customer", "check-level", "level-approval"]
    g = extract(example("key-account-filing-approval"), Highlight.from_path(path))
    assert g.highlighted
    assert {n.id: n.mark for n in g.nodes} == {
        "(start)": Mark.VISITED,
        "edit-customer": Mark.VISITED,
        "check-level": Mark.VISITED,
        "level-approval": Mark.CURRENT,
        "change-owner": Mark.FADED,
        "end": Mark.FADED,
    }
    taken = [(e.source, e.target) for e in g.edges if e.mark is Mark.VISITED]
    assert taken == [
        ("(start)", "edit-customer"),
        ("edit-customer", "check-level"),
        ("check-level", "level-approval"),
    ]
    dot = render_dot(g)
    assert '"level-approval" [label=' in dot
    assert 'color="#D32F2F", ' in dot
    mermaid = render_mermaid(g)
    assert "    class s_level_approval m_current\n" in mermaid
    assert "    linkStyle 0,1,2 stroke:#263238,stroke-width:3px\n" in mermaid
    assert "    linkStyle 3,4,5,6 stroke:#CFD8DC\n" in mermaid


def test_highlight_marks_the_child_process_once_its_stage_is_entered() -> None:
    path = ["call-customer", "record-reason", "prepare-offer", "await-payment", "delivery", "won"]
    g = extract(example("lost-customer-recovery"), Highlight.from_path(path, finished=True))
    marks = {n.id: n.mark for n in g.nodes}
    assert marks["process:goods-delivery"] is Mark.VISITED
    assert marks["won"] is Mark.VISITED
    assert marks["pause"] is Mark.FADED
    child = [e for e in g.edges if e.kind is EdgeKind.CHILD]
    assert [e.mark for e in child] == [Mark.VISITED]


# ---------------------------------------------------------------- DOT text


def test_dot_quoting_and_html_escaping() -> None:
    assert quote('a "b" \\N') == '"a \\"b\\" \\\\N"'
    assert html_escape('<b> & "x"') == "&lt;b&gt; &amp; &quot;x&quot;"


def test_dot_shapes_per_kind() -> None:
    dot = render_dot(extract(example("lost-customer-recovery")))
    lines = {
        line.split(" [", 1)[0].strip(): line for line in dot.splitlines() if " [label=" in line
    }
    assert 'shape="circle", style="filled"' in lines['"(start)"']
    assert 'shape="box", style="rounded,filled"' in lines['"call-customer"']
    assert 'shape="note"' in lines['"pause"']
    assert 'shape="component"' in lines['"delivery"']
    assert 'shape="box", style="rounded,filled,bold", penwidth="2.5"' in lines['"won"']
    assert 'shape="folder", style="filled,dashed"' in lines['"process:goods-delivery"']
    contract = render_dot(extract(example("contract-approval")))
    assert 'shape="box", style="filled", peripheries="2"' in contract
    bar = ('label="", xlabel=<<B>Every review done</B><BR/><FONT POINT-SIZE="9"'
           ' COLOR="#455A64">waits for all branches</FONT><BR/><FONT POINT-SIZE="9"'
           ' COLOR="#455A64">an end in a branch cancels the others</FONT>>, shape="box",'
           ' style="filled", height="0.08", width="2.2", fixedsize="true"')
    assert f'"reviews-done" [{bar}' in contract
    assert ('"reviews" -> "legal-review" [label=<Legal review<BR/>when record.term_months'
            ' &gt;<BR/>12>, penwidth="1.6"];') in contract
    key = render_dot(extract(example("key-account-filing-approval")))
    assert 'shape="diamond"' in key


def test_dot_escapes_hostile_labels() -> None:
    dot = render_dot(extract(process_from(HOSTILE)))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dot
    assert "<script>" not in dot
    assert '"end" -> "graph" [label=<ok|&quot;yes&quot;>];' in dot
    assert 'subgraph "cluster_end" {' in dot


# ---------------------------------------------------------------- Mermaid text


def test_mermaid_escape_uses_entity_codes() -> None:
    assert escape('a "b" <c> #d | e & `f`') == (
        "a #quot;b#quot; #lt;c#gt; #35;d #124; e #amp; #96;f#96;"
    )
    assert escape("#quot;") == "#35;quot;"  # a literal entity code stays literal
    assert escape("大客户 Клиент [x] {y} (z)") == "大客户 Клиент [x] {y} (z)"


def test_mermaid_ids_are_prefixed_and_unique() -> None:
    nodes = (
        Node("(start)", NodeKind.START, ("start",)),
        Node("a-b", NodeKind.TASK, ("one",)),
        Node("a_b", NodeKind.TASK, ("two",)),
        Node("a.b", NodeKind.TASK, ("three",)),
        Node("end", NodeKind.END, ("end",)),
    )
    edges = (Edge("a-b", "a_b", EdgeKind.RESULT), Edge("a.b", "end", EdgeKind.RESULT))
    text = render_mermaid(Graph("g", ("G",), nodes, edges, ()))
    assert '    s_a_b("<b>one</b>")\n' in text
    assert '    s_a_b_2("<b>two</b>")\n' in text
    assert '    s_a_b_3("<b>three</b>")\n' in text
    assert "    s_a_b --> s_a_b_2\n" in text
    assert "    s_a_b_3 --> s_end\n" in text


def test_mermaid_of_key_account_filing_approval() -> None:
    text = render_mermaid(extract(example("key-account-filing-approval")))
    assert text.startswith(
        "---\n"
        'title: "大客户备案审批流程 (Key Account Filing Approval) (key-account-filing-approval)"\n'
        "---\n"
        "flowchart TD\n"
        '    start_((" "))\n'
        '    subgraph ph_info["客户信息补充 Customer info"]\n'
        '        s_edit_customer("<b>Edit customer info</b><br>by initiator<br>requires: level")\n'
    )
    assert '    s_check_level -->|"record.level == #quot;key#quot;"| s_level_approval\n' in text
    assert '    s_check_level -.->|"else"| s_end\n' in text
    assert "    class s_end k_end\n" in text


# ---------------------------------------------------------------- determinism and golden files


@pytest.mark.parametrize("process_id", EXAMPLE_IDS)
def test_golden_dot_and_mermaid(process_id: str) -> None:
    g = extract(example(process_id))
    for suffix, text in ((".dot", render_dot(g)), (".mmd", render_mermaid(g))):
        golden = GOLDEN / f"{process_id}{suffix}"
        if UPDATE:
            GOLDEN.mkdir(exist_ok=True)
            golden.write_bytes(text.encode("utf-8"))
        assert golden.exists(), f"{golden} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
        assert text == golden.read_bytes().decode("utf-8"), (
            f"{golden.name} differs from the renderer's output; if the change is intended, "
            "regenerate with UPDATE_GOLDEN=1 and review the diff"
        )


def test_no_stale_golden_files() -> None:
    expected = {f"{i}{s}" for i in EXAMPLE_IDS for s in (".dot", ".mmd")}
    assert {p.name for p in GOLDEN.iterdir()} == expected


def test_output_is_identical_across_hash_seeds() -> None:
    """No set or dict order leaks into the text: two interpreters with
    different hash seeds give byte-identical DOT and Mermaid."""
    code = textwrap.dedent(
        """
        import sys
        from ruamel.yaml import YAML
        from flowctl.definition.build import build_process
        from flowctl.diagram import Highlight, extract
        from flowctl.diagram.dot import render_dot
        from flowctl.diagram.mermaid import render_mermaid
        for path in sys.argv[1:]:
            p = build_process(YAML(typ="safe").load(open(path, encoding="utf-8")))
            hl = Highlight.from_path([s.id for s in p.stages[:3]])
            for g in (extract(p), extract(p, hl)):
                sys.stdout.write(render_dot(g) + render_mermaid(g))
        """
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code, *map(str, EXAMPLES)],
            capture_output=True,
            env=env,
            check=True,
            cwd=ROOT,
        )
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 10_000


# ---------------------------------------------------------------- Graphviz for real


@needs_dot
@pytest.mark.parametrize("process_id", EXAMPLE_IDS)
def test_svg_through_dot(process_id: str) -> None:
    p = example(process_id)
    svg = render_process(p, "svg")
    assert isinstance(svg, str)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert p.name in texts  # the title, non-Latin text intact
    for stage in p.stages:
        assert stage.label in " ".join(texts)
    groups = root.iter("{http://www.w3.org/2000/svg}g")
    clusters = [g for g in groups if g.get("class") == "cluster"]
    assert len(clusters) == len(extract(p).clusters)
    assert render_process(p, "svg") == svg  # deterministic


@needs_dot
@pytest.mark.parametrize("process_id", EXAMPLE_IDS)
def test_png_through_dot(process_id: str) -> None:
    png = render_process(example(process_id), "png")
    assert isinstance(png, bytes)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 300 < width < 3000
    assert 300 < height < 4000


@needs_dot
def test_png_with_highlight() -> None:
    hl = Highlight.from_path(["edit-customer", "check-level"])
    png = render_process(example("key-account-filing-approval"), "png", hl)
    assert isinstance(png, bytes)
    assert png[:4] == b"\x89PNG"


def test_named_font_has_cjk_and_cyrillic_glyphs() -> None:
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig (fc-list) is not installed")
    family = FONT.split(",")[0]
    for lang in ("zh", "ru"):
        out = subprocess.run(
            ["fc-list", f":family={family}:lang={lang}", "family"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert family in out, (
            f"font {family!r} with {lang} glyphs is missing: sh scripts/install-system-deps.sh"
        )


@needs_dot
def test_graphviz_error_is_reported() -> None:
    with pytest.raises(GraphvizFailed, match=r"Graphviz `dot` failed \(exit 1\): .*syntax error"):
        layout("digraph {", "svg")


def _fake_bin(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


@needs_dot
def test_slow_dot_falls_back_to_a_quicker_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_dot, sleep = shutil.which("dot"), shutil.which("sleep")
    # a `dot` that hangs unless given the quick settings
    _fake_bin(
        tmp_path,
        "dot",
        f'case "$*" in *-Gnslimit=1*) exec {real_dot} "$@";; esac\nexec {sleep} 30\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = render(example("goods-delivery"), "svg", timeout=0.5)
    assert result.note == (
        "dot took longer than 0.5 s, so the diagram was drawn again with straight edges "
        "and a quicker layout"
    )
    assert isinstance(result.content, str)
    assert "<svg" in result.content


def test_hopelessly_slow_graphviz_gives_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleep = shutil.which("sleep")
    for name in ("dot", "sfdp"):
        _fake_bin(tmp_path, name, f"exec {sleep} 30\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizFailed, match="within 0.3 s, even with quicker settings"):
        render(example("goods-delivery"), "png", timeout=0.3)


def test_missing_dot_is_one_clear_error_and_text_formats_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no Graphviz
    p = example("goods-delivery")
    for fmt in ("svg", "png"):
        with pytest.raises(GraphvizNotFound) as info:
            render_process(p, fmt)
        assert info.value.exit_code == 2
        assert info.value.hint is None
        assert info.value.message.startswith(
            f"cannot draw {fmt}: Graphviz's `dot` command is not installed; "
            "install Graphviz with `sh scripts/install-system-deps.sh`"
        )
        assert "\n" not in info.value.message
    assert render_process(p, "dot") == (GOLDEN / "goods-delivery.dot").read_text("utf-8")
    assert render_process(p, "mermaid") == (GOLDEN / "goods-delivery.mmd").read_text("utf-8")


# ---------------------------------------------------------------- Mermaid for real


@pytest.fixture(scope="session")
def mermaid_parser() -> Path:
    """tests/mermaid with its pinned packages installed (``npm ci``)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to parse Mermaid with the real library")
    marker = MERMAID_DIR / "node_modules" / ".package-lock.json"
    lock = MERMAID_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=MERMAID_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"`npm ci` in {MERMAID_DIR} failed:\n{proc.stderr[-2000:]}")
    return MERMAID_DIR / "parse.mjs"


def parse_mermaid(script: Path, files: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["node", str(script), *map(str, files)], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_every_mermaid_output_parses_with_mermaid(mermaid_parser: Path, tmp_path: Path) -> None:
    graphs: dict[str, Graph] = {}
    for pid in EXAMPLE_IDS:
        p = example(pid)
        graphs[pid] = extract(p)
        graphs[pid + "-highlighted"] = extract(p, Highlight.from_path([s.id for s in p.stages[:3]]))
    graphs["hostile"] = extract(process_from(HOSTILE))
    files = []
    for name, g in graphs.items():
        path = tmp_path / f"{name}.mmd"
        path.write_text(render_mermaid(g), encoding="utf-8")
        files.append(path)
    code, results = parse_mermaid(mermaid_parser, files)
    assert [r["ok"] for r in results] == [True] * len(files), results
    assert code == 0
    for result, g in zip(results, graphs.values(), strict=True):
        assert result["type"] == "flowchart-v2"
        assert result["nodes"] == len(g.nodes)
        assert result["edges"] == len(g.edges)
        assert [s[2] for s in result["subgraphs"]] == [len(c.nodes) for c in g.clusters]
    hostile = results[-1]
    assert [s[0] for s in hostile["subgraphs"]] == ["ph_end", "ph_subgraph"]


BAD_MERMAID = {
    "keyword-id": "flowchart TD\n    a --> end\n",  # `end` as a bare node id
    "pipe-in-label": "flowchart TD\n    a -->|a|b| c\n",  # an unescaped `|` in an edge label
    "parens-unquoted": "flowchart TD\n    a(x (y) z) --> b\n",  # brackets in an unquoted label
}


def test_mermaid_parser_rejects_bad_mermaid(mermaid_parser: Path, tmp_path: Path) -> None:
    """The check can fail: each known-bad text is reported as a parse error."""
    good = tmp_path / "good.mmd"
    good.write_text('flowchart TD\n    s_a["x #quot;y#quot; (z)"] --> s_end\n', encoding="utf-8")
    files = [good]
    for name, text in BAD_MERMAID.items():
        files.append(tmp_path / f"{name}.mmd")
        files[-1].write_text(text, encoding="utf-8")
    code, results = parse_mermaid(mermaid_parser, files)
    assert code == 1
    assert [r["ok"] for r in results] == [True, False, False, False]
    for r in results[1:]:
        assert r["error"].startswith("Parse error on line 2:"), r


def test_docs_example_is_the_real_output() -> None:
    """docs/diagrams.md shows the key-account Mermaid exactly as rendered."""
    docs = (ROOT / "docs" / "diagrams.md").read_text(encoding="utf-8")
    block = docs.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == render_mermaid(extract(example("key-account-filing-approval")))

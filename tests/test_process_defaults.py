"""A process-level ``defaults.sla`` that task and approval stages inherit and
may override key by key (docs/format.md, "Process defaults"); the example of
the docs is linted and run as written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clirun import invoke
from ruamel.yaml import YAML

from flowctl import api, engine
from flowctl.api.definitions import load_org
from flowctl.definition.build import build_process
from flowctl.engine import Advance, Context, Instance, Start
from flowctl.model import Process

ROOT = Path(__file__).resolve().parent.parent
FORMAT = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
ORG = load_org(processes_dir=str(ROOT / "processes"))
ORG_FILE = str(ROOT / "processes" / "org.yaml")
MONDAY = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # UTC calendar: 09:00-17:00


def _doc_yaml() -> str:
    start = FORMAT.index("## Process defaults\n")
    section = FORMAT[start:FORMAT.index("\n## ", start + 4)]
    block: str = re.findall(r"```yaml\n(.*?)```", section, re.S)[0]
    return block


HEAD = "kind: process\nid: purchase\nname: Purchase\n"
TEXT = HEAD + _doc_yaml().replace("    kind: approval\n", "    kind: approval\n    start: true\n",
                                  1)


def _process(text: str = TEXT) -> Process:
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return build_process(data)


def _lint(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "purchase.yaml"
    path.write_text(text, encoding="utf-8")
    return [d.format().replace(str(path), "p.yaml")
            for d in api.lint_paths([str(path)], org=ORG_FILE).diagnostics]


def _timers(inst: Instance) -> list[tuple[str, int, str]]:
    return [(t.kind, t.index, t.at) for t in inst.timers]


def test_the_docs_example_lints_clean(tmp_path: Path) -> None:
    assert _lint(tmp_path, TEXT) == []


def test_stages_inherit_the_default_and_override_it_key_by_key() -> None:
    proc = _process()
    review, legal, archive = (proc.stage(s) for s in ("manager-review", "legal-review",
                                                      "archive"))
    assert review is not None
    assert legal is not None
    assert archive is not None
    assert review.sla is not None
    assert legal.sla is not None
    assert (review.sla.within, review.sla.business_hours, len(review.sla.escalations),
            review.sla.inherited) == ("2bd", True, 2, ("within", "business_hours", "escalations"))
    assert (legal.sla.within, legal.sla.business_hours, len(legal.sla.escalations),
            legal.sla.inherited) == ("5bd", True, 2, ("business_hours", "escalations"))
    assert archive.sla is None
    # ends do not inherit
    assert [s.id for s in proc.stages if s.sla is not None] == ["manager-review", "legal-review"]


def test_the_engine_sets_timers_from_the_inherited_ladder() -> None:
    proc = _process()
    ctx = Context("bob", ORG, MONDAY)
    inst = engine.start(proc, Start({}), ctx, instance_id="p-1", digest="d" * 64).instance
    assert inst.stage == "manager-review"
    assert (inst.due_at, _timers(inst)) == ("2026-12-02T12:00:00Z", [
        ("due", 0, "2026-12-02T12:00:00Z"),
        ("escalation", 0, "2026-12-01T12:00:00Z"),
        ("escalation", 1, "2026-12-02T12:00:00Z"),
    ])
    # bob's manager is carol (head of sales)
    inst = engine.apply(proc, inst, Advance("approve"), Context("carol", ORG, MONDAY)).instance
    assert inst.stage == "legal-review"
    assert (inst.due_at, _timers(inst)) == ("2026-12-07T12:00:00Z", [
        ("due", 0, "2026-12-07T12:00:00Z"),
        ("escalation", 0, "2026-12-01T12:00:00Z"),
        ("escalation", 1, "2026-12-02T12:00:00Z"),
    ])


def test_sla_false_and_an_empty_ladder_turn_them_off() -> None:
    text = TEXT.replace("    sla:\n      within: 5bd\n",
                        "    sla:\n      within: 5bd\n      escalations: []\n")
    proc = _process(text)
    legal = proc.stage("legal-review")
    assert legal is not None
    assert legal.sla is not None
    assert legal.sla.escalations == ()
    text = TEXT.replace("    approvers: [{relation: manager, of: initiator}]\n",
                        "    approvers: [{relation: manager, of: initiator}]\n    sla: false\n")
    inst = engine.start(_process(text), Start({}), Context("bob", ORG, MONDAY),
                        instance_id="p-1", digest="d" * 64).instance
    assert (inst.due_at, inst.timers) == (None, ())


def test_lint_checks_the_default_once_and_against_each_stage(tmp_path: Path) -> None:
    text = TEXT.replace("      - after: 1bd\n        action: remind\n",
                        "      - after: 1d\n        action: result\n        result: decline\n")
    assert _lint(tmp_path, text) == [
        "p.yaml:11:16: FL252 '1d' on an SLA with business_hours: true counts 24 working hours"
        " (3 working days of 8 h) for its d and w, which are 24-hour days; for 1 working days"
        " write '1bd'",
        "p.yaml:13:17: FL217 escalation applies result 'decline', which stage 'legal-review'"
        " does not have; allowed: approve, reject",
        "p.yaml:13:17: FL217 escalation applies result 'decline', which stage 'manager-review'"
        " does not have; allowed: approve, reject",
    ]


def test_a_default_no_stage_inherits_is_refused(tmp_path: Path) -> None:
    text = TEXT.replace("    approvers: [{relation: manager, of: initiator}]\n",
                        "    approvers: [{relation: manager, of: initiator}]\n    sla: false\n")
    text = text.replace("    sla:\n      within: 5bd\n",
                        "    sla:\n      within: 5bd\n      business_hours: false\n"
                        "      escalations: []\n")
    assert _lint(tmp_path, text) == [
        "p.yaml:7:3: FL255 `defaults.sla` is inherited by no stage: every task and approval"
        " stage gives its whole own `sla` or `sla: false`; remove it, or leave `sla` out of the"
        " stages that should inherit it",
    ]


def test_sla_true_is_a_schema_error(tmp_path: Path) -> None:
    text = TEXT.replace("    sla: false\n", "    sla: true\n")
    assert _lint(tmp_path, text) == [
        "p.yaml:31:10: FL103 'sla' of task stage 'archive' must be one of: false (no SLA);"
        " {within, business_hours, escalations}; got boolean True"]


def test_cli_start_shows_the_inherited_due_time(tmp_path: Path) -> None:
    procs = tmp_path / "processes"
    procs.mkdir()
    (procs / "purchase.yaml").write_text(TEXT, encoding="utf-8")
    (procs / "org.yaml").write_text(Path(ORG_FILE).read_text(encoding="utf-8"),
                                    encoding="utf-8")
    env: dict[str, str | None] = {
        "FLOWCTL_DB": str(tmp_path / "flowctl.db"), "FLOWCTL_PROCESSES": str(procs),
        "FLOWCTL_NOW": "2026-11-30T12:00:00Z", "FLOWCTL_ORG": None, "FLOWCTL_USER": "bob",
        "FLOWCTL_DEBUG": None,
    }
    r = invoke(["start", "purchase"], env=env)
    assert r.exit_code == 0, r.stderr
    assert "due 2026-12-02T12:00:00Z" in r.stdout

"""Rules checked before a result: ``must_change`` and ``validate`` (docs/format.md,
"Rules checked before a result"). The command line runs the real entry point on
the example of the docs, built into a process; every refusal exits 1, names the
rule and the values, and writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl import api, engine
from flowctl.api.definitions import load_org
from flowctl.definition.build import build_process
from flowctl.engine import Advance, Context, RuleBroken, Start

ROOT = Path(__file__).resolve().parent.parent
FORMAT = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
NOW = "2026-11-23T09:00:00Z"


def _section(title: str) -> str:
    """The text of the docs/format.md section ``### title``, up to the next heading."""
    start = FORMAT.index(f"### {title}\n")
    end = re.compile(r"\n##+ ").search(FORMAT, start + 4)
    return FORMAT[start:end.start() if end else len(FORMAT)]


RULES_DOC = _section("Rules checked before a result")
YAML_BLOCKS: list[str] = re.findall(r"```yaml\n(.*?)```", RULES_DOC, re.S)
STAGE_YAML, RESULTS_YAML = YAML_BLOCKS
REFUSALS: list[str] = re.findall(r"```text\n(.*?)```", RULES_DOC, re.S)[0].splitlines()

HEAD = """\
kind: process
id: change-owner
name: Change owner
fields:
  owner:
    type: user
  discount:
    type: integer
  discount_reason:
    type: string
  keep_reason:
    type: string
stages:
"""
END = """\
  - id: end
    kind: end
"""


def _process_text(results: str | None = None) -> str:
    stage = STAGE_YAML.replace("    kind: task\n", "    kind: task\n    start: true\n", 1)
    if results is not None:
        stage = stage[: stage.index("    results:\n")] + results
    return HEAD + stage + END


class Cli:
    def __init__(self, tmp_path: Path, text: str) -> None:
        procs = tmp_path / "processes"
        procs.mkdir()
        (procs / "change-owner.yaml").write_text(text, encoding="utf-8")
        (procs / "org.yaml").write_text(
            (ROOT / "processes" / "org.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        self.db = tmp_path / "flowctl.db"
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": str(self.db), "FLOWCTL_PROCESSES": str(procs), "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None, "FLOWCTL_USER": None, "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, user: str, code: int = 0) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def journal(self, instance: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(
            self("journal", instance, "--json", user="grace").stdout)
        return entries


def test_the_docs_example_lints_clean(tmp_path: Path) -> None:
    for text in (_process_text(), _process_text(RESULTS_YAML)):
        path = tmp_path / "p.yaml"
        path.write_text(text, encoding="utf-8")
        result = api.lint_paths([str(path)], org=str(ROOT / "processes" / "org.yaml"))
        assert [d.format() for d in result.diagnostics] == []


def test_refusals_are_exactly_the_docs_and_write_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path, _process_text())
    cli("start", "change-owner", "--set", "owner=alice", "--set", "discount=30", user="alice")
    # alice's department head (carol) holds the stage
    before = cli.journal("change-owner-1")
    r = cli("advance", "change-owner-1", "-r", "done", user="carol", code=1)
    assert r.stderr.splitlines() == REFUSALS[:2]
    r = cli("advance", "change-owner-1", "-r", "done", "--set", "owner=bob", user="carol", code=1)
    assert r.stderr.splitlines() == REFUSALS[2:]
    assert r.stdout == ""
    assert cli.journal("change-owner-1") == before
    # setting it back to the value it had counts as unchanged
    r = cli("advance", "change-owner-1", "-r", "done", "--set", "owner=alice",
            "--set", "discount_reason=loyal customer", user="carol", code=1)
    assert "needs field 'owner' changed (must_change): it is still 'alice'" in r.stderr
    assert cli.journal("change-owner-1") == before
    cli("advance", "change-owner-1", "-r", "done", "--set", "owner=bob",
        "--set", "discount_reason=loyal customer", user="carol")
    tail = [(e["kind"], e["data"]) for e in cli.journal("change-owner-1")[len(before):]]
    assert tail[:2] == [
        ("field_changed", {"field": "owner", "from": "alice", "to": "bob"}),
        ("field_changed", {"field": "discount_reason", "from": None, "to": "loyal customer"}),
    ]
    assert [k for k, _ in tail[2:]] == ["result", "completed"]


def test_a_rule_on_the_stage_holds_every_result_and_on_a_result_only_it(
        tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # on the stage: keep needs the owner changed too
    cli = Cli(tmp_path / "a", _process_text())
    cli("start", "change-owner", "--set", "owner=alice", "--set", "discount=5", user="alice")
    r = cli("advance", "change-owner-1", "-r", "keep", "--set", "keep_reason=stays", user="carol",
            code=1)
    assert "result 'keep' at stage 'change-owner' needs field 'owner' changed" in r.stderr
    # moved to the result done: keep is free of it, done still needs it
    text = _process_text(RESULTS_YAML).replace("    must_change: [owner]\n", "", 1)
    cli = Cli(tmp_path / "b", text)
    cli("start", "change-owner", "--set", "owner=alice", "--set", "discount=5", user="alice")
    r = cli("advance", "change-owner-1", "-r", "done", user="carol", code=1)
    assert "result 'done' at stage 'change-owner' needs field 'owner' changed" in r.stderr
    cli("advance", "change-owner-1", "-r", "keep", user="carol")
    assert cli.journal("change-owner-1")[-1]["kind"] == "completed"


def test_an_undecidable_rule_refuses_and_says_why(tmp_path: Path) -> None:
    cli = Cli(tmp_path, _process_text())
    cli("start", "change-owner", "--set", "owner=alice", user="alice")
    r = cli("advance", "change-owner-1", "-r", "done", "--set", "owner=bob", user="carol",
            code=1)
    assert r.stderr.splitlines()[0].startswith(
        "flowctl: error: result 'done' at stage 'change-owner' is refused: a discount over"
        " 20 % needs a reason (rule `record.discount <= 20 or record.discount_reason != null`"
        " cannot be decided: ")
    assert r.stderr.splitlines()[0].endswith("; discount=empty, discount_reason=empty)")


def test_the_engine_reports_field_rule_and_value() -> None:
    proc = build_process(_plain(_process_text()))
    org = load_org(processes_dir=str(ROOT / "processes"))
    ctx = Context("alice", org, engine.parse_time(NOW))
    inst = engine.start(proc, Start({"owner": "alice", "discount": 30}), ctx,
                        instance_id="c-1", digest="d" * 64).instance
    assert inst.baseline == {"owner": "alice"}
    with pytest.raises(RuleBroken) as err:
        engine.apply(proc, inst, Advance("done", {}), Context("carol", org, ctx.now))
    assert (err.value.field, err.value.rule, err.value.value) == ("owner", "must_change", "alice")
    with pytest.raises(RuleBroken) as err:
        engine.apply(proc, inst, Advance("done", {"owner": "bob"}), Context("carol", org, ctx.now))
    assert err.value.rule == "record.discount <= 20 or record.discount_reason != null"
    assert err.value.value == {"discount": 30, "discount_reason": None}
    assert err.value.exit_code == 1


def _plain(text: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


def test_lint_checks_a_rule_condition_like_a_decision(tmp_path: Path) -> None:
    text = _process_text().replace(
        "record.discount <= 20 or record.discount_reason != null",
        'record.discont <= 20 or record.discount_reason > 3')
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    result = api.lint_paths([str(path)], org=str(ROOT / "processes" / "org.yaml"))
    got = [(d.line, d.col, d.code) for d in result.diagnostics]
    line = text.splitlines().index(
        "      - condition: record.discont <= 20 or record.discount_reason > 3") + 1
    assert got == [(line, 20, "FL303"), (line, 69, "FL304")]
    assert result.diagnostics[0].message.startswith("record.discont is not a field of this process")
    assert result.exit_code() == 1

"""Lint shows everything at once: the semantic rules run over the well-formed
part of a document that breaks the schema, and a duplicate process id is
reported beside the copy's own problems. What depends on a broken part is
not judged (no false alarms from a typo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowctl import api

PROCESS = """kind: process
id: p
name: P
fields:
  amount:
    type: number
stages:
  - id: start
    kind: task
    start: true
    assignee: initiator
    results:
      done: check
  - id: check
    kind: decision
    branches:
      - when: record.amount > 10
        to: big
    default: finish
  - id: big
    kind: task
    assignee: initiator
    results:
      done: finish
  - id: orphan
    kind: task
    assignee: initiator
    results:
      done: finish
  - id: finish
    kind: end
"""


def lint(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch,
         name: str = "p.yaml") -> list[str]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCTL_ORG", raising=False)
    result = api.lint_paths([name], cache=False)
    return [d.format() for d in result.diagnostics if d.code != "FL404"]


def test_a_misspelt_key_and_an_unreachable_stage_in_one_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = PROCESS.replace("    assignee: initiator\n    results:\n      done: check",
                           "    asignee: initiator\n    results:\n      done: check")
    got = lint(tmp_path, text, monkeypatch)
    assert len(got) == 2
    assert got[0].startswith("p.yaml:11:5: FL101 unknown key 'asignee' in task stage 'start' "
                             "(did you mean 'assignee'?); allowed: ")
    assert got[1] == "p.yaml:25:9: FL205 stage 'orphan' cannot be reached from the start " \
                     "stage 'start'"


def test_the_same_with_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCTL_CACHE_DIR", str(tmp_path / "cache"))
    text = PROCESS.replace("    kind: end\n", "    kind: end\n    outcom: done\n")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # cold, then from the cache: the same
        got = [d.format() for d in api.lint_paths(["p.yaml"]).diagnostics if d.code != "FL404"]
        assert len(got) == 2
        assert got[0] == ("p.yaml:25:9: FL205 stage 'orphan' cannot be reached from the start "
                          "stage 'start'")
        assert got[1].startswith("p.yaml:32:5: FL101 unknown key 'outcom' in end stage 'finish' "
                                 "(did you mean 'outcome'?); allowed: ")


def test_a_misspelt_transition_key_does_not_make_stages_unreachable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `reslts` is where `start` leads: 'check' and 'big' are not unreachable
    text = PROCESS.replace("    results:\n      done: check", "    reslts:\n      done: check")
    got = lint(tmp_path, text, monkeypatch)
    assert [line.split(": ")[1].split()[0] for line in got] == ["FL102", "FL101", "FL205"]
    assert got[-1] == "p.yaml:25:9: FL205 stage 'orphan' cannot be reached from the start " \
                      "stage 'start'"


def test_a_broken_stage_keeps_its_id_and_the_rest_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 'big' is still a stage that 'check' leads to, and leads on to 'finish'
    text = PROCESS.replace("  - id: big\n    kind: task", "  - id: big\n    kind: tsk")
    assert lint(tmp_path, text, monkeypatch) == [
        "p.yaml:21:11: FL104 'kind' of stage 'big' must be one of task, approval, decision, "
        "wait, subprocess, parallel, join, end; got 'tsk' (did you mean 'task'?)",
        "p.yaml:25:9: FL205 stage 'orphan' cannot be reached from the start stage 'start'"]
    text = text.replace("default: finish", "default: fnish")
    assert lint(tmp_path, text, monkeypatch)[0] == (
        "p.yaml:19:14: FL204 stage 'check' leads to unknown stage 'fnish'; did you mean "
        "'finish'?")


def test_a_broken_field_withholds_what_depends_on_fields(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = PROCESS.replace("    type: number", "    type: nmber")
    got = lint(tmp_path, text, monkeypatch)
    codes = [line.split(": ")[1].split()[0] for line in got]
    # record.amount reads a field that was taken out: FL303 would be a false alarm
    assert codes == ["FL104", "FL205"]


def test_too_broken_to_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = lint(tmp_path, PROCESS.replace("stages:\n", "stagez:\n"), monkeypatch)
    assert [line.split(": ")[1].split()[0] for line in got] == ["FL102", "FL101"]


def test_a_duplicate_id_beside_the_copy_own_problems(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text(PROCESS, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(PROCESS.replace("default: finish", "default: fnish"),
                                     encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCTL_ORG", raising=False)
    got = [d.format() for d in api.lint_paths(["a.yaml", "b.yaml"], cache=False).diagnostics
           if d.code != "FL404"]
    assert got == [
        "a.yaml:25:9: FL205 stage 'orphan' cannot be reached from the start stage 'start'",
        "b.yaml:2:5: FL224 process id 'p' is also defined in a.yaml",
        "b.yaml:19:14: FL204 stage 'check' leads to unknown stage 'fnish'; did you mean "
        "'finish'?",
    ]


def test_org_references_of_the_well_formed_part(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown user in a well-formed stage is reported beside the schema error;
    one in the broken stage is not judged."""
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "org.yaml").write_text((root / "processes" / "org.yaml").read_text(
        encoding="utf-8"), encoding="utf-8")
    text = PROCESS.replace("    start: true\n    assignee: initiator\n",
                           "    start: true\n    assignee:\n      user: bobby\n")
    text = text.replace("  - id: big\n    kind: task\n    assignee: initiator\n",
                        "  - id: big\n    kind: tsk\n    assignee:\n      user: nobody\n")
    got = lint(tmp_path, text, monkeypatch)
    assert [line.split(": ")[1].split()[0] for line in got] == ["FL401", "FL104", "FL205"]
    assert got[0] == "p.yaml:12:13: FL401 user 'bobby' is not in the org directory; did you " \
                     "mean 'bob'?"

"""``flowctl test``: scenario files run in memory, their failures, lint and coverage."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clirun import invoke

from flowctl.api import scenarios

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled processes and scenarios in a workspace with the
    default identity policy ("login"): scenarios act as anyone all the same."""
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "flowctl.toml").write_text('processes = "processes"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write(folder: Path, name: str, text: str) -> str:
    path = folder / "scenarios" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return f"scenarios/{name}"


KEY = """\
kind: scenario
process: key-account-filing-approval
scenarios:
  - name: a key account goes to carol
    steps:
      - start: {as: alice, fields: {owner: alice}}
        expect: {stage: edit-customer}
      - act: {as: alice, result: done, fields: {level: key}}
        expect: {stage: end}
"""


def test_the_shipped_scenarios_pass_with_every_transition_covered(ws: Path) -> None:
    before = files_in(ws)
    result = invoke(["test", "--min-coverage", "100"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "coverage (stages, results and decision branches taken):" in lines
    for process in ("contract-approval", "deal-blueprint", "goods-delivery",
                    "key-account-filing-approval", "lost-customer-recovery"):
        assert any(line.split()[:2] == [process, "100.0%"] for line in lines), process
    assert "FAIL" not in result.stdout
    assert lines[-1].startswith("26 scenarios: 26 passed, 0 failed (5 files, ")
    assert files_in(ws) == before  # in memory: no store, nothing beside the files


def test_a_failure_names_the_step_line_expected_and_actual(ws: Path) -> None:
    path = write(ws, "key.yaml", KEY)
    result = invoke(["test", path])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:6] == [
        "scenarios/key.yaml",
        "  FAIL  a key account goes to carol",
        "        scenarios/key.yaml:8: step 2 (act as alice: done): unexpected stage",
        "          expected: end",
        "          actual:   level-approval",
        "",
    ]
    assert result.stdout.splitlines()[-1].startswith("1 scenario: 0 passed, 1 failed (1 file, ")


def test_expected_refusals_who_and_what_message(ws: Path) -> None:
    path = write(ws, "key.yaml", KEY.replace("""        expect: {stage: end}
""", """        expect: {stage: level-approval, assignee: carol}
      - act: {as: bob, result: approve}
        refused: {message: "only carol (head of sales) can approve", exit: 1}
      - act: {as: carol, result: approve}
        refused: "anything"
"""))
    result = invoke(["test", path])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[2:5] == [
        "        scenarios/key.yaml:12: step 4 (act as carol: approve): was not refused",
        "          expected: refused: 'anything'",
        "          actual:   done",
    ]


def test_a_refusal_with_another_message_fails(ws: Path) -> None:
    path = write(ws, "key.yaml", KEY.replace("""        expect: {stage: end}
""", """      - act: {as: bob, result: approve}
        refused: "you may not"
"""))
    result = invoke(["test", path])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[2:5] == [
        "        scenarios/key.yaml:9: step 3 (act as bob: approve): refused with another message",
        "          expected: a message containing 'you may not'",
        "          actual:   only carol (head of sales) can approve 'level-approval'",
    ]


def test_an_unexpected_refusal_fails_with_its_message(ws: Path) -> None:
    path = write(ws, "key.yaml", KEY.replace("result: done, fields: {level: key}",
                                             "result: done"))
    result = invoke(["test", path])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[2] == "        scenarios/key.yaml:8: step 2 (act as alice: done): was refused"
    assert lines[3].startswith("          actual:   ")
    assert "level" in lines[3]


def test_the_clock_fires_slas_and_escalations_as_tick_would(ws: Path) -> None:
    path = write(ws, "sla.yaml", """\
kind: scenario
process: goods-delivery
clock: "2026-01-05T09:00:00Z"
scenarios:
  - name: an unshipped order is reassigned after a day
    steps:
      - start:
          as: oleg
          fields: {order_ref: SO-2, address: Kazan, carrier: post, ship_date: "2026-01-05"}
      - act: {as: oleg, result: done}
      - after: 1m
        expect: {stage: ship, assignee: "role:logistics", due: "2026-01-06T09:01:00Z"}
      - after: 23h
        expect: {assignee: "role:logistics"}
      - after: 1h
        expect:
          assignee: oleg
          journal:
            - {kind: escalation, stage: ship, actor: flowctl}
""")
    result = invoke(["test", path])
    assert result.exit_code == 0, result.stdout


def test_notifications_and_field_values_are_checked(ws: Path) -> None:
    path = write(ws, "n.yaml", """\
kind: scenario
process: lost-customer-recovery
clock: "2026-01-05T09:00:00Z"
scenarios:
  - name: the owner is reminded
    steps:
      - start: {as: bob, fields: {customer: Globex, owner: bob}}
      - after: 49h
        expect:
          fields: {customer: Globex}
          notifications:
            - {to: carol}
""")
    result = invoke(["test", path])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[2] == "        scenarios/n.yaml:8: step 2 (after 49h): no such notification"
    assert lines[3] == "          expected: to=carol"
    assert lines[4].startswith("          actual:   [bob ")


def test_scenario_files_are_linted_before_anything_runs(ws: Path) -> None:
    path = write(ws, "bad.yaml", """\
kind: scenario
process: contract-approval
scenarios:
  - name: names what does not exist
    steps:
      - start: {as: alise, fields: {amout: 5}}
      - act: {as: alice, result: aprove}
        expect: {stage: manager-reviw}
""")
    result = invoke(["test", path])
    assert result.exit_code == 1
    located = [line for line in result.stdout.splitlines() if line.startswith(path)]
    assert located == [
        f"{path}:6:21: SC002 unknown user 'alise' (did you mean 'alice'?): not in the org "
        "directory processes/org.yaml",
        f"{path}:6:37: SC006 process 'contract-approval' has no field 'amout' (did you mean "
        "'amount'?); its fields: amount, credit_score, customer, rejection_reason, term_months",
        f"{path}:7:34: SC004 no stage of process 'contract-approval' has the result 'aprove' "
        "(did you mean 'approve'?); its results: approve, reject, submit, withdraw",
        f"{path}:8:25: SC005 process 'contract-approval' has no stage 'manager-reviw' (did you "
        "mean 'manager-review'?); its stages: approved, executive-signature, finance-review, "
        "legal-review, manager-review, rejected, reviews, reviews-done, submit, withdrawn",
    ]
    assert "PASS" not in result.stdout
    assert "FAIL" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "0 scenarios: 0 passed, 0 failed; 4 problems in scenario files (not run) (1 file, ")


def test_a_misspelt_key_is_located_by_the_schema(ws: Path) -> None:
    path = write(ws, "bad.yaml", KEY.replace("    steps:", "    stepz:"))
    result = invoke(["test", path])
    assert result.exit_code == 1
    assert f"{path}:5:5: FL101 unknown key 'stepz' in 'scenarios[0]' (did you mean " \
        "'steps'?); allowed: name, clock, steps" in result.stdout


def test_an_unknown_process_is_named(ws: Path) -> None:
    path = write(ws, "bad.yaml", KEY.replace("process: key-account-filing-approval",
                                             "process: key-account"))
    result = invoke(["test", path])
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}:2:10: SC001 no process 'key-account' in processes/")


def test_a_process_that_does_not_lint_is_refused_for_its_scenarios(ws: Path) -> None:
    broken = (ws / "processes" / "key-account-filing-approval.yaml")
    broken.write_text(broken.read_text("utf-8").replace("default: end", "default: ending"),
                      encoding="utf-8")
    path = write(ws, "key.yaml", KEY)
    result = invoke(["test", path])
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}:2:10: SC001 process 'key-account-filing-approval' does not "
                            "lint clean, so its scenarios cannot run: ")


def test_min_coverage_fails_the_run_below_it(ws: Path) -> None:
    path = write(ws, "key.yaml", KEY.replace("expect: {stage: end}",
                                             "expect: {stage: level-approval}"))
    result = invoke(["test", path, "--min-coverage", "50"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert ("  key-account-filing-approval   45.5%  stages 3/5, results 1/4, branches 1/2"
            "  below --min-coverage") in lines
    assert "      not taken: result level-approval: approve" in lines
    assert "      not taken: branch check-level: default" in lines
    assert "coverage below 50% in key-account-filing-approval" in lines[-1]
    assert invoke(["test", path, "--min-coverage", "30"]).exit_code == 0
    bad = invoke(["test", path, "--min-coverage", "120"])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("flowctl: error: --min-coverage 120 is not a percentage")


def test_junit_report_for_ci(ws: Path) -> None:
    write(ws, "key.yaml", KEY)
    result = invoke(["test", "--format", "junit", "-o", "report.xml"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("27 scenarios: 26 passed, 1 failed (6 files, ")
    root = ET.parse(ws / "report.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("27", "1", "0")
    props = {p.get("name"): p.get("value") for p in root.findall("./properties/property")}
    assert props["coverage.contract-approval"] == "100.0"
    failures = root.findall(".//failure")
    assert len(failures) == 1
    case = root.find(".//testcase[failure]")
    assert case is not None
    assert (case.get("name"), case.get("classname"), case.get("file"), case.get("line")) == (
        "a key account goes to carol", "key-account-filing-approval", "scenarios/key.yaml", "4")
    assert failures[0].get("message") == (
        "scenarios/key.yaml:8: step 2 (act as alice: done): unexpected stage")
    assert "expected: end" in (failures[0].text or "")


def test_junit_reports_a_broken_file_as_an_error(ws: Path) -> None:
    path = write(ws, "bad.yaml", KEY.replace("as: alice, fields", "as: alise, fields"))
    result = invoke(["test", path, "--format", "junit"])
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    error = root.find(".//error")
    assert error is not None
    assert error.get("type") == "SC002"


def test_json_report(ws: Path) -> None:
    write(ws, "key.yaml", KEY)
    result = invoke(["test", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert data["summary"]["scenarios"] == 27
    assert data["summary"]["failed"] == 1
    failed = [s for s in data["scenarios"] if not s["passed"]]
    assert failed == [{
        "file": "scenarios/key.yaml", "line": 4, "process": "key-account-filing-approval",
        "name": "a key account goes to carol", "passed": False,
        "seconds": failed[0]["seconds"], "steps": 2,
        "failure": {"line": 8, "step": 2, "action": "act as alice: done",
                    "message": "unexpected stage", "expected": "end",
                    "actual": "level-approval"},
    }]
    cov = {c["process"]: c for c in data["coverage"]}
    assert cov["contract-approval"]["percent"] == 100.0
    assert cov["contract-approval"]["missing"] == {"stages": [], "results": [], "branches": []}


def test_no_scenarios_folder_is_a_usage_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    result = invoke(["test"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "flowctl: error: no scenarios: the folder scenarios (from default) does not exist\n")
    assert sorted(os.listdir(tmp_path)) == ["processes"]


def test_the_scenarios_folder_comes_from_the_workspace_file(ws: Path) -> None:
    os.rename(ws / "scenarios", ws / "checks")
    (ws / "flowctl.toml").write_text('processes = "processes"\nscenarios = "checks"\n',
                                     encoding="utf-8")
    result = invoke(["test"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("checks/contract-approval.yaml\n")


def test_parallel_run_gives_the_same_results(ws: Path) -> None:
    one = scenarios.run_tests(None, jobs=1)
    two = scenarios.run_tests(None, jobs=2)
    assert two.workers == 2
    assert [(r.file, r.name, r.passed, r.covered) for r in one.results] == [
        (r.file, r.name, r.passed, r.covered) for r in two.results]
    assert one.coverage == two.coverage


def test_the_schema_is_printed_and_published() -> None:
    result = invoke(["schema", "scenario"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["$id"] == "https://flowctl.dev/schemas/scenario/v1.json"
    assert (ROOT / "schemas" / "scenario.schema.json").read_text("utf-8") == result.stdout


def test_init_writes_a_scenario_that_passes(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke(["init"]).exit_code == 0
    result = invoke(["test", "--min-coverage", "100"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("2 scenarios: 2 passed, 0 failed")
    assert not (tmp_path / ".flowctl").exists()


def _block(page: str, marker: str) -> str:
    after = page.split(f"<!-- {marker} -->\n", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def test_the_docs_example_scenario_passes(ws: Path) -> None:
    page = (ROOT / "docs" / "testing.md").read_text("utf-8")
    path = write(ws, "doc.yaml", _block(page, "scenario-example"))
    result = invoke(["test", path])
    assert result.exit_code == 0, result.stdout
    assert "  PASS  a key account is approved by the head of sales and handed over" \
        in result.stdout.splitlines()


def test_the_docs_failure_is_what_flowctl_test_prints(ws: Path) -> None:
    page = (ROOT / "docs" / "testing.md").read_text("utf-8")
    shown = _block(page, "scenario-failure").splitlines()
    path = write(ws, "key.yaml", KEY)
    result = invoke(["test", path])
    assert shown[0] == f"$ flowctl test {path}"
    assert result.stdout.splitlines()[: len(shown) - 1] == shown[1:]


def test_a_trigger_dropped_while_a_store_is_open_still_stops_its_next_write(
        tmp_path: Path) -> None:
    """The triggers are looked at again when the schema changed since the last
    write found them intact (their check is skipped only while it has not)."""
    import sqlite3

    from flowctl.store.base import StoreError
    from flowctl.store.sqlite import SqliteStore

    path = str(tmp_path / "s.db")
    store = SqliteStore.open(path)
    try:
        with store.transaction():
            pass  # found intact
        other = sqlite3.connect(path)
        other.execute("DROP TRIGGER journal_no_delete")
        other.commit()
        other.close()
        with pytest.raises(StoreError, match="journal_no_delete"), store.transaction():
            pass
    finally:
        store.close()


def test_the_scenario_store_copy_is_empty_and_keeps_no_search_index() -> None:
    from flowctl.store.sqlite import SqliteStore

    template = SqliteStore.open(":memory:")
    copy = template.copy_in_memory(search_index=False)
    try:
        names = {row[0] for row in copy._conn.execute(  # noqa: SLF001 - a look inside
            "SELECT name FROM sqlite_schema WHERE type = 'trigger'")}
        assert "instance_search_update" not in names
        assert "journal_no_delete" in names
        with copy.transaction():
            pass  # its journal is protected: writes go ahead
        assert list(copy.list_instances(scenarios.InstanceFilter())) == []
    finally:
        copy.close()
        template.close()


def test_the_text_report_is_coloured_only_when_asked(ws: Path) -> None:
    from flowctl.cli.scenarios import text_report

    write(ws, "key.yaml", KEY)
    report = scenarios.run_tests(["scenarios/key.yaml", "scenarios/goods-delivery.yaml"])
    plain = text_report(report)
    coloured = text_report(report, color=True)
    assert "\x1b[" not in plain
    assert "  \x1b[1;32mPASS\x1b[0m  shipped on the ship date and delivered" in coloured
    assert "  \x1b[1;31mFAIL\x1b[0m  a key account goes to carol" in coloured

"""docs/ci.md runs as written: every `run:` step of its GitHub Actions workflow
on a two-commit repository (a base branch pushed to an `origin`, and a pull
request branch), the pre-commit hooks' commands, and the Markdown comment's
Mermaid parsed by the real Mermaid parser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from test_diagram import mermaid_parser, parse_mermaid  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)  # where this environment's `flowctl` is


def yaml_blocks(path: Path) -> list[Any]:
    from ruamel.yaml import YAML

    text = path.read_text(encoding="utf-8")
    return [YAML(typ="safe").load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def workflow() -> dict[str, Any]:
    found: dict[str, Any] = next(b for b in yaml_blocks(ROOT / "docs" / "ci.md")
                                 if isinstance(b, dict) and "jobs" in b)
    return found


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWCTL_", "GIT_"))}
    out.update(PATH=BIN + os.pathsep + os.environ.get("PATH", ""), GIT_AUTHOR_NAME="A",
               GIT_AUTHOR_EMAIL="a@example.org", GIT_COMMITTER_NAME="A",
               GIT_COMMITTER_EMAIL="a@example.org", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1")
    return out


def sh(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    # GitHub runs a `run:` step as `bash -e {0}`
    return subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def pull_request(tmp_path: Path) -> Path:
    """A clone whose origin/main has the examples and their scenarios, checked
    out on a branch that adds a field to contract-approval and renames a stage."""
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    origin, repo = tmp_path / "origin.git", tmp_path / "repo"
    for command in (f"git init -q --bare -b main {origin}", f"git init -q -b main {repo}"):
        assert sh(tmp_path, command).returncode == 0
    shutil.copytree(ROOT / "processes", repo / "processes")
    shutil.copytree(ROOT / "scenarios", repo / "scenarios")
    path = repo / "processes" / "contract-approval.yaml"
    text = path.read_text(encoding="utf-8")
    changed = text.replace("    name: Legal review\n", "    name: Legal check\n").replace(
        "  rejection_reason:\n    type: text\n",
        "  rejection_reason:\n    type: text\n  priority:\n    type: enum\n"
        "    values: [normal, urgent]\n")
    assert changed.count("priority") == 1
    steps = [
        "git add . && git commit -qm 'the examples'",
        f"git remote add origin {origin} && git push -q -u origin main",
        "git checkout -qb add-priority",
    ]
    for command in steps:
        result = sh(repo, command)
        assert result.returncode == 0, result.stderr
    path.write_text(changed, encoding="utf-8")
    result = sh(repo, "git commit -qam 'contract approval: a priority'")
    assert result.returncode == 0, result.stderr
    return repo


def test_every_workflow_step_runs_as_written(pull_request: Path,
                                             mermaid_parser: Path) -> None:  # noqa: F811
    flow = workflow()
    assert set(flow["jobs"]) == {"lint", "test", "review"}
    ran: list[str] = []
    used: dict[str, dict[str, Any]] = {}
    for job in flow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                used[str(step["uses"]).split("@")[0]] = step.get("with", {})
                continue
            command = step["run"]
            if step.get("name") == "Install flowctl":
                assert command.startswith("python -m pip install ")
                continue  # this environment has flowctl already
            result = sh(pull_request, command)
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            ran.append(command.split()[1])
    assert ran == ["lint", "lint", "test", "diff"]
    assert flow["jobs"]["review"]["steps"][0]["with"]["fetch-depth"] == 0

    # what the `uses:` steps read is there, and is what they expect
    sarif = pull_request / used["github/codeql-action/upload-sarif"]["sarif_file"]
    assert '"version": "2.1.0"' in sarif.read_text(encoding="utf-8")
    report = ET.parse(pull_request / used["mikepenz/action-junit-report"]["report_paths"])
    suites = report.getroot()
    tests = sum(int(s.get("tests", 0)) for s in suites.iter("testsuite"))
    failures = sum(int(s.get("failures", 0)) for s in suites.iter("testsuite"))
    assert tests >= 20
    assert failures == 0
    comment = (pull_request / used["marocchino/sticky-pull-request-comment"]["path"]).read_text(
        encoding="utf-8")
    assert "| `contract-approval` | 1 change | 0 | — |\n" in comment
    assert "- ➕ new field 'priority' (enum)\n" in comment
    assert ("- ✏️ stage 'legal-review': renamed 'Legal review' → 'Legal check' *(wording "
            "only)*\n") in comment

    # the Mermaid of the comment parses with Mermaid itself
    block = comment.split("```mermaid\n", 1)[1].split("\n```", 1)[0] + "\n"
    chart = pull_request.parent / "comment.mmd"
    chart.write_text(block, encoding="utf-8")
    code, results = parse_mermaid(mermaid_parser, [chart])
    assert code == 0, results
    assert results[0]["type"] == "flowchart-v2"


def test_the_review_step_says_so_when_the_base_is_missing(pull_request: Path) -> None:
    """A shallow clone without the base branch: a clear refusal, not a traceback."""
    step = next(s for s in workflow()["jobs"]["review"]["steps"]
                if "flowctl diff" in str(s.get("run", "")))
    assert sh(pull_request, "git remote remove origin").returncode == 0
    result = sh(pull_request, step["run"])
    assert result.returncode == 2
    assert result.stderr.startswith("flowctl: error: unknown revision 'origin/main'")


def test_pre_commit_hooks_run_as_declared(pull_request: Path) -> None:
    from ruamel.yaml import YAML

    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    for hook in hooks:
        assert hook["pass_filenames"] is False
        assert re.search(hook["files"], "processes/contract-approval.yaml")
        command = " ".join([hook["entry"], *hook.get("args", [])])
        result = sh(pull_request, command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    test_hook = next(h for h in hooks if h["id"] == "flowctl-test")
    assert re.search(test_hook["files"], "scenarios/contract-approval.yaml")
    # a scenario that no longer holds stops the commit
    path = pull_request / "processes" / "contract-approval.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "record.amount > 100000", "record.amount > 250000"), encoding="utf-8")
    failed = sh(pull_request, test_hook["entry"])
    assert failed.returncode == 1
    assert "failed" in failed.stdout

"""``flowctl lint`` end to end: exit codes, formats, output file, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from jsonschema import Draft7Validator

from flowctl.api import definitions
from flowctl.api.definitions import LintResult
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.errors import FlowctlError

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

BROKEN_YAML = "kind: process\nid: broken\nstages: [\n  - id: a\n"


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return invoke(["lint", *args], env=env)


def fake_result(*diags: Diagnostic) -> LintResult:
    return LintResult(
        diagnostics=list(diags), files=["p/a.yaml", "p/b.yaml"], sources={"p/a.yaml": "a: 1\n"}
    )


@dataclass
class FakeLint:
    results: list[LintResult] = field(default_factory=list)
    calls: list[tuple[list[str] | None, str | None]] = field(default_factory=list)

    def append(self, result: LintResult) -> None:
        self.results.append(result)

    def __call__(self, paths: list[str] | None = None, *, org: str | None = None,
                 cache: bool = True,
                 progress: Callable[[int], None] | None = None) -> LintResult:
        self.calls.append((paths, org))
        return self.results[-1]


@pytest.fixture
def fake_lint(monkeypatch: pytest.MonkeyPatch) -> FakeLint:
    """``api.lint_paths`` replaced: it returns the last result appended."""
    fake = FakeLint()
    monkeypatch.setattr(definitions, "lint_paths", fake)
    return fake


ERROR = Diagnostic("p/a.yaml", 1, 1, "FL204", "stage 'x' does not exist")
WARNING = Diagnostic("p/a.yaml", 1, 4, "FL219", "a decision with one way", Severity.WARNING)


# -- exit codes --------------------------------------------------------------


def test_clean_exits_0(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result())
    result = run()
    assert result.exit_code == 0
    assert result.stdout == "All 2 files passed.\n"
    assert result.stderr == ""


def test_errors_exit_1(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result(ERROR, WARNING))
    result = run("p")
    assert result.exit_code == 1
    assert result.stdout == (
        "p/a.yaml:1:1: FL204 stage 'x' does not exist\n"
        "1 | a: 1\n"
        "  | ^\n"
        "\n"
        "p/a.yaml:1:4: FL219 [warning] a decision with one way\n"
        "1 | a: 1\n"
        "  |    ^\n"
        "\n"
        "Found 1 error and 1 warning in 1 file (2 checked).\n"
    )


def test_warnings_only_exit_0_and_1_with_strict(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result(WARNING))
    assert run().exit_code == 0
    assert run("--strict").exit_code == 1


def test_paths_and_org_are_passed_through(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result())
    assert run("a.yaml", "defs", "--org", "defs/org.yaml").exit_code == 0
    assert run().exit_code == 0
    assert fake_lint.calls == [(["a.yaml", "defs"], "defs/org.yaml"), (None, None)]


def test_missing_path_exits_2_with_a_message(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"flowctl: error: no such file or folder: {tmp_path / 'nope'}\n"
        "flowctl: hint: pass YAML files or folders that contain them\n"
    )


@pytest.mark.parametrize(
    "args",
    [("--format", "xml"), ("--color", "sometimes"), ("--no-such-option",)],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_bad_format_names_the_choices() -> None:
    result = run("--format", "xml")
    assert result.exit_code == 2
    assert "'xml' is not one of" in result.stderr
    assert "'sarif'" in result.stderr


def test_domain_error_keeps_its_code_message_and_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refused(FlowctlError):
        exit_code = 4

    def lint_paths(*_: Any, **__: Any) -> LintResult:
        raise Refused("not allowed: because", hint="do something else")

    monkeypatch.setattr(definitions, "lint_paths", lint_paths)
    result = run()
    assert result.exit_code == 4
    assert result.stderr == (
        "flowctl: error: not allowed: because\nflowctl: hint: do something else\n"
    )


def test_unexpected_exception_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def lint_paths(*_: Any, **__: Any) -> LintResult:
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(definitions, "lint_paths", lint_paths)
    result = run(env={"FLOWCTL_DEBUG": ""})
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "flowctl: internal error: RuntimeError: boom with a second line "
        "(this is a bug in flowctl; set FLOWCTL_DEBUG=1 to see the traceback)\n"
    )
    assert "Traceback" not in result.output


def test_flowctl_debug_lets_the_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def lint_paths(*_: Any, **__: Any) -> LintResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(definitions, "lint_paths", lint_paths)
    result = run(env={"FLOWCTL_DEBUG": "1"})
    assert isinstance(result.exception, RuntimeError)
    assert result.exit_code == 1  # CliRunner's code for an escaped exception


# -- formats and output ------------------------------------------------------


def test_json_format(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result(ERROR))
    result = run("-f", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"files": 2, "files_with_problems": 1, "errors": 1, "warnings": 0}


def test_github_format(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result(ERROR))
    result = run("--format", "github")
    assert result.stdout.splitlines()[0] == (
        "::error file=p/a.yaml,line=1,col=1,title=FL204::stage 'x' does not exist"
    )


def test_output_file_gets_the_report_and_stderr_the_summary(
    fake_lint: FakeLint, tmp_path: Path
) -> None:
    fake_lint.append(fake_result(ERROR))
    target = tmp_path / "flowctl.sarif"
    result = run("--format", "sarif", "-o", str(target))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Found 1 error and 0 warnings in 1 file (2 checked).\n"
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["runs"][0]["results"][0]["ruleId"] == "FL204"


def test_unwritable_output_exits_2(fake_lint: FakeLint, tmp_path: Path) -> None:
    fake_lint.append(fake_result())
    target = tmp_path / "missing-folder" / "out.json"
    result = run("-f", "json", "-o", str(target))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"flowctl: error: cannot write the report to {target}: ")
    assert "Traceback" not in result.output


def test_a_folder_as_output_exits_2_and_says_so(fake_lint: FakeLint, tmp_path: Path) -> None:
    fake_lint.append(fake_result())
    result = run("-o", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"flowctl: error: cannot write the report to {tmp_path}: Is a directory\n"
        "flowctl: hint: pass --output a file in a folder that exists and is writable\n"
    )


def test_colour_follows_the_option_and_no_color(fake_lint: FakeLint) -> None:
    fake_lint.append(fake_result(ERROR))
    assert "\x1b[" not in run().stdout  # not a terminal
    assert "\x1b[1;31mFL204\x1b[0m" in run("--color", "always").stdout
    assert "\x1b[" not in run("--color", "never").stdout
    assert "\x1b[" not in run("--color", "auto", env={"NO_COLOR": "1"}).stdout


def test_help_shows_examples() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "flowctl lint --format sarif -o flowctl.sarif" in result.stdout


# -- end to end over real definitions -----------------------------------------


def test_the_shipped_processes_lint_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run()
    assert result.exit_code == 0, result.output
    count = len(list(PROCESSES.glob("*.yaml")))
    assert result.stdout == f"All {count} files passed.\n"


def test_a_broken_file_exits_1_with_a_located_diagnostic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run("broken.yaml")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("broken.yaml:")
    assert " FL003 " in first


def test_sarif_of_real_definitions_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(PROCESSES, tmp_path / "processes")
    (tmp_path / "processes" / "broken.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run("-f", "sarif", "-o", "flowctl.sarif")
    assert result.exit_code == 1
    doc = json.loads((tmp_path / "flowctl.sarif").read_text(encoding="utf-8"))
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).validate(doc)
    locations = [r["locations"][0]["physicalLocation"] for r in doc["runs"][0]["results"]]
    assert {loc["artifactLocation"]["uri"] for loc in locations} == {"processes/broken.yaml"}


def test_real_entry_point_exit_code_and_stderr(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flowctl", "lint", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("flowctl: error: no such file or folder: ")


# -- docs/ci.md and the pre-commit hook stay true -------------------------------


def _yaml_blocks(path: Path) -> list[Any]:
    import re

    from ruamel.yaml import YAML

    text = path.read_text(encoding="utf-8")
    return [YAML(typ="safe").load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def _hook() -> dict[str, Any]:
    from ruamel.yaml import YAML

    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["flowctl-lint", "flowctl-test"]
    hook: dict[str, Any] = hooks[0]
    return hook


def test_pre_commit_hook_lints_the_whole_folder() -> None:
    import re

    hook = _hook()
    assert hook["entry"] == "flowctl lint"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert hook["args"] == ["processes"]
    pattern = re.compile(hook["files"])
    assert pattern.search("processes/contract-approval.yaml")
    assert pattern.search("processes/sub/org.yml")
    assert not pattern.search("docs/processes.yaml")
    assert not pattern.search("processes/readme.md")


def test_the_hook_command_passes_on_the_shipped_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = _hook()
    monkeypatch.chdir(ROOT)
    assert run(*hook["args"]).exit_code == 0


def test_ci_doc_snippets_use_the_hook_and_valid_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    blocks = _yaml_blocks(ROOT / "docs" / "ci.md")
    remote = [b for b in blocks if isinstance(b, dict) and "repos" in b]
    hook_ids = {h["id"] for b in remote for r in b["repos"] for h in r["hooks"]}
    assert hook_ids == {_hook()["id"], "flowctl-test"}
    workflow = next(b for b in blocks if isinstance(b, dict) and "jobs" in b)
    job = workflow["jobs"]["lint"]
    assert job["permissions"]["security-events"] == "write"
    steps = job["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/"))
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    assert "!cancelled()" in upload["if"]
    commands = [s["run"] for s in steps if str(s.get("run", "")).startswith("flowctl lint")]
    assert len(commands) == 2
    # every documented command runs as documented on a copy of the examples
    shutil.copytree(PROCESSES, tmp_path / "processes")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command.split("||")[0])
        assert argv[:2] == ["flowctl", "lint"]
        result = run(*argv[2:])
        assert result.exit_code == 0, (command, result.output)
    sarif = json.loads((tmp_path / "flowctl.sarif").read_text(encoding="utf-8"))
    assert sarif["runs"][0]["results"] == []

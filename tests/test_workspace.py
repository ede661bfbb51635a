"""One workspace for every command: flowctl.toml (or [tool.flowctl]) found by
walking up; flag, then environment, then the file, then the defaults; `init`,
`config`; and the disagreements the workspace removed, each pinned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import invoke

from flowctl.api import workspace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "processes"
NOW = "2026-11-23T09:00:00Z"
ENV_KEYS = ("FLOWCTL_DB", "FLOWCTL_ORG", "FLOWCTL_PROCESSES", "FLOWCTL_USER", "FLOWCTL_NOW")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FLOWCTL_CACHE_DIR", str(tmp_path / ".cache"))


def run(*args: str, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    return invoke(list(args), env={"FLOWCTL_NOW": NOW, **(env or {})})


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".cache" not in p.parts)


# ---------------------------------------------------------------- resolution


def test_defaults_without_a_workspace_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ws = workspace.resolve()
    assert ws.file is None
    assert (ws.processes.value, ws.processes.source) == ("processes", "default")
    assert ws.org.value == os.path.join("processes", "org.yaml")
    assert (ws.store.value, ws.store.source) == (os.path.join(".flowctl", "flowctl.db"),
                                                 "default")


def test_flag_beats_environment_beats_file_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flowctl.toml").write_text('processes = "defs"\norg = "people.yaml"\n'
                                           'store = "data/team.db"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)  # found by walking up; its paths are relative to its folder
    ws = workspace.resolve()
    assert ws.file == str(tmp_path / "flowctl.toml")
    assert ws.processes == workspace.Setting(str(tmp_path / "defs"), ws.file, True)
    assert ws.org.value == str(tmp_path / "people.yaml")
    assert ws.store.value == str(tmp_path / "data" / "team.db")
    monkeypatch.setenv("FLOWCTL_DB", "env.db")
    assert workspace.resolve().store == workspace.Setting("env.db", "$FLOWCTL_DB", True)
    assert workspace.resolve(db="flag.db").store == workspace.Setting("flag.db", "--db", True)


def test_pyproject_tool_table_counts_only_when_it_names_flowctl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    assert workspace.resolve().file is None
    (tmp_path / "pyproject.toml").write_text('[tool.flowctl]\nprocesses = "flows"\n')
    ws = workspace.resolve()
    assert (ws.file, ws.processes.value) == ("pyproject.toml", "flows")


def test_an_unknown_key_or_a_bad_value_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowctl.toml").write_text('procesess = "defs"\n')
    result = run("config")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: flowctl.toml: unknown setting 'procesess'; the settings are: "
        "processes (the folder of process definitions); org (the org directory (a YAML file)); "
        "store (the store: a SQLite file, or a postgresql:// URL of a team's server); "
        "identity (how the acting user is established: \"login\" or \"trust\"); "
        "scenarios (the folder of scenario tests, for flowctl test)\n"
        "flowctl: hint: remove it, or check its spelling\n")
    (tmp_path / "flowctl.toml").write_text("store = 3\n")
    result = run("config")
    assert result.exit_code == 2
    assert "'store' must be a non-empty string (a path); got int 3" in result.stderr
    (tmp_path / "flowctl.toml").write_text("store = [\n")
    result = run("lint")
    assert result.exit_code == 2
    assert result.stderr.startswith("flowctl: error: flowctl.toml is not valid TOML: ")


def test_config_shows_each_value_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowctl.toml").write_text('processes = "defs"\n')
    result = run("config", "--org", "o.yaml", env={"FLOWCTL_DB": "x.db"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "workspace  flowctl.toml",
        "processes  defs    from flowctl.toml  [does not exist]",
        "org        o.yaml  from --org  [does not exist]",
        "store      x.db    from $FLOWCTL_DB  [does not exist]",
        "identity   login   from default: you are your operating-system login name; only "
        "admins may act for someone else with --as",
    ]
    data = json.loads(run("config", "--json").stdout)
    assert data["workspace"] == "flowctl.toml"
    assert data["processes"] == {"value": "defs", "source": "flowctl.toml", "exists": False}
    assert data["store"]["source"] == "default"


# ---------------------------------------------------------------- init


def test_init_then_lint_exits_0_and_the_example_runs(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(workspace, "login_id", lambda login: "root")
    result = run("init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "wrote flowctl.toml", "wrote processes/purchase-request.yaml", "wrote processes/org.yaml"]
    assert run("lint").exit_code == 0
    assert run("start", "purchase-request", "--as", "sam", "--set", "item=Laptop",
               "--set", "amount=1200").exit_code == 0
    assert run("advance", "purchase-request-1", "--as", "sam", "-r", "submit").exit_code == 0
    step = run("advance", "purchase-request-1", "--as", "root", "-r", "approve")
    assert step.exit_code == 0, step.stderr
    assert "completed" in step.stdout
    assert (tmp_path / ".flowctl" / "flowctl.db").is_file()


def test_init_overwrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "processes").mkdir()
    (tmp_path / "processes" / "org.yaml").write_text("mine\n")
    result = run("init")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: processes/org.yaml already exists; flowctl init writes a new workspace "
        "and overwrites nothing\n"
        "flowctl: hint: run it in an empty folder, or `flowctl init DIR` for a new one\n")
    assert tree(tmp_path) == ["processes", "processes/org.yaml"]
    assert (tmp_path / "processes" / "org.yaml").read_text() == "mine\n"


def test_login_names_become_valid_user_ids() -> None:
    assert workspace.login_id("John.Doe") == "john-doe"
    assert workspace.login_id("root") == "root"
    assert workspace.login_id("9lives") == "admin"
    assert workspace.login_id("Иван") == "admin"


# ---------------------------------------------------------------- nothing left behind


@pytest.mark.parametrize("args", [
    ["inbox", "--as", "alice"], ["list"], ["journal"], ["journal", "verify"],
    ["show", "x-1", "--as", "alice"], ["overdue"], ["task", "list"],
    ["notifications", "--as", "alice"], ["tick"],
    ["advance", "x-1", "-r", "done", "--as", "alice"],
])
def test_a_command_in_an_empty_folder_leaves_it_empty(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    result = run(*args)
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert result.stderr.startswith(
        "flowctl: error: no store at .flowctl/flowctl.db (from default): nothing was started "
        "with it yet\n")
    assert list(folder.iterdir()) == []


def test_a_refused_first_command_leaves_no_database(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("advance", "x-1", "-r", "done", "--as", "alice", "--db", "newdir/typo.db")
    assert result.exit_code == 4
    assert "no store at newdir/typo.db (from --db)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_refused_start_leaves_no_database(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLES, tmp_path / "processes")
    before = tree(tmp_path)
    for args in (["start", "key-account-filing-approval", "--as", "frank"],  # may not start it
                 ["start", "no-such-process", "--as", "alice"],
                 ["start", "key-account-filing-approval", "--as", "alice", "--set", "x=1"]):
        result = run(*args, "--db", "new/flowctl.db")
        assert result.exit_code in (1, 2), result.stderr
        assert tree(tmp_path) == before


# ---------------------------------------------------------------- one org, one id


BROKEN = """\
kind: process
id: broken
name: Broken
stages:
  - id: review
    kind: task
    start: true
    name: Review
    assignee:
      role: key-account-approver
    results:
      done: finish
  - id: finish
    kind: end
    name: Finished
"""


def test_start_checks_the_process_against_the_org_it_runs_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    org = str(EXAMPLES / "org.yaml")
    lint = run("lint", "broken.yaml", "--org", org)
    assert lint.exit_code == 1
    assert "FL402 role 'key-account-approver' is not in the org directory" in lint.stdout
    result = run("start", "broken.yaml", "--org", org, "--as", "alice", "--db", "s.db")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "flowctl: error: broken.yaml is not a valid process definition: broken.yaml:10:13: "
        "FL402 role 'key-account-approver' is not in the org directory")
    assert not (tmp_path / "s.db").exists()


def test_lint_honours_flowctl_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    assert run("lint", "broken.yaml").exit_code == 0  # no org anywhere: a warning
    result = run("lint", "broken.yaml", env={"FLOWCTL_ORG": str(EXAMPLES / "org.yaml")})
    assert result.exit_code == 1
    assert "FL402" in result.stdout


def test_a_broken_org_beside_a_file_is_reported_as_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(EXAMPLES / "goods-delivery.yaml", defs / "goods-delivery.yaml")
    (defs / "org.yaml").write_text("kind: org\nusers:\n  - id: Bad Id\n")
    monkeypatch.chdir(tmp_path)
    result = run("lint", "defs/goods-delivery.yaml")
    assert result.exit_code == 1
    assert "defs/org.yaml:" in result.stdout
    assert "FL404" in result.stdout  # and the process says it could not be checked


def test_two_files_with_one_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLES, tmp_path / "processes")
    copy = (EXAMPLES / "goods-delivery.yaml").read_text().replace(
        "    next: ship\n", "    next: shipp\n")
    (tmp_path / "processes" / "zz-copy.yaml").write_text(copy)
    result = run("start", "goods-delivery", "--as", "oleg")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: process id 'goods-delivery' is defined by 2 files: "
        "processes/goods-delivery.yaml, processes/zz-copy.yaml\n"
        "flowctl: hint: give each process its own id (`flowctl lint` reports the copies as "
        "FL224)\n")
    assert not (tmp_path / ".flowctl").exists()
    lint = run("lint").stdout
    assert ("processes/zz-copy.yaml:3:5: FL224 process id 'goods-delivery' is also defined "
            "in processes/goods-delivery.yaml") in lint
    assert "processes/zz-copy.yaml:56:11: FL204" in lint  # its own error, next to it


# ---------------------------------------------------------------- the installed script


def test_the_installed_script_runs_init_and_lint(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flowctl"
    if not script.exists():
        pytest.skip("flowctl is not installed next to this python")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["FLOWCTL_CACHE_DIR"] = str(tmp_path / ".cache")
    folder = tmp_path / "w"
    done = subprocess.run([str(script), "init", str(folder)], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([str(script), "lint"], capture_output=True, text=True, env=env,
                          cwd=folder, check=False)
    assert (done.returncode, done.stdout) == (0, "All 2 files passed.\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([str(script), "inbox"], capture_output=True, text=True, env=env,
                          cwd=empty, check=False)
    assert done.returncode == 4
    assert list(empty.iterdir()) == []

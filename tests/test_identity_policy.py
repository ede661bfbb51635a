"""Who is acting: the workspace's identity policy (identity = "login", the
default, or "trust"). Under "login" the acting user is the operating-system
login name; --as and FLOWCTL_USER naming someone else are for admins only, and
what an admin does for someone is journalled with both names."""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl.api import workspace

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"
KEY = "key-account-filing-approval"
K1 = f"{KEY}-1"


class Login:
    """A workspace in tmp_path with the default policy, run as ``login``."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str | None
                 ) -> None:
        monkeypatch.chdir(tmp_path)
        text = f'processes = "{PROCESSES}"\nstore = "team.db"\n'
        if policy is not None:
            text += f'identity = "{policy}"\n'
        (tmp_path / "flowctl.toml").write_text(text)
        self.db = tmp_path / "team.db"
        self.monkeypatch = monkeypatch
        for key in ("FLOWCTL_DB", "FLOWCTL_ORG", "FLOWCTL_PROCESSES", "FLOWCTL_USER"):
            monkeypatch.delenv(key, raising=False)

    def __call__(self, login: str, *args: str, env: dict[str, str | None] | None = None
                 ) -> Result:
        self.monkeypatch.setattr(getpass, "getuser", lambda: login)
        return invoke(list(args), env={"FLOWCTL_NOW": NOW, "FLOWCTL_USER": None, **(env or {})})

    def journal(self) -> list[tuple[str, str, str | None]]:
        with sqlite3.connect(self.db) as con:
            rows = con.execute("SELECT actor, kind, data FROM journal ORDER BY seq").fetchall()
        return [(a, k, json.loads(d).get("by")) for a, k, d in rows]


@pytest.fixture
def login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Login:
    return Login(tmp_path, monkeypatch, None)  # no identity key: the default, "login"


def test_without_as_the_login_name_is_the_acting_user(login: Login) -> None:
    result = login("alice", "start", KEY, "--set", "owner=alice")
    assert result.exit_code == 0, result.stderr
    assert login.journal()[:2] == [("alice", "started", None), ("alice", "stage_entered", None)]
    result = login("alice", "inbox")
    assert result.stdout.splitlines()[1].startswith(f"{K1}  edit-customer")


def test_as_someone_else_by_a_user_who_is_not_an_admin_is_refused(login: Login) -> None:
    assert login("alice", "start", KEY, "--set", "owner=alice").exit_code == 0
    before = login.journal()
    result = login("alice", "advance", K1, "-r", "done", "--set", "level=key", "--as", "carol")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "flowctl: error: alice asked to act as carol (--as carol): only users with the admin "
        'role may act for someone else here (identity = "login"); admins: grace\n'
        "flowctl: hint: run the command as yourself (without --as)\n")
    # FLOWCTL_USER is the same claim
    result = login("alice", "start", KEY, "--set", "owner=bob", env={"FLOWCTL_USER": "bob"})
    assert result.exit_code == 1
    assert result.stderr == (
        "flowctl: error: alice asked to act as bob (FLOWCTL_USER bob): only users with the "
        'admin role may act for someone else here (identity = "login"); admins: grace\n'
        "flowctl: hint: run the command as yourself (without FLOWCTL_USER)\n")
    assert login.journal() == before  # nothing written
    # saying who one is, truly, is no claim on anyone else
    result = login("alice", "advance", K1, "-r", "done", "--set", "level=normal", "--as", "alice")
    assert result.exit_code == 0, result.stderr


def test_an_admin_may_act_for_someone_and_the_journal_says_both(login: Login) -> None:
    assert login("alice", "start", KEY, "--set", "owner=alice").exit_code == 0
    assert login("alice", "advance", K1, "-r", "done", "--set", "level=key").exit_code == 0
    result = login("grace", "advance", K1, "-r", "approve", "--as", "carol")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{K1}: result approve at 'level-approval'"
    assert login.journal()[-4:] == [("carol", "field_changed", "grace"),  # approved_by: actor
                                    ("carol", "result", "grace"),
                                    ("carol", "field_changed", "grace"),  # previous_owner
                                    ("carol", "stage_entered", "grace")]
    history = login("grace", "show", K1).stdout.splitlines()
    assert [line for line in history if "  result  " in line and "approve" in line] == [
        "  2026-11-23T09:00:00Z  v3  carol (by grace)  result  approve at 'level-approval'"
    ]
    lines = login("grace", "journal", K1).stdout.splitlines()
    assert lines[-2].split("  ")[4] == "carol (by grace)"
    data = json.loads(login("grace", "journal", K1, "--json").stdout)
    assert (data[-3]["actor"], data[-3]["data"]) == ("carol", {"by": "grace"})
    assert login("grace", "journal", "verify").exit_code == 0


def test_an_admin_acting_for_an_unknown_user_is_told_the_id_meant(login: Login) -> None:
    result = login("grace", "start", KEY, "--as", "Alice", "--set", "owner=alice")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: grace asked to act for 'Alice' (from --as): not a user of the org "
        f"directory {PROCESSES}/org.yaml; did you mean 'alice'?\n"
        "flowctl: hint: name a user of the org directory (user ids are lowercase)\n")


def test_a_login_name_that_is_not_in_the_org_is_refused(login: Login) -> None:
    result = login("mallory", "start", KEY, "--as", "alice", "--set", "owner=alice")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: your login name 'mallory' is not a user of the org directory "
        f"{PROCESSES}/org.yaml; the workspace establishes identity by the login name "
        '(identity = "login")\n'
        "flowctl: hint: ask an admin to add you to the org directory with that id\n")
    assert not login.db.exists()


def test_trust_only_when_the_workspace_file_says_so(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run = Login(tmp_path, monkeypatch, "trust")
    result = run("mallory", "start", KEY, "--as", "alice", "--set", "owner=alice")
    assert result.exit_code == 0, result.stderr
    assert run.journal()[0] == ("alice", "started", None)
    config = run("mallory", "config").stdout.splitlines()
    assert config[-1].split() [:4] == ["identity", "trust", "from", "flowctl.toml:"]
    # no variable sets a policy
    monkeypatch.setenv("FLOWCTL_IDENTITY", "trust")
    (tmp_path / "flowctl.toml").write_text(f'processes = "{PROCESSES}"\nstore = "team.db"\n')
    assert workspace.resolve().identity == workspace.Setting("login", "default", False)
    result = run("mallory", "show", K1, "--as", "alice")
    assert result.exit_code == 2
    assert "your login name 'mallory' is not a user" in result.stderr


def test_an_unknown_identity_policy_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = Login(tmp_path, monkeypatch, "anyone")
    result = run("alice", "config")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: flowctl.toml: 'identity' must be one of: \"login\" (you are your "
        "operating-system login name; only admins may act for someone else with --as); "
        "\"trust\" (anyone may say who they are with --as or FLOWCTL_USER); got 'anyone'\n"
        'flowctl: hint: e.g. identity = "login"\n')


def test_init_writes_the_login_policy_explicitly(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(getpass, "getuser", lambda: "ann")
    assert invoke(["init"]).exit_code == 0
    text = (tmp_path / "flowctl.toml").read_text()
    assert '\nidentity = "login"\n' in text
    assert "# Who is acting:" in text
    config = invoke(["config"]).stdout.splitlines()
    assert config[-1].startswith("identity   login")
    assert "from flowctl.toml: you are your operating-system login name" in config[-1]

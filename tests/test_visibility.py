"""Who may see an instance: its initiator, those who held or decided one of its
stages, its watchers (flowctl share), admins and auditors. Everyone else is
refused by show, note, link, attach, attachment, render --instance and
journal INSTANCE, and finds nothing of it in list or journal."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from clirun import invoke, trust_workspace
from typer.testing import Result

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-23T09:00:00Z"
C1 = "contract-approval-1"

HR = """\
  - id: hr
    name: Human resources
    head: hana
    parent: company
"""
HR_USERS = """\
  - id: hana
    name: Hana HR
    department: hr
  - id: audrey
    name: Audrey Auditor
    department: company
    roles: [auditor]
"""


class Cli:
    """A trust workspace in tmp_path with the bundled processes and an org that
    also has an HR department (hana) and an auditor (audrey)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shutil.copytree(ROOT / "processes", tmp_path / "processes")
        org = tmp_path / "processes" / "org.yaml"
        text = org.read_text("utf-8")
        text = text.replace("users:\n", HR + "users:\n", 1)
        text = text.replace("roles:\n  - id: admin\n", HR_USERS + "roles:\n  - id: admin\n", 1)
        text += "  - id: auditor\n    name: Auditor\n"
        org.write_text(text, "utf-8")
        trust_workspace(tmp_path)
        monkeypatch.chdir(tmp_path)
        self.db = tmp_path / "flowctl.db"
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": str(self.db), "FLOWCTL_NOW": NOW, "FLOWCTL_PROCESSES": None,
            "FLOWCTL_ORG": None, "FLOWCTL_NOTIFY_COMMAND": None,
        }

    def __call__(self, *args: str, user: str = "alice", code: int = 0) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user})
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    def entries(self) -> int:
        with sqlite3.connect(self.db) as con:
            count: int = con.execute("SELECT count(*) FROM journal").fetchone()[0]
        return count


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    c = Cli(tmp_path, monkeypatch)
    c("start", "contract-approval", "--note", "terms attached")
    return c


REFUSED = (
    f"flowctl: error: hana may not see {C1}: it is seen by its initiator (alice), those who "
    "held or decided one of its stages, those it is shared with, and admins and auditors\n"
    f"flowctl: hint: ask alice (initiator) or an admin (grace) to run "
    f"`flowctl share {C1} hana`\n"
)


def test_an_hr_user_cannot_see_or_note_a_contract(cli: Cli, tmp_path: Path) -> None:
    before = cli.entries()
    for args in (["show", C1], ["note", C1, "hello"], ["link", C1, "memo", "M-1"],
                 ["journal", C1], ["attachment", "list", C1],
                 ["attachment", "get", C1, "terms.pdf", "-o", "-"],
                 ["render", "--instance", C1, "-f", "mermaid", "-o", "-"]):
        result = cli(*args, user="hana", code=1)
        assert (result.stdout, result.stderr) == ("", REFUSED), args
    (tmp_path / "a.txt").write_text("x")
    assert cli("attach", C1, str(tmp_path / "a.txt"), user="hana", code=1).stderr == REFUSED
    assert cli.entries() == before  # nothing written
    assert cli("list", user="hana").stdout == "no instances\n"
    assert json.loads(cli("journal", "--json", user="hana").stdout) == []
    # the initiator, an admin and an auditor see it
    for user in ("alice", "grace", "audrey"):
        assert cli("show", C1, user=user).stdout.splitlines()[0] == C1
        assert cli("list", user=user).stdout.splitlines()[1].startswith(C1)


def test_share_lets_hr_see_and_note_and_unshare_takes_it_back(cli: Cli) -> None:
    # only the initiator or an admin shares
    result = cli("share", C1, "hana", user="bob", code=1)
    assert result.stderr == (
        f"flowctl: error: only alice (initiator) or an admin can share {C1}\n"
        "flowctl: hint: you are bob; ask alice (initiator), or an admin (grace)\n")
    assert cli("share", C1, "nobody", code=2).stderr == (
        f"flowctl: error: cannot share {C1} with 'nobody': no such user in the org directory\n")
    assert cli("share", C1, "hana").stdout.splitlines() == [
        f"{C1}: shared with hana: they may see it now",
        f"{C1}: at 'submit', waiting for alice (initiator)",
    ]
    assert cli("share", C1, "hana", code=1).stderr == (
        f"flowctl: error: {C1} is already shared with hana\n")
    card = cli("show", C1, user="hana").stdout.splitlines()
    assert (card[0], card[9]) == (C1, "  shared with: hana")
    assert json.loads(cli("show", C1, "--json").stdout)["instance"]["watchers"] == ["hana"]
    assert cli("note", C1, "--append", "HR saw it", user="hana").stdout.splitlines()[0] == (
        f"{C1}: note appended: HR saw it")
    assert [e["kind"] for e in json.loads(cli("journal", C1, "--json", user="hana").stdout)
            ][-2:] == ["shared", "note"]
    assert cli("list", user="hana").stdout.splitlines()[1].startswith(C1)
    notes = json.loads(cli("notifications", "--json", user="hana").stdout)
    assert [n["message"] for n in notes] == [f"{C1}: alice shared it with you"]

    # an admin may take it back; the journal keeps both
    assert cli("unshare", C1, "hana", user="grace").stdout.splitlines()[0] == (
        f"{C1}: unshared with hana: taken back [as admin]")
    assert cli("show", C1, user="hana", code=1).stderr == REFUSED
    assert cli("note", C1, "again", user="hana", code=1).stderr == REFUSED
    assert cli("unshare", C1, "hana", code=1).stderr == (
        f"flowctl: error: {C1} is not shared with hana; it is shared with: nobody\n")
    kinds = [(e["kind"], e["actor"], e["data"].get("user"))
             for e in json.loads(cli("journal", C1, "--json").stdout)]
    assert [k for k in kinds if k[0] in ("shared", "unshared")] == [
        ("shared", "alice", "hana"), ("unshared", "grace", "hana")]


def test_a_watcher_hears_the_outcome(cli: Cli) -> None:
    cli("share", C1, "hana")
    cli("cancel", C1, "--reason", "duplicate")
    notes = json.loads(cli("notifications", "--json", user="hana").stdout)
    assert [n["message"] for n in notes][0] == (
        f"{C1}: cancelled at 'submit' by alice; reason: duplicate")

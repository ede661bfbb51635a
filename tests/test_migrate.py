"""``flowctl migrate``: running instances move onto a new definition, or nothing moves."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from clirun import invoke, trust_workspace

ROOT = Path(__file__).resolve().parent.parent
PROCESS = "processes/contract-approval.yaml"


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.email=t@example.com",
                    "-c", "user.name=t", *args], check=True, capture_output=True)


def run(*args: str, now: str = "2026-11-23T09:00:00Z") -> object:
    return invoke(list(args), env={"FLOWCTL_NOW": now})


def ok(*args: str, now: str = "2026-11-23T09:00:00Z") -> str:
    result = invoke(list(args), env={"FLOWCTL_NOW": now})
    assert result.exit_code == 0, result.output
    return result.stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_legal_review(text: str) -> str:
    """contract-approval v2: no legal review; the sales manager has 24 working hours."""
    text = text.replace("""      - when: record.term_months > 12
        to: legal-review
    default: needs-signature""", """      - when: record.amount > 100000
        to: executive-signature
    default: needs-signature""")
    start, end = text.index("  - id: legal-review"), text.index("  - id: needs-signature")
    text = text[:start] + text[end:]
    return text.replace("""    sla:
      within: 48h
      business_hours: true""", """    sla:
      within: 24h
      business_hours: true""", 1)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with contract-approval v1 committed, two instances running
    on it (one at legal-review, one at manager-review), then v2 committed."""
    return make_repo(tmp_path, monkeypatch)


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    # the contract approval with sequential reviews (its legal review a stage of its own)
    shutil.copy(ROOT / "tests" / "fixtures" / "diff" / "contract-approval-sequential.yaml",
                tmp_path / PROCESS)
    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "v1")
    ok("start", "contract-approval", "--as", "alice", "--set", "customer=A",
       "--set", "amount=5000", "--set", "credit_score=90", "--set", "term_months=24")
    ok("advance", "contract-approval-1", "--as", "alice", "-r", "submit")
    ok("advance", "contract-approval-1", "--as", "carol", "-r", "approve")
    ok("start", "contract-approval", "--as", "bob", "--set", "customer=B",
       "--set", "amount=500", "--set", "credit_score=90", "--set", "term_months=2")
    ok("advance", "contract-approval-2", "--as", "bob", "-r", "submit")
    path = tmp_path / PROCESS
    path.write_text(without_legal_review(path.read_text("utf-8")), encoding="utf-8")
    git(tmp_path, "commit", "-qam", "v2")
    return tmp_path


def store(folder: Path) -> Path:
    return folder / ".flowctl" / "flowctl.db"


def journal(folder: Path, instance: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(
        ok("journal", instance, "--as", "grace", "--json"))
    return entries


def state(folder: Path) -> str:
    """The store's rows (the file's bytes change with SQLite's own bookkeeping)."""
    conn = sqlite3.connect(store(folder))
    try:
        rows = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("instances", "journal", "timers", "definitions", "notifications")]
    finally:
        conn.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_dry_run_shows_the_plan_and_writes_nothing(repo: Path) -> None:
    before = state(repo)
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace", "--dry-run",
                 now="2026-11-24T10:00:00Z")
    assert result.exit_code == 1  # the migration itself would be refused
    lines = result.stdout.splitlines()
    assert lines[0].startswith("plan: move running instances of contract-approval to "
                               "HEAD:processes/contract-approval.yaml (definition ")
    assert "refused: the new definition has no stage 'legal-review'; say where it goes " \
        "with --map legal-review=STAGE" in result.stdout
    assert lines[-1] == ("1 would move, 0 already on it, 1 refused: add --map for their "
                         "stages; nothing was written (--dry-run)")
    assert state(repo) == before


def test_an_instance_in_a_removed_stage_needs_a_mapping(repo: Path) -> None:
    before = state(repo)
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace")
    assert result.exit_code == 1
    assert result.stderr == (
        "flowctl: error: 1 of 2 instances cannot move: contract-approval-1 (at "
        "'legal-review'): the new definition has no stage 'legal-review'; say where it goes "
        "with --map legal-review=STAGE; nothing was written\n"
        "flowctl: hint: `flowctl migrate ... --dry-run` shows the plan of every instance\n")
    assert state(repo) == before


def test_migration_moves_each_instance_with_one_journal_entry(repo: Path) -> None:
    old = json.loads(ok("show", "contract-approval-2", "--as", "grace", "--json"))
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace",
                 "--map", "legal-review=manager-review", now="2026-11-24T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "moved 2 of 2 instances (0 already on it)"
    new_digest = hashlib.sha256((repo / PROCESS).read_bytes()).hexdigest()
    old_digest = old["instance"]["definition"]

    # at the same stage: stays, its due time follows the new SLA (24 working hours
    # from when the stage was entered, Monday 12:00 Moscow: Wednesday 18:00)
    moved = journal(repo, "contract-approval-2")[-1]
    assert (moved["kind"], moved["actor"], moved["stage"], moved["version"]) == (
        "migrated", "grace", "manager-review", 3)
    assert moved["data"] == {
        "from_definition": old_digest, "to_definition": new_digest,
        "from_stage": "manager-review", "to_stage": "manager-review",
        "map": {"legal-review": "manager-review"}, "due_at": "2026-11-25T15:00:00Z"}
    card = json.loads(ok("show", "contract-approval-2", "--as", "grace", "--json"))
    assert card["instance"]["definition"] == new_digest
    assert card["instance"]["due_at"] == "2026-11-25T15:00:00Z"
    assert sorted(t["at"] for t in card["instance"]["timers"]) == [
        # due and the reminder after 24 working hours; the reassignment after 48
        "2026-11-25T15:00:00Z", "2026-11-25T15:00:00Z", "2026-11-30T12:00:00Z"]

    # mapped: enters manager-review anew, from now
    entries = journal(repo, "contract-approval-1")
    assert [(e["kind"], e["stage"]) for e in entries[-2:]] == [
        ("migrated", "legal-review"), ("stage_entered", "manager-review")]
    assert entries[-2]["data"]["to_stage"] == "manager-review"
    card = json.loads(ok("show", "contract-approval-1", "--as", "grace", "--json"))
    assert card["instance"]["stage"] == "manager-review"
    assert ok("journal", "verify").startswith("journal intact")

    # the instances now run on the new definition
    ok("advance", "contract-approval-1", "--as", "carol", "-r", "approve",
       now="2026-11-24T11:00:00Z")
    card = json.loads(ok("show", "contract-approval-1", "--as", "grace", "--json"))
    assert card["instance"]["stage"] is None
    assert card["instance"]["outcome"] == "approved"  # no legal review any more

    # run again: nothing to do, nothing written
    before = state(repo)
    again = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace",
                "--map", "legal-review=manager-review")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-1] == "moved 0 of 1 instances (1 already on it)"
    assert state(repo) == before


def test_an_escalation_fired_already_is_not_fired_again(repo: Path) -> None:
    # contract-approval-2 entered manager-review Monday 12:00 Moscow; the
    # reminder after 24 working hours fires Thursday 09:00
    tick = run("tick", now="2026-11-26T07:00:00Z")
    assert tick.exit_code == 0
    reminded = [e for e in journal(repo, "contract-approval-2") if e["kind"] == "escalation"]
    assert len(reminded) == 1
    original = (repo / PROCESS).read_text("utf-8")
    (repo / PROCESS).write_text(original.replace("within: 48h", "within: 72h", 1),
                                encoding="utf-8")
    ok("migrate", "contract-approval", "--to", PROCESS, "--as", "grace",
       "--map", "legal-review=manager-review", "--where", "record.customer == \"B\"",
       now="2026-11-26T08:00:00Z")
    ok("tick", now="2026-11-26T08:30:00Z")
    again = [e for e in journal(repo, "contract-approval-2") if e["kind"] == "escalation"]
    assert len(again) == 1
    # --where left the other instance on its definition
    card = json.loads(ok("show", "contract-approval-1", "--as", "grace", "--json"))
    assert card["instance"]["stage"] == "legal-review"


def test_fields_the_new_definition_drops_are_journalled(repo: Path) -> None:
    text = (repo / PROCESS).read_text("utf-8")
    (repo / PROCESS).write_text(text.replace("""  customer:
    type: string
    label: Customer
""", "").replace("required: [customer, amount, credit_score, term_months]",
                 "required: [amount, credit_score, term_months]"), encoding="utf-8")
    out = ok("migrate", "contract-approval", "--to", PROCESS, "--as", "grace",
             "--map", "legal-review=manager-review", "--json")
    data = json.loads(out)
    assert [i["dropped"] for i in data["instances"]] == [["customer"], ["customer"]]
    moved = journal(repo, "contract-approval-2")[-1]
    assert moved["data"]["dropped_fields"] == {"customer": "B"}
    card = json.loads(ok("show", "contract-approval-2", "--as", "grace", "--json"))
    assert "customer" not in card["instance"]["record"]


def test_only_an_admin_may_migrate(repo: Path) -> None:
    before = state(repo)
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "carol",
                 "--map", "legal-review=manager-review")
    assert result.exit_code == 1
    assert result.stderr == ("flowctl: error: only admins may migrate instances; you are carol\n"
                             "flowctl: hint: ask an admin (grace)\n")
    assert state(repo) == before


def test_an_unknown_revision_is_refused(repo: Path) -> None:
    result = run("migrate", "contract-approval", "--to", "v9", "--as", "grace")
    assert result.exit_code == 2
    assert result.stderr == (
        "flowctl: error: --to v9: neither a file nor a git revision\n"
        "flowctl: hint: name the new definition's file, or a commit, branch or tag that has "
        "it (e.g. --to HEAD, --to main)\n")


def test_a_revision_without_the_file_is_refused(repo: Path) -> None:
    (repo / "processes" / "extra.yaml").write_text(
        (repo / PROCESS).read_text("utf-8").replace("id: contract-approval", "id: extra", 1),
        encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "extra")
    result = run("migrate", "extra", "--to", "HEAD~1", "--as", "grace")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "flowctl: error: --to HEAD~1: revision HEAD~1 has no file processes/extra.yaml\n")


def test_a_definition_that_does_not_lint_is_refused(repo: Path) -> None:
    broken = repo / "broken.yaml"
    broken.write_text((repo / PROCESS).read_text("utf-8").replace(
        "approve: needs-finance", "approve: needs-financ"), encoding="utf-8")
    before = state(repo)
    result = run("migrate", "contract-approval", "--to", "broken.yaml", "--as", "grace")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "flowctl: error: broken.yaml is not a valid process definition: broken.yaml:")
    assert "FL204 stage 'manager-review' leads to unknown stage 'needs-financ'" in result.stderr
    assert state(repo) == before


def test_a_mapping_to_a_stage_that_does_not_exist_is_refused(repo: Path) -> None:
    before = state(repo)
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace",
                 "--map", "legal-review=manager-reviw")
    assert result.exit_code == 1
    assert result.stderr == (
        "flowctl: error: --map legal-review=manager-reviw: the new definition of "
        "'contract-approval' has no stage 'manager-reviw'; did you mean 'manager-review'?; "
        "nothing was written\n"
        "flowctl: hint: its stages: submit, manager-review, needs-finance, finance-review, "
        "needs-legal, needs-signature, executive-signature, approved, withdrawn\n")
    assert state(repo) == before
    bad = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace", "--map", "x")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("flowctl: error: --map 'x': write it as OLD=NEW (stage ids)\n")


def test_another_process_file_is_refused(repo: Path) -> None:
    result = run("migrate", "contract-approval", "--to", "processes/goods-delivery.yaml",
                 "--as", "grace")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "flowctl: error: --to processes/goods-delivery.yaml: it defines process "
        "'goods-delivery', not 'contract-approval'; nothing was written")


def test_no_store_is_refused_and_none_is_made(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    # the contract approval with sequential reviews (its legal review a stage of its own)
    shutil.copy(ROOT / "tests" / "fixtures" / "diff" / "contract-approval-sequential.yaml",
                tmp_path / PROCESS)
    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = run("migrate", "contract-approval", "--to", PROCESS, "--as", "grace")
    assert result.exit_code == 4
    assert not (tmp_path / ".flowctl").exists()


def test_the_migration_in_the_operators_guide_is_what_flowctl_prints(repo: Path) -> None:
    import re
    import shlex

    text = (ROOT / "docs" / "operators.md").read_text("utf-8")
    session = text.split("<!-- migrate-session -->\n```text\n", 1)[1].split("```", 1)[0]
    blocks = session.strip().split("\n\n")
    assert len(blocks) == 5

    def same(line: str) -> str:  # digests change with every edit of the YAML
        line = re.sub(r"\b[0-9a-f]{64}\b", "<digest>", line)
        return re.sub(r"\b[0-9a-f]{12}\b", "<digest>", line)

    for block in blocks:
        command, *expected = block.splitlines()
        result = run(*shlex.split(command.removeprefix("$ flowctl ")),
                     now="2026-11-24T10:00:00Z")
        assert [same(line) for line in result.output.splitlines()] == [
            same(line) for line in expected], command


def test_migration_on_a_postgresql_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         pg_url: str) -> None:
    """The same migration through the store protocol on a real PostgreSQL server."""
    monkeypatch.setenv("FLOWCTL_DB", pg_url)
    folder = make_repo(tmp_path, monkeypatch)
    refused = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace")
    assert refused.exit_code == 1
    result = run("migrate", "contract-approval", "--to", "HEAD", "--as", "grace",
                 "--map", "legal-review=manager-review", now="2026-11-24T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "moved 2 of 2 instances (0 already on it)"
    moved = journal(folder, "contract-approval-2")[-1]
    assert (moved["kind"], moved["stage"]) == ("migrated", "manager-review")
    assert moved["data"]["due_at"] == "2026-11-25T15:00:00Z"
    card = json.loads(ok("show", "contract-approval-1", "--as", "grace", "--json"))
    assert card["instance"]["stage"] == "manager-review"
    assert ok("journal", "verify").startswith("journal intact")
    assert not (folder / ".flowctl").exists()

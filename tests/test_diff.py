"""``flowctl diff``: changes in reviewer's words, control flags, git revisions,
impact on running instances, the formats, and every refusal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke, trust_workspace
from test_diagram import mermaid_parser, parse_mermaid  # noqa: F401 (a fixture)

from flowctl import api
from flowctl.diff import blockers, compare

ROOT = Path(__file__).resolve().parent.parent
# The contract approval as it was before its reviews ran in parallel: decisions
# and sequential reviews, the richest ground for a diff's words.
CONTRACT = (ROOT / "tests" / "fixtures" / "diff" / "contract-approval-sequential.yaml"
            ).read_text(encoding="utf-8")
ORG = (ROOT / "processes" / "org.yaml").read_text(encoding="utf-8")
ENV: dict[str, str | None] = {"FLOWCTL_DB": None, "FLOWCTL_PROCESSES": None,
                              "FLOWCTL_ORG": None, "FLOWCTL_USER": None, "NO_COLOR": None,
                              "FLOWCTL_NOW": "2026-11-23T09:00:00Z"}

LEGAL_OLD = """    approvers:
      - role: legal-reviewer
    policy: any
    results:
      approve: needs-signature
      reject:
        to: submit
        fields:
          required: [rejection_reason]
    sla:
      within: 48h"""
LEGAL_NEW = """    approvers:
      - role: legal-reviewer
      - role: sales-manager
    policy: any
    results:
      approve: needs-signature
      reject:
        to: submit
        fields:
          required: [rejection_reason]
    sla:
      within: 96h"""


def edited(*pairs: tuple[str, str], text: str = CONTRACT) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


# The change the README shows: four loosenings of contract-approval.
REVIEWED = edited(
    ("record.amount > 100000", "record.amount > 250000"),
    ("    policy: all\n", "    policy: any\n"),
    (LEGAL_OLD, LEGAL_NEW),
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "org.yaml").write_text(ORG, encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def process(tmp_path: Path, text: str, name: str = "p.yaml") -> Any:
    return api.load_process(str(write(tmp_path / name.replace(".", "_"), name, text)))


def changes(tmp_path: Path, old: str, new: str) -> list[tuple[str, str, str | None]]:
    d = compare(process(tmp_path, old, "old.yaml"), process(tmp_path, new, "new.yaml"))
    return [(c.what, c.message, c.weakens) for c in d.changes]


# ---------------------------------------------------------------- what is reported


def test_the_reviewed_change_in_reviewer_words(tmp_path: Path) -> None:
    assert changes(tmp_path, CONTRACT, REVIEWED) == [
        ("approvers", "stage 'legal-review': approvers role legal-reviewer -> role "
         "legal-reviewer, role sales-manager", "more people may approve alone: role "
         "sales-manager"),
        ("sla", "stage 'legal-review': SLA 48h (business hours) -> 96h (business hours)",
         "SLA lengthened from 48h to 96h"),
        ("branch-condition", "stage 'needs-signature': branch to executive-signature: "
         "condition record.amount > 100000 -> record.amount > 250000",
         "threshold on amount moved from 100000 to 250000: fewer cases go to "
         "executive-signature"),
        ("approval-policy", "stage 'executive-signature': approval policy all -> any",
         "one approver now decides where all had to sign"),
    ]


def test_layout_and_comments_are_no_behaviour_change(tmp_path: Path) -> None:
    # comments, quoting, flow style, and the stages in another order
    stages_at = CONTRACT.index("stages:\n")
    head, body = CONTRACT[:stages_at], CONTRACT[stages_at + len("stages:\n"):]
    items = ["  - id:" + s for s in body.split("  - id:")[1:]]
    moved = (head.replace("name: Contract Approval", "name: 'Contract Approval'  # quoted")
             + "# the stages, last first\nstages:\n" + "".join(reversed(items)))
    moved = moved.replace("roles: [sales-rep, sales-manager]",
                          "roles:\n    - sales-rep\n    - sales-manager")
    assert changes(tmp_path, CONTRACT, moved) == []
    old, new = write(tmp_path / "a", "c.yaml", CONTRACT), write(tmp_path / "b", "c.yaml", moved)
    result = invoke(["diff", str(old), str(new), "--exit-code"], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        f"contract-approval ({new}): no behaviour change"]


def test_stages_results_fields_and_control(tmp_path: Path) -> None:
    new = edited(
        # legal review goes: its branch now leads straight on
        ("        to: legal-review\n    default: needs-signature",
         "        to: needs-signature\n    default: needs-signature"),
        # finance can no longer reject
        ("    approvers:\n      - role: finance-reviewer\n    policy: any\n    results:\n"
         "      approve: needs-legal\n      reject:\n        to: submit\n        fields:\n"
         "          required: [rejection_reason]\n",
         "    approvers:\n      - role: finance-reviewer\n    policy: any\n    results:\n"
         "      approve: needs-legal\n"),
        ("  credit_score:\n    type: integer\n    label: Credit score\n    minimum: 0\n"
         "    maximum: 100\n",
         "  credit_score:\n    type: integer\n    label: Credit score\n    minimum: 0\n"
         "    maximum: 1000\n"),
        ("      required: [customer, amount, credit_score, term_months]",
         "      required: [customer, amount, credit_score]\n      optional: [term_months]"),
        ("  roles: [sales-rep, sales-manager]", "  roles: [sales-rep, sales-manager]\n"
         "  departments: [finance]"),
    )
    legal_at = new.index("  - id: legal-review")
    new = new[:legal_at] + new[new.index("  - id: needs-signature"):]
    got = changes(tmp_path, CONTRACT, new)
    assert got == [
        ("starters-changed", "who may start it: role sales-rep, role sales-manager -> "
         "department finance, role sales-rep, role sales-manager",
         "more people may start it: finance"),
        ("field-limits", "field 'credit_score' limits 0..100 -> 0..1000",
         "accepts values it refused before"),
        ("stage-fields", "stage 'submit': fields: term_months now optional",
         "no longer required: term_months"),
        ("result-removed", "stage 'finance-review': result 'reject' (-> submit) removed",
         "'reject' was a way to say no here"),
        ("branch-added", "stage 'needs-legal': new branch when record.term_months > 12 -> "
         "needs-signature", None),
        ("branch-removed", "stage 'needs-legal': branch when record.term_months > 12 -> "
         "legal-review removed", "no case is sent to legal-review any more"),
        ("stage-removed", "approval stage 'legal-review' (Legal review) removed",
         "approval 'legal-review' (role legal-reviewer) no longer exists"),
    ]


def test_added_and_removed_stages_and_an_avoidable_approval(tmp_path: Path) -> None:
    new = edited(
        # manager review can be skipped: submit may go straight to needs-finance
        ("      submit: manager-review\n",
         "      submit: manager-review\n      fast-track: needs-finance\n"),
        # the executive countersignature is gone: large contracts end approved
        ("        to: executive-signature\n    default: approved",
         "        to: archive\n    default: approved"),
        ("  - id: approved\n", "  - id: archive\n    kind: end\n    name: Archived\n"
         "    outcome: approved\n  - id: approved\n"),
    )
    exec_at = new.index("  - id: executive-signature")
    new = new[:exec_at] + new[new.index("  - id: archive"):]
    got = changes(tmp_path, CONTRACT, new)
    assert ("result-added", "stage 'submit': new result 'fast-track' -> needs-finance",
            None) in got
    assert ("stage-added", "new end stage 'archive' (Archived)", None) in got
    assert ("stage-removed", "approval stage 'executive-signature' (Executive "
            "countersignature) removed", "approval 'executive-signature' (role "
            "general-manager, head of finance) no longer exists") in got
    assert ("approval-optional", "stage 'manager-review': approval can now be bypassed on "
            "the way to an end", "approval 'manager-review' was on every way to an end; now "
            "a way avoids it") in got


def test_blockers_say_why_an_instance_cannot_move(tmp_path: Path) -> None:
    new = process(tmp_path, edited(("    maximum: 100\n", "    maximum: 10\n")))
    assert blockers("legal-review", "approval", {"credit_score": 50, "customer": "X"}, new) == [
        "credit_score = 50 is above the new maximum 10"]
    assert blockers("gone", "task", {"nickname": "x"}, new) == [
        "stage 'gone' no longer exists", "field 'nickname' no longer exists"]
    assert blockers("submit", "approval", {}, new) == [
        "stage 'submit' is now a task, not a approval"]
    assert blockers("submit", "task", {"amount": 5}, new) == []


# ---------------------------------------------------------------- the command on files


def test_text_report_and_exit_code(tmp_path: Path) -> None:
    old = write(tmp_path / "old", "contract-approval.yaml", CONTRACT)
    new = write(tmp_path / "new", "contract-approval.yaml", REVIEWED)
    result = invoke(["diff", str(old), str(new)], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{old} -> {new}",
        "",
        f"contract-approval ({new}): 4 changes, 4 weaken control",
        "  ~ stage 'legal-review': approvers role legal-reviewer -> role legal-reviewer, role "
        "sales-manager",
        "    ! weakens control: more people may approve alone: role sales-manager",
        "  ~ stage 'legal-review': SLA 48h (business hours) -> 96h (business hours)",
        "    ! weakens control: SLA lengthened from 48h to 96h",
        "  ~ stage 'needs-signature': branch to executive-signature: condition record.amount "
        "> 100000 -> record.amount > 250000",
        "    ! weakens control: threshold on amount moved from 100000 to 250000: fewer cases "
        "go to executive-signature",
        "  ~ stage 'executive-signature': approval policy all -> any",
        "    ! weakens control: one approver now decides where all had to sign",
    ]
    assert invoke(["diff", str(old), str(new), "--exit-code"], env=ENV).exit_code == 1
    assert invoke(["diff", str(old), str(old), "--exit-code"], env=ENV).exit_code == 0


def test_json_schema(tmp_path: Path) -> None:
    old = write(tmp_path / "old", "c.yaml", CONTRACT)
    new = write(tmp_path / "new", "c.yaml", REVIEWED)
    doc = json.loads(invoke(["diff", str(old), str(new), "--format", "json"], env=ENV).stdout)
    assert set(doc) == {"version", "old", "new", "behaviour_changed", "processes", "summary"}
    assert doc["version"] == 1
    assert doc["behaviour_changed"] is True
    assert doc["summary"] == {"processes": 1, "changes": 4, "behaviour_changes": 4,
                              "weakens_control": 4}
    p = doc["processes"][0]
    assert set(p) == {"process", "status", "old_source", "new_source", "changes",
                      "behaviour_changed", "impact"}
    assert p["impact"] is None
    assert p["status"] == "changed"
    assert p["changes"][3] == {
        "what": "approval-policy", "element": "stage executive-signature",
        "message": "stage 'executive-signature': approval policy all -> any",
        "stage": "executive-signature", "old": "all", "new": "any", "behaviour": True,
        "weakens": "one approver now decides where all had to sign"}


def test_refuses_a_file_that_does_not_lint(tmp_path: Path) -> None:
    old = write(tmp_path / "old", "c.yaml", CONTRACT)
    bad = write(tmp_path / "new", "c.yaml", CONTRACT.replace("default: approved",
                                                              "default: aproved"))
    result = invoke(["diff", str(old), str(bad)], env=ENV)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"flowctl: error: {bad} is not a valid process definition: {bad}:154:14: FL204 "
        "stage 'needs-signature' leads to unknown stage 'aproved'; did you mean 'approved'?\n"
        "flowctl: hint: run `flowctl lint` on it to see every problem\n")


def test_refuses_two_different_processes(tmp_path: Path) -> None:
    old = write(tmp_path / "old", "c.yaml", CONTRACT)
    other = write(tmp_path / "new", "g.yaml",
                  (ROOT / "processes" / "goods-delivery.yaml").read_text(encoding="utf-8"))
    result = invoke(["diff", str(old), str(other)], env=ENV)
    assert result.exit_code == 2
    assert result.stderr == (
        f"flowctl: error: {old} defines process 'contract-approval' and {other} defines "
        "'goods-delivery': diff compares two versions of one process\n"
        "flowctl: hint: name two versions of the same process; to compare whole folders "
        "across revisions use flowctl diff --git REV\n")


def test_refuses_missing_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["diff", "only.yaml"], env=ENV)
    assert result.exit_code == 2
    assert result.stderr.startswith("flowctl: error: name two files to compare, or "
                                    "revisions with --git\n")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- git


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.org",
           "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository: main with the four examples, then a branch `change` that
    loosens contract-approval, removes goods-delivery and adds a copy of
    lost-customer-recovery under another id."""
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    r = tmp_path / "repo"
    (r / "processes").mkdir(parents=True)
    for f in (ROOT / "processes").iterdir():
        shutil.copy(f, r / "processes" / f.name)
    (r / "processes" / "contract-approval.yaml").write_text(CONTRACT, encoding="utf-8")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", ".")
    git(r, "commit", "-qm", "the examples")
    git(r, "checkout", "-qb", "change")
    (r / "processes" / "contract-approval.yaml").write_text(REVIEWED, encoding="utf-8")
    git(r, "rm", "-q", "processes/goods-delivery.yaml")
    lost = (r / "processes" / "lost-customer-recovery.yaml").read_text(encoding="utf-8")
    (r / "processes" / "win-back.yaml").write_text(
        lost.replace("id: lost-customer-recovery", "id: win-back", 1), encoding="utf-8")
    git(r, "add", ".")
    git(r, "commit", "-qm", "the change")
    monkeypatch.chdir(r)
    return r


def test_git_range_reports_changed_added_and_removed(repo: Path) -> None:
    status = git(repo, "status", "--porcelain")
    result = invoke(["diff", "--git", "main..change"], env=ENV)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    heads = [line for line in lines if line and not line.startswith(" ")]
    assert heads[1:] == [
        "contract-approval (change:processes/contract-approval.yaml): 4 changes, 4 weaken "
        "control",
        "goods-delivery (main:processes/goods-delivery.yaml): removed",
        "win-back (change:processes/win-back.yaml): new process",
    ]
    assert git(repo, "status", "--porcelain") == status  # nothing in the work tree changed
    # A...B is the same here (main has not moved), REV alone compares with the work tree
    three = invoke(["diff", "--git", "main...change", "--format", "json"], env=ENV)
    doc = json.loads(three.stdout)
    assert [(p["process"], p["status"]) for p in doc["processes"]] == [
        ("contract-approval", "changed"), ("goods-delivery", "removed"),
        ("win-back", "added")]
    assert invoke(["diff", "--git", "change", "--exit-code"], env=ENV).exit_code == 0
    (repo / "processes" / "contract-approval.yaml").write_text(CONTRACT, encoding="utf-8")
    work = invoke(["diff", "--git", "change", "--format", "json"], env=ENV)
    assert json.loads(work.stdout)["new"] == "working tree"
    assert json.loads(work.stdout)["summary"]["weakens_control"] == 0


def test_git_refuses_an_unknown_revision(repo: Path) -> None:
    result = invoke(["diff", "--git", "origin/main...HEAD"], env=ENV)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "flowctl: error: unknown revision 'origin/main': git knows no commit, branch or tag "
        "by that name\n"
        "flowctl: hint: check `git log --oneline` or `git branch -a`; in CI, fetch the base "
        "branch first (actions/checkout with fetch-depth: 0)\n")


def test_git_refuses_outside_a_repository(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = invoke(["diff", "--git", "HEAD"], env=ENV)
    assert result.exit_code == 2
    assert result.stderr == (
        f"flowctl: error: not a git repository: {folder} (nor any folder above it); --git "
        "compares revisions of a repository\n"
        "flowctl: hint: run it inside a git work tree, or compare two files: flowctl diff "
        "OLD NEW\n")
    assert os.listdir(folder) == []


def test_git_refuses_a_revision_whose_definition_does_not_lint(repo: Path) -> None:
    (repo / "processes" / "contract-approval.yaml").write_text(
        CONTRACT.replace("kind: decision", "kind: desicion", 1), encoding="utf-8")
    result = invoke(["diff", "--git", "main"], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "flowctl: error: processes/contract-approval.yaml (working tree) does not lint: "
        "processes/contract-approval.yaml:")
    assert "FL104" in result.stderr


# ---------------------------------------------------------------- impact


def test_impact_on_running_instances(repo: Path) -> None:
    trust_workspace(repo)
    git(repo, "checkout", "-q", "main")
    env = {**ENV, "FLOWCTL_USER": "alice"}
    fields = ["--set", "customer=X", "--set", "amount=500000", "--set", "credit_score=80",
              "--set", "term_months=24"]
    for _ in range(3):
        assert invoke(["start", "contract-approval", *fields], env=env).exit_code == 0
    for iid in ("contract-approval-1", "contract-approval-2"):
        assert invoke(["advance", iid, "--result", "submit"], env=env).exit_code == 0
        assert invoke(["advance", iid, "--result", "approve", "--as", "carol"],
                      env={**env, "FLOWCTL_USER": "carol"}).exit_code == 0
    assert invoke(["start", "goods-delivery", "--as", "alice"], env=env).exit_code in (0, 1)
    git(repo, "checkout", "-q", "change")
    result = invoke(["diff", "--git", "main..change"], env=ENV)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert ("  running instances (.flowctl/flowctl.db): 3\n"
            "    at 'legal-review' (changed): 2: contract-approval-1, contract-approval-2\n"
            "    at 'needs-signature' (changed): 0\n"
            "    at 'executive-signature' (changed): 0\n"
            "    could move to the new version as they are: 3: contract-approval-1, "
            "contract-approval-2, contract-approval-3\n") in text
    doc = json.loads(invoke(["diff", "--git", "main..change", "--format", "json"],
                            env=ENV).stdout)
    impact = doc["processes"][0]["impact"]
    assert impact["running"] == 3
    assert impact["stages"][0] == {"stage": "legal-review", "change": "changed", "running": 2,
                                   "instances": ["contract-approval-1", "contract-approval-2"]}


def test_no_store_no_impact_and_no_file(repo: Path) -> None:
    result = invoke(["diff", "--git", "main..change", "--format", "json"], env=ENV)
    assert all(p["impact"] is None for p in json.loads(result.stdout)["processes"])
    assert not (repo / ".flowctl").exists()
    missing = invoke(["diff", "--git", "main..change", "--db", "nowhere.db"], env=ENV)
    assert missing.exit_code == 4
    assert missing.stderr.startswith("flowctl: error: no store at nowhere.db")
    assert not (repo / "nowhere.db").exists()


# ---------------------------------------------------------------- markdown


def test_markdown_comment(repo: Path) -> None:
    result = invoke(["diff", "--git", "main...change", "--format", "markdown"], env=ENV)
    assert result.exit_code == 0, result.output
    md = result.stdout
    base = git(repo, "merge-base", "main", "change").strip()[:12]
    change = git(repo, "rev-parse", "change").strip()[:12]
    assert md.startswith(
        "## Process changes\n\n"
        f"`merge-base of main and change ({base})` → `change ({change})`\n\n"
        "| process | change | weakens control | running instances |\n"
        "| --- | --- | --- | --- |\n"
        "| `contract-approval` | 4 changes | ⚠️ 4 | — |\n"
        "| `goods-delivery` | removed | 0 | — |\n"
        "| `win-back` | new process | 0 | — |\n")
    assert ("- ✏️ stage 'needs-signature': branch to executive-signature: condition "
            "record.amount &gt; 100000 → record.amount &gt; 250000\n"
            "  - ⚠️ **weakens control**: threshold on amount moved from 100000 to 250000: "
            "fewer cases go to executive-signature\n") in md
    assert md.count("```mermaid\n") == 3


def mermaid_blocks(md: str) -> list[str]:
    return [block.split("\n```", 1)[0] + "\n" for block in md.split("```mermaid\n")[1:]]


def test_markdown_drawing_marks_added_changed_removed(tmp_path: Path) -> None:
    new = edited(
        ("      submit: manager-review\n",
         "      submit: manager-review\n      fast-track: needs-finance\n"),
        ("        to: executive-signature\n    default: approved",
         "        to: archive\n    default: approved"),
        ("  - id: approved\n", "  - id: archive\n    kind: end\n    name: Archived\n"
         "    outcome: approved\n  - id: approved\n"),
        ("record.credit_score < 70", "record.credit_score < 60"),
    )
    exec_at = new.index("  - id: executive-signature")
    new = new[:exec_at] + new[new.index("  - id: archive"):]
    old_f, new_f = write(tmp_path / "a", "c.yaml", CONTRACT), write(tmp_path / "b", "c.yaml", new)
    md = invoke(["diff", str(old_f), str(new_f), "--format", "markdown"], env=ENV).stdout
    chart = mermaid_blocks(md)[0]
    assert "    class s_archive m_added\n" in chart
    # manager-review: its approval can now be bypassed (by fast-track)
    assert "    class s_submit,s_manager_review,s_needs_finance,s_needs_signature m_changed\n" \
        in chart
    assert "    class s_executive_signature m_removed\n" in chart
    assert "classDef m_removed fill:#FFEBEE,stroke:#C62828,color:#C62828,stroke-width:2px," \
           "stroke-dasharray:5 3\n" in chart
    edges = [line.strip() for line in chart.splitlines() if " -->" in line or " -.->" in line]
    styles = {line.split()[2].split(",")[0].split(":")[1]:
              [int(i) for i in line.split()[1].split(",")]
              for line in chart.splitlines() if line.strip().startswith("linkStyle")}
    added = [edges[i] for i in styles["#2E7D32"]]
    removed = [edges[i] for i in styles["#C62828"]]
    assert added == ['s_submit -->|"fast-track"| s_needs_finance',
                     's_needs_signature -->|"record.amount #gt; 100000"| s_archive']
    assert removed == [
        's_needs_signature -->|"record.amount #gt; 100000"| s_executive_signature',
        's_executive_signature -->|"approve"| s_approved',
        's_executive_signature -->|"reject<br>requires rejection_reason<br>(auto after 5d)"| '
        's_submit']
    changed = [edges[i] for i in styles["#EF8F00"]]
    assert changed == ['s_needs_finance -->|"record.credit_score #lt; 60"| s_finance_review']


def test_markdown_mermaid_parses_with_mermaid(repo: Path,
                                              mermaid_parser: Path) -> None:  # noqa: F811
    md = invoke(["diff", "--git", "main...change", "--format", "markdown"], env=ENV).stdout
    files = []
    for i, block in enumerate(mermaid_blocks(md)):
        files.append(repo.parent / f"chart-{i}.mmd")
        files[-1].write_text(block, encoding="utf-8")
    code, results = parse_mermaid(mermaid_parser, files)
    assert code == 0, results
    assert [r["ok"] for r in results] == [True, True, True], results
    assert all(r["type"] == "flowchart-v2" for r in results)


def test_parallel_fork_change_marks_only_that_branch(tmp_path: Path) -> None:
    parallel = (ROOT / "processes" / "contract-approval.yaml").read_text(encoding="utf-8")
    assert "kind: parallel" in parallel
    new = parallel.replace("when: record.amount > 100000", "when: record.amount > 250000")
    old_f = write(tmp_path / "a", "c.yaml", parallel)
    new_f = write(tmp_path / "b", "c.yaml", new)
    result = invoke(["diff", str(old_f), str(new_f), "--format", "markdown"], env=ENV)
    assert result.exit_code == 0, result.output
    chart = mermaid_blocks(result.stdout)[0]
    edges = [line.strip() for line in chart.splitlines() if " -->" in line or " -.->" in line]
    styled = [line.split() for line in chart.splitlines() if line.strip().startswith("linkStyle")]
    assert len(styled) == 1  # only changed arrows: none added, none removed
    assert styled[0][2].startswith("stroke:#EF8F00")
    assert [edges[int(i)] for i in styled[0][1].split(",")] == [
        "s_reviews -->|\"General manager's<br>countersignature<br>when record.amount #gt;"
        '<br>250000"| s_executive_signature']
    assert "    class s_reviews m_changed\n" in chart


def test_a_workspace_store_that_does_not_exist_yet_is_no_impact(repo: Path) -> None:
    """flowctl init names the store in flowctl.toml before anything started: diff
    says nothing about running work, creates nothing, and succeeds."""
    (repo / "flowctl.toml").write_text('store = ".flowctl/flowctl.db"\n', encoding="utf-8")
    result = invoke(["diff", "--git", "main..change", "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output
    assert all(p["impact"] is None for p in json.loads(result.stdout)["processes"])
    assert not (repo / ".flowctl").exists()
    env = {**ENV, "FLOWCTL_DB": str(repo / "asked.db")}
    asked = invoke(["diff", "--git", "main..change"], env=env)
    assert asked.exit_code == 4
    assert asked.stderr.startswith(f"flowctl: error: no store at {repo / 'asked.db'} (from "
                                   "$FLOWCTL_DB)")
    assert not (repo / "asked.db").exists()


def test_text_is_coloured_on_a_terminal_only(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from flowctl.cli import output

    old = write(tmp_path / "old", "c.yaml", CONTRACT)
    new = write(tmp_path / "new", "c.yaml", REVIEWED)
    monkeypatch.setattr(output, "is_terminal", lambda stream: True)
    coloured = invoke(["diff", str(old), str(new)], env=ENV).stdout
    assert "\x1b[33m  ~ stage 'legal-review': SLA 48h (business hours) -> 96h (business " \
           "hours)\x1b[0m\n" in coloured
    assert "\x1b[1;31m    ! weakens control: SLA lengthened from 48h to 96h\x1b[0m\n" in coloured
    plain = invoke(["diff", str(old), str(new)], env={**ENV, "NO_COLOR": "1"}).stdout
    assert "\x1b[" not in plain

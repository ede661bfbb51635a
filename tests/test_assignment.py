"""Assignment (candidate lists, pick, rules by a field, who a user field may
hold) and record operations (field defaults, ``set:``), from the engine to the
command line and the store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke, trust_workspace

from flowctl import api, engine
from flowctl.api.instances import process_from_source
from flowctl.definition.build import build_org
from flowctl.engine import Advance, Context, FieldRestricted, NoAssignee, Start, Workload
from flowctl.model import OrgDirectory, Process
from flowctl.store.base import JournalFilter
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
AT = "2026-12-07T09:00:00Z"

ORG_YAML = """\
kind: org
departments:
  - {id: company, head: grace}
  - {id: sales, head: carol, parent: company}
  - {id: sales-east, parent: sales}
  - {id: hr, head: hank, parent: company}
users:
  - {id: grace, department: company, roles: [general-manager, admin]}
  - {id: carol, department: sales, roles: [sales-manager]}
  - {id: alice, department: sales-east, roles: [sales-rep]}
  - {id: bob, department: sales, roles: [sales-rep]}
  - {id: dan, department: sales, roles: [sales-rep], away_until: "2026-12-10"}
  - {id: hank, department: hr, roles: [hr]}
roles:
  - {id: general-manager}
  - {id: admin}
  - {id: sales-manager}
  - {id: sales-rep}
  - {id: hr}
"""

ORG = build_org({
    "kind": "org",
    "departments": [
        {"id": "company", "head": "grace"},
        {"id": "sales", "head": "carol", "parent": "company"},
        {"id": "sales-east", "parent": "sales"},
        {"id": "hr", "head": "hank", "parent": "company"},
    ],
    "users": [
        {"id": "grace", "department": "company", "roles": ["general-manager", "admin"]},
        {"id": "carol", "department": "sales", "roles": ["sales-manager"]},
        {"id": "alice", "department": "sales-east", "roles": ["sales-rep"]},
        {"id": "bob", "department": "sales", "roles": ["sales-rep"]},
        {"id": "dan", "department": "sales", "roles": ["sales-rep"], "away_until": "2026-12-10"},
        {"id": "hank", "department": "hr", "roles": ["hr"]},
    ],
    "roles": [{"id": r} for r in ("general-manager", "admin", "sales-manager", "sales-rep", "hr")],
})

PROCESS = """\
kind: process
id: assign
name: Assignment
fields:
  region:
    type: enum
    values: [east, west, other]
  owner:
    type: user
    department: sales
    default: initiator
  opened_on:
    type: date
    default: now
  status:
    type: enum
    values: [open, won, lost]
    default: open
  discount:
    type: number
    minimum: 0
    default: 0
  approved_by:
    type: user
    role: sales-manager
  previous_owner:
    type: user
  approved_at:
    type: datetime
stages:
  - id: qualify
    kind: task
    start: true
    assignee:
      by: region
      cases:
        east: {user: alice}
        west: {user: bob}
      default: {role: sales-rep, pick: round-robin}
    fields:
      optional: [region, owner]
    results:
      done: approve
  - id: approve
    kind: approval
    approvers:
      - [{user: dan}, {user: carol}, {user: grace}]
    results:
      approve:
        to: handover
        set:
          approved_by: actor
          approved_at: now
      reject: qualify
  - id: handover
    kind: task
    assignee: {department: sales, pick: least-loaded}
    set:
      previous_owner: {field: owner}
      status: won
    fields:
      required: [owner]
    results:
      done: end
  - id: end
    kind: end
"""


def process(text: str = PROCESS) -> Process:
    return process_from_source(text, "assign.yaml")


def ctx(user: str, org: OrgDirectory = ORG, now: datetime = NOW,
        workload: Workload | None = None) -> Context:
    return Context(user, org, now, workload)


def begin(user: str = "alice", proc: Process | None = None, *, workload: Workload | None = None,
          **values: Any) -> engine.Transition:
    return engine.start(proc or process(), Start(values), ctx(user, workload=workload),
                        instance_id="assign-1", digest="d" * 64)


def events(tr: engine.Transition, kind: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in tr.events if e.kind == kind]


# ------------------------------------------------------------ defaults


def test_defaults_are_applied_at_start_and_journalled() -> None:
    tr = begin("bob", region="west")
    assert tr.instance.record == {
        "region": "west", "owner": "bob", "opened_on": "2026-12-07", "status": "open",
        "discount": 0,
    }
    assert [(e.kind, dict(e.data)) for e in tr.events[:5]] == [
        ("started", {"process": "assign", "name": "Assignment", "definition": "d" * 64,
                     "fields": {"region": "west"}}),
        ("field_changed", {"field": "owner", "from": None, "to": "bob", "set": "default",
                           "value": "initiator"}),
        ("field_changed", {"field": "opened_on", "from": None, "to": "2026-12-07",
                           "set": "default", "value": "now"}),
        ("field_changed", {"field": "status", "from": None, "to": "open", "set": "default",
                           "value": "'open'"}),
        ("field_changed", {"field": "discount", "from": None, "to": 0, "set": "default",
                           "value": "0"}),
    ]


def test_a_given_value_wins_over_the_default() -> None:
    tr = begin("bob", region="west", owner="alice")
    assert tr.instance.record["owner"] == "alice"
    assert [d["field"] for d in events(tr, "field_changed")] == [
        "opened_on", "status", "discount",
    ]


def test_a_default_outside_the_fields_limits_refuses_the_start() -> None:
    with pytest.raises(FieldRestricted) as err:
        begin("hank", region="west")
    assert err.value.message == (
        "field 'owner' holds only users with department sales; hank is not one"
        " (roles: hr, department: hr)"
    )
    assert err.value.hint == "users who may: carol, alice, bob, dan"
    assert err.value.exit_code == 1


# ------------------------------------------------------- restricted fields


def test_a_user_field_refuses_a_user_outside_its_department() -> None:
    with pytest.raises(FieldRestricted) as err:
        begin("alice", region="west", owner="hank")
    assert err.value.message.startswith("field 'owner' holds only users with department sales;")
    # a sub-department's member belongs to the department
    assert begin("bob", region="west", owner="alice").instance.record["owner"] == "alice"


def test_a_user_field_limited_to_a_role_refuses_others_on_set() -> None:
    """approved_by holds sales managers only: grace (an admin, first available
    once dan is away and carol ... is not) approving sets it to herself: refused."""
    proc = process()
    inst = begin("bob", region="west").instance
    inst = engine.apply(proc, inst, Advance("done"), ctx("bob")).instance
    assert inst.assignees == ("user:carol",)
    with pytest.raises(FieldRestricted) as err:
        engine.apply(proc, inst, Advance("approve"), ctx("grace"))
    assert err.value.message == (
        "field 'approved_by' holds only users with role sales-manager; grace is not one"
        " (roles: general-manager, admin, department: company)"
    )


# ---------------------------------------------------------- rules by a field


def test_a_rule_chooses_the_assignee_by_the_records_field() -> None:
    assert begin("bob", region="east").instance.assignees == ("user:alice",)
    tr = begin("alice", region="west")
    assert tr.instance.assignees == ("user:bob",)
    assert tr.instance.labels == {"user:bob": "record.region = west"}


def test_a_rule_without_a_matching_case_or_default_refuses() -> None:
    text = PROCESS.replace("      default: {role: sales-rep, pick: round-robin}\n", "")
    with pytest.raises(NoAssignee) as err:
        begin("bob", process(text), region="other")
    assert err.value.message == (
        "cannot find who handles stage 'qualify': it is chosen by record.region, which is"
        " 'other'; the cases are east, west, and there is no default"
    )
    assert err.value.hint == (
        "set it with --set region=VALUE (one of east, west), or add a default to the"
        " definition's assignee"
    )


# ------------------------------------------------------------------- pick


def test_round_robin_takes_the_member_after_the_last_pick_and_skips_the_away() -> None:
    # sales-rep members in org order: alice, bob, dan (away until 2026-12-10)
    first = begin("carol", region="other")
    assert first.instance.assignees == ("user:alice",)
    assert first.picks == (("role:sales-rep", "alice"),)
    assert events(first, "stage_entered")[0]["picked"] == [
        {"pick": "round-robin", "among": "role:sales-rep", "user": "alice"},
    ]
    after_alice = Workload(turns={"role:sales-rep": "alice"})
    assert begin("carol", workload=after_alice, region="other").instance.assignees == (
        "user:bob",
    )
    after_bob = Workload(turns={"role:sales-rep": "bob"})
    second = begin("carol", workload=after_bob, region="other")
    assert second.instance.assignees == ("user:alice",)  # dan is away: back to alice
    assert events(second, "stage_entered")[0]["picked"][0]["after"] == "bob"


def test_least_loaded_picks_the_member_holding_fewest_open_stages() -> None:
    proc = process()
    inst = begin("bob", region="west").instance
    inst = engine.apply(proc, inst, Advance("done"), ctx("bob")).instance
    load = Workload(load={"carol": 4, "alice": 2, "bob": 1, "dan": 0})
    tr = engine.apply(proc, inst, Advance("approve"), ctx("carol", workload=load))
    # dan (0) is away; bob holds 1; carol 4, alice 2
    assert tr.instance.assignees == ("user:bob",)
    assert tr.instance.labels == {"user:bob": "least-loaded of department sales"}
    entered = events(tr, "stage_entered")[-1]
    assert entered["picked"] == [{"pick": "least-loaded", "among": "department:sales",
                                  "user": "bob", "load": {"carol": 4, "alice": 2, "bob": 1}}]
    assert tr.picks == ()  # only round-robin keeps a turn in the store


def test_nobody_available_in_the_pool_refuses() -> None:
    away = build_org({
        "kind": "org",
        "users": [{"id": "zed", "roles": ["sales-rep"], "away_until": "2026-12-31"},
                  {"id": "amy", "roles": ["sales-rep"], "away_until": "2026-12-07"}],
        "roles": [{"id": "sales-rep"}],
    })
    text = PROCESS.replace("    department: sales\n    default: initiator\n", "")
    with pytest.raises(NoAssignee) as err:
        engine.start(process(text), Start({"region": "other", "owner": "zed"}),
                     ctx("zed", org=away), instance_id="a-1", digest="d" * 64)
    assert err.value.message == (
        "cannot find who handles stage 'qualify': nobody of role sales-rep is available"
        " (zed is away until 2026-12-31; amy is away until 2026-12-07)"
    )


# -------------------------------------------------------- candidate lists


def test_the_first_available_candidate_takes_it() -> None:
    proc = process()
    inst = begin("bob", region="west").instance
    tr = engine.apply(proc, inst, Advance("done"), ctx("bob"))
    # dan is away until 2026-12-10: carol, the second candidate, takes it
    assert tr.instance.assignees == ("user:carol",)
    assert tr.instance.labels == {"user:carol": "candidate 2, the first available"}
    later = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    tr = engine.apply(proc, inst, Advance("done"), ctx("bob", now=later))
    assert tr.instance.assignees == ("user:dan",)
    assert tr.instance.labels == {"user:dan": "first candidate"}


def test_a_candidate_the_stage_excludes_is_passed_over() -> None:
    # carol starts it: an approval excludes its initiator, so grace is next
    proc = process()
    inst = begin("carol", region="west").instance
    inst = engine.apply(proc, inst, Advance("done"), ctx("bob")).instance
    assert inst.assignees == ("user:grace",)


def test_no_candidate_available_refuses_and_says_why() -> None:
    proc = process()
    inst = begin("carol", region="west").instance
    org = build_org({
        "kind": "org",
        "users": [{"id": u, "away_until": "2026-12-31", "roles": r}
                  for u, r in (("dan", []), ("grace", []), ("bob", ["sales-rep"]))]
        + [{"id": "carol", "roles": ["sales-manager"]}],
        "roles": [{"id": "sales-rep"}, {"id": "sales-manager"}],
    })
    with pytest.raises(NoAssignee) as err:
        engine.apply(proc, inst, Advance("done"), ctx("bob", org=org))
    assert err.value.message == (
        "cannot find who handles stage 'approve': none of its 3 candidates is available"
        " (dan is away until 2026-12-31; carol started assign-1, and an approval excludes"
        " its initiator unless it says allow_initiator: true; grace is away until 2026-12-31)"
    )
    assert err.value.hint == (
        "wait until one is back, change away_until in the org directory, or add a"
        " candidate to the definition"
    )


# ------------------------------------------------------------------ set:


def test_set_on_a_result_and_on_entering_is_journalled_as_field_changes() -> None:
    proc = process()
    inst = begin("bob", region="west", owner="alice").instance
    inst = engine.apply(proc, inst, Advance("done"), ctx("bob")).instance
    tr = engine.apply(proc, inst, Advance("approve"), ctx("carol"))
    changed = events(tr, "field_changed")
    assert changed == [
        {"field": "approved_by", "from": None, "to": "carol",
         "set": "with result 'approve'", "value": "actor"},
        {"field": "approved_at", "from": None, "to": AT, "set": "with result 'approve'",
         "value": "now"},
        {"field": "previous_owner", "from": None, "to": "alice",
         "set": "on entering 'handover'", "value": "record.owner"},
        {"field": "status", "from": "open", "to": "won", "set": "on entering 'handover'",
         "value": "'won'"},
    ]
    assert [e.kind for e in tr.events] == [
        "field_changed", "field_changed", "result", "field_changed", "field_changed",
        "stage_entered",
    ]
    assert tr.instance.record["previous_owner"] == "alice"


# ------------------------------------------------ the store and the CLI


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    procs = tmp_path / "processes"
    procs.mkdir()
    (procs / "assign.yaml").write_text(PROCESS, encoding="utf-8")
    (procs / "org.yaml").write_text(ORG_YAML, encoding="utf-8")
    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCTL_NOW", AT)
    return tmp_path


def test_cli_refuses_a_user_outside_the_fields_department_and_writes_nothing(
    workspace: Path,
) -> None:
    result = invoke(["start", "assign", "--as", "bob", "--set", "region=west",
                     "--set", "owner=hank"])
    assert result.exit_code == 1
    assert result.stderr == (
        "flowctl: error: field 'owner' holds only users with department sales; hank is not"
        " one (roles: hr, department: hr)\n"
        "flowctl: hint: users who may: carol, alice, bob, dan\n"
    )
    assert not (workspace / ".flowctl").exists()


def test_round_robin_turns_are_kept_in_the_store(workspace: Path) -> None:
    who = []
    for i in range(4):
        result = invoke(["start", "assign", "--as", "carol", "--set", "region=other"])
        assert result.exit_code == 0, result.stderr
        who.append(f"assign-{i + 1}")
    with SqliteStore.open(str(workspace / ".flowctl" / "flowctl.db")) as st:
        held = [row.assignees for i in who if (row := st.get_instance(i)) is not None]
        turns = st._conn.execute("SELECT pool, user FROM pick_turns").fetchall()
    assert turns == [("role:sales-rep", "bob")]
    assert held == [("user:alice",), ("user:bob",), ("user:alice",), ("user:bob",)]
    shown = invoke(["journal", "assign-2", "--as", "grace"])
    assert "stage_entered  'qualify' for bob (bob: round-robin among role sales-rep, after" \
        " alice)" in shown.stdout


def test_round_robin_is_fair_under_concurrent_operators(workspace: Path) -> None:
    """Eight threads start 24 instances at once: the store's turn is read and
    written in each start's transaction, so the picks alternate exactly."""
    db = str(workspace / ".flowctl" / "flowctl.db")
    api.start("assign", as_user="carol", values={"region": "other"}, db=db)  # creates the store
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                api.start("assign", as_user="carol", values={"region": "other"}, db=db)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with SqliteStore.open(db) as st:
        entries = [e for e in st.journal(JournalFilter()) if e.kind == "stage_entered"]
    picked = [e.data["picked"][0]["user"] for e in entries]
    assert len(picked) == 25
    assert picked == ["alice", "bob"] * 12 + ["alice"]


# ------------------------------------------------- docs/format.md examples


def _text_blocks(heading: str) -> list[str]:
    """The ```text blocks of the docs/format.md section under ``heading``."""
    doc = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    start = doc.index(f"\n### {heading}\n")
    end = min(i for i in (doc.find("\n## ", start + 1), doc.find("\n### ", start + 1))
              if i > 0)
    section = doc[start:end]
    return [b.split("\n", 1)[1] for b in section.split("```text")[1:]
            for b in [b.split("```", 1)[0]]]


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import shutil

    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCTL_NOW", AT)
    return tmp_path


def _away(folder: Path, **until: str) -> None:
    org = folder / "processes" / "org.yaml"
    text = org.read_text(encoding="utf-8")
    for user, day in until.items():
        anchor = f"  - id: {user}\n"
        assert anchor in text
        text = text.replace(anchor, f'{anchor}    away_until: "{day}"\n')
    org.write_text(text, encoding="utf-8")


def _deal_to_approval(seen: list[str]) -> None:
    for args in (
        ["start", "deal-blueprint", "--as", "alice", "--set", "deal_name=ACME",
         "--set", "amount=1000"],
        ["advance", "deal-blueprint-1", "--as", "alice", "--result", "qualified"],
        ["advance", "deal-blueprint-1", "--as", "alice", "--result", "sent",
         "--set", "closing_date=2027-01-10", "--set", "discount=25",
         "--set", "discount_reason=a three-year contract"],
    ):
        result = invoke(args)
        assert result.exit_code == 0, result.stderr
        seen.append(result.stdout)


def test_the_deal_blueprint_prints_what_the_docs_show(examples: Path) -> None:
    seen: list[str] = []
    refused = invoke(["start", "deal-blueprint", "--as", "alice", "--set", "owner=frank"])
    assert refused.exit_code == 1
    assert not (examples / ".flowctl").exists()
    seen.append(refused.stderr)
    _deal_to_approval(seen)
    approved = invoke(["advance", "deal-blueprint-1", "--as", "carol", "--result", "approve"])
    assert approved.exit_code == 0, approved.stderr
    seen.append(invoke(["journal", "deal-blueprint-1", "--as", "grace"]).stdout)
    out = "".join(seen)
    blocks = (_text_blocks("Who a user field may hold") + _text_blocks("Record operations (set)")
              + _text_blocks("Picking one member"))
    assert len(blocks) == 3
    for block in blocks:
        for line in block.splitlines():
            if not line.startswith("$ "):
                assert line in out
    operators = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    (quoted,) = [ln for ln in operators.splitlines() if "deal-blueprint-1  v4" in ln]
    assert quoted in out


def test_a_candidate_list_prints_what_the_docs_show(examples: Path) -> None:
    _away(examples, carol="2026-12-24")
    seen: list[str] = []
    _deal_to_approval(seen)
    taken, refusal = _text_blocks("Candidate lists")
    assert taken.strip() in "".join(seen)
    _away(examples, grace="2026-12-31")
    invoke(["advance", "deal-blueprint-1", "--as", "grace", "--result", "reject"])
    result = invoke(["advance", "deal-blueprint-1", "--as", "alice", "--result", "sent"])
    assert result.exit_code == 1
    assert result.stderr == refusal


def test_least_loaded_counts_the_open_stages_in_the_store(workspace: Path) -> None:
    for _ in range(4):
        assert invoke(["start", "assign", "--as", "bob", "--set", "region=west"]).exit_code == 0
    # assign-3 waits for carol's approval; assign-2 and assign-4 wait for bob
    assert invoke(["advance", "assign-3", "--as", "bob", "-r", "done"]).exit_code == 0
    assert invoke(["advance", "assign-1", "--as", "bob", "-r", "done"]).exit_code == 0
    result = invoke(["advance", "assign-1", "--as", "carol", "-r", "approve"])
    assert result.exit_code == 0, result.stderr
    # department sales: carol holds 1 (assign-3), alice 0, bob 2, dan is away
    assert result.stdout.splitlines()[-1] == (
        "assign-1: at 'handover', waiting for alice (least-loaded of department sales)"
    )
    shown = invoke(["journal", "assign-1", "--as", "grace"]).stdout.splitlines()
    assert shown[-1].endswith(
        "stage_entered  'handover' for alice (alice: least-loaded among department sales,"
        " open stages alice=0, bob=2, carol=1)"
    )


def test_advance_refuses_a_user_outside_the_fields_role(workspace: Path) -> None:
    assert invoke(["start", "assign", "--as", "bob", "--set", "region=west"]).exit_code == 0
    before = invoke(["journal", "assign-1", "--as", "grace"]).stdout
    result = invoke(["advance", "assign-1", "--as", "bob", "-r", "done", "--set", "owner=hank"])
    assert (result.exit_code, result.stderr) == (1, (
        "flowctl: error: field 'owner' holds only users with department sales; hank is not"
        " one (roles: hr, department: hr)\n"
        "flowctl: hint: users who may: carol, alice, bob, dan\n"
    ))
    assert invoke(["journal", "assign-1", "--as", "grace"]).stdout == before


def test_the_field_a_start_stages_rule_reads_may_be_given_at_start() -> None:
    """The start stage does not declare region; its assignee rule reads it, so
    `start --set region=...` may give it (as the field of a {field: ...} assignee)."""
    text = PROCESS.replace("      optional: [region, owner]\n", "      optional: [owner]\n")
    tr = begin("bob", process(text), region="west")
    assert tr.instance.assignees == ("user:bob",)


def test_lint_checks_the_users_a_rule_names_and_the_fields_limits(tmp_path: Path) -> None:
    text = PROCESS.replace(
        "  previous_owner:\n    type: user\n",
        "  previous_owner:\n    type: user\n    role: sales-lead\n",
    ).replace(
        "    assignee: {department: sales, pick: least-loaded}\n",
        "    assignee:\n      by: previous_owner\n      cases:\n        alice: {user: alice}\n"
        "        alise: {user: bob}\n      default: {department: sales, pick: least-loaded}\n",
    )
    (tmp_path / "assign.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "org.yaml").write_text(ORG_YAML, encoding="utf-8")
    result = invoke(["lint", "--no-cache", str(tmp_path / "assign.yaml"),
                     "--org", str(tmp_path / "org.yaml")])
    assert result.exit_code == 1
    found = [line.split(": ", 1)[1] for line in result.stdout.splitlines()
             if line.startswith(str(tmp_path))]
    assert found == [
        "FL402 role 'sales-lead' is not in the org directory; known roles: admin,"
        " general-manager, hr, sales-manager, sales-rep",
        "FL401 user 'alise' is not in the org directory; did you mean 'alice'?",
    ]

"""Approvals a team can trust: what a stage may change (--set only the fields a
stage or result declares), segregation of duties (approvals exclude the
initiator, `exclude: [initiator, previous-approvers]`) and scope that follows
the org tree (a department includes its sub-departments unless `exact`).
The command line runs the real entry point on the examples in processes/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl import engine
from flowctl.api.definitions import load_org
from flowctl.definition.build import build_org, build_process
from flowctl.engine import Advance, Context, Instance, NotPermitted, Reassign, Refused, Start
from flowctl.model import OrgDirectory, Process

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"
KEY = "key-account-filing-approval"
CONTRACT = "contract-approval"

# processes/org.yaml with a sub-department: sales-east (head dave) under sales,
# and alice moved into it
SUB_ORG = (ROOT / "processes" / "org.yaml").read_text(encoding="utf-8").replace(
    """  - id: finance
    name: Finance""",
    """  - id: sales-east
    name: Sales East
    head: dave
    parent: sales
  - id: finance
    name: Finance""",
).replace(
    """  - id: alice
    name: Alice Wang
    department: sales""",
    """  - id: alice
    name: Alice Wang
    department: sales-east""",
).replace(
    """  - id: bob
    name: Bob Li""",
    """  - id: dave
    name: Dave Park
    department: sales-east
    roles: [sales-rep]
  - id: bob
    name: Bob Li""",
)


class Cli:
    def __init__(self, tmp_path: Path, org: str | None = None) -> None:
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": str(tmp_path / "flowctl.db"),
            "FLOWCTL_PROCESSES": PROCESSES,
            "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": org,
            "FLOWCTL_USER": None,
            "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, user: str, code: int = 0) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def journal(self, instance: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(
            self("journal", instance, "--json", user="grace").stdout
        )
        return entries

    def version(self, instance: str) -> int:
        card = json.loads(self("show", instance, "--json", user="grace").stdout)
        return int(card["instance"]["version"])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def sub_cli(tmp_path: Path) -> Cli:
    org = tmp_path / "org.yaml"
    org.write_text(SUB_ORG, encoding="utf-8")
    return Cli(tmp_path, str(org))


# ------------------------------------------------- what a stage may change


def _contract_at_finance_review(cli: Cli) -> str:
    cli("start", CONTRACT, "--set", "customer=Acme", "--set", "amount=150000",
        "--set", "credit_score=50", "--set", "term_months=6", user="alice")
    c1 = f"{CONTRACT}-1"
    cli("advance", c1, "-r", "submit", user="alice")
    cli("advance", c1, "-r", "approve", user="carol")
    return c1


def test_a_reviewer_cannot_lower_the_amount_to_skip_the_general_manager(cli: Cli) -> None:
    c1 = _contract_at_finance_review(cli)
    before = (cli.journal(c1), cli.version(c1))
    result = cli("advance", c1, "-r", "approve", "--set", "amount=5000", "--stage",
                 "finance-review", user="frank", code=1)
    assert result.stdout == ""
    assert result.stderr == (
        "flowctl: error: field 'amount' cannot be set at stage 'finance-review' with result"
        " 'approve'; fields that may be set there: none\n"
        "flowctl: hint: a stage sets only the fields its definition declares (fields: required,"
        " optional, or the result's fields); drop the --set\n"
    )
    assert (cli.journal(c1), cli.version(c1)) == before  # nothing written
    # the result's own fields may be set with it, and nothing else
    result = cli("advance", c1, "-r", "reject", "--set", "rejection_reason=late",
                 "--set", "amount=5000", "--stage", "finance-review", user="frank", code=1)
    assert result.stderr.splitlines()[0] == (
        "flowctl: error: field 'amount' cannot be set at stage 'finance-review' with result"
        " 'reject'; fields that may be set there: rejection_reason"
    )
    # approving without changing anything: the countersignature, started beside the
    # finance review because of the amount, still waits
    out = cli("advance", c1, "-r", "approve", "--stage", "finance-review",
              user="frank").stdout.splitlines()
    assert out[-1].startswith(f"{c1}:   branch general-manager: at 'executive-signature'")
    assert [e for e in cli.journal(c1) if e["kind"] == "field_changed"] == []


def test_start_takes_only_the_start_stages_fields(cli: Cli) -> None:
    result = cli("start", CONTRACT, "--set", "customer=Acme", "--set", "rejection_reason=x",
                 user="alice", code=1)
    assert result.stderr.splitlines()[0] == (
        "flowctl: error: field 'rejection_reason' cannot be set when starting"
        " 'contract-approval'; fields that may be set at start: customer, amount,"
        " credit_score, term_months"
    )
    assert not Path(cli.env["FLOWCTL_DB"] or "").exists()  # a refused start leaves no store
    # the field the start stage's assignee is found through may be given at start
    cli("start", "lost-customer-recovery", "--set", "owner=bob", "--set", "customer=C",
        user="alice")
    # an undeclared field is still a usage error
    result = cli("start", CONTRACT, "--set", "colour=red", user="alice", code=2)
    assert "has no field 'colour'" in result.stderr


# ------------------------------------------------- segregation of duties


def test_a_head_cannot_approve_his_own_request(sub_cli: Cli) -> None:
    k1 = f"{KEY}-1"
    sub_cli("start", KEY, "--set", "owner=dave", user="dave")
    out = sub_cli("advance", k1, "-r", "done", "--set", "level=key", user="dave").stdout
    assert out.splitlines()[-1] == (
        f"{k1}: at 'level-approval', waiting for dave (head of sales-east), due"
        " 2026-11-24T09:00:00Z"
    )
    before = sub_cli.journal(k1)
    result = sub_cli("advance", k1, "-r", "approve", user="dave", code=1)
    assert result.stderr == (
        f"flowctl: error: dave may not approve 'level-approval': dave started {k1}, and an"
        " approval excludes its initiator unless it says allow_initiator: true\n"
        "flowctl: hint: who else may act: an admin (grace)\n"
    )
    assert sub_cli.journal(k1) == before
    # his inbox does not offer what he may not decide
    assert sub_cli("inbox", "--json", user="dave").stdout.strip() == "[]"
    # an admin may decide it, and cannot hand it back to dave
    result = sub_cli("reassign", k1, "dave", user="grace", code=1)
    assert "dave is already the assignee" in result.stderr
    sub_cli("advance", k1, "-r", "approve", user="grace")


def test_the_same_with_the_bundled_org(cli: Cli) -> None:
    k1 = f"{KEY}-1"
    cli("start", KEY, "--set", "owner=carol", user="carol")
    cli("advance", k1, "-r", "done", "--set", "level=key", user="carol")
    result = cli("advance", k1, "-r", "approve", user="carol", code=1)
    assert result.stderr.splitlines() == [
        f"flowctl: error: carol may not approve 'level-approval': carol started {k1}, and an"
        " approval excludes its initiator unless it says allow_initiator: true",
        "flowctl: hint: who else may act: an admin (grace)",
    ]


ORG = load_org(processes_dir=PROCESSES)


def _ctx(user: str, org: OrgDirectory = ORG) -> Context:
    return Context(user, org, engine.parse_time(NOW))


def _inline(stages: list[dict[str, Any]], **extra: Any) -> Process:
    return build_process({"id": "inline", "name": "Inline", **extra, "stages": stages})


def _start(p: Process, user: str, org: OrgDirectory = ORG, **values: Any) -> Instance:
    return engine.start(p, Start(values), _ctx(user, org), instance_id="inline-1",
                        digest="d" * 64).instance


def _adv(p: Process, inst: Instance, user: str, result: str) -> Instance:
    return engine.apply(p, inst, Advance(result), _ctx(user)).instance


TWO_REVIEWS = _inline([
    {"id": "ask", "kind": "task", "start": True, "assignee": "initiator",
     "results": {"done": "first"}},
    {"id": "first", "kind": "approval", "approvers": [{"role": "sales-manager"}],
     "results": {"approve": "second", "reject": "ask"}},
    {"id": "second", "kind": "approval", "exclude": ["previous-approvers"],
     "approvers": [{"role": "sales-manager"}, {"user": "frank"}],
     "results": {"approve": "done", "reject": "first"}},
    {"id": "done", "kind": "end"},
])


def test_previous_approvers_are_excluded_from_another_approval() -> None:
    inst = _adv(TWO_REVIEWS, _start(TWO_REVIEWS, "alice"), "alice", "done")
    inst = _adv(TWO_REVIEWS, inst, "carol", "approve")
    assert inst.approved == (("first", "carol"),)
    with pytest.raises(NotPermitted) as exc:
        _adv(TWO_REVIEWS, inst, "carol", "approve")
    assert exc.value.message == (
        "carol may not approve 'second': carol approved 'first' of inline-1, and 'second'"
        " excludes previous approvers"
    )
    assert exc.value.hint == "who else may act: frank, or an admin (grace)"
    # sent back, carol may review her own stage again
    back = _adv(TWO_REVIEWS, inst, "frank", "reject")
    assert back.stage == "first"
    assert _adv(TWO_REVIEWS, back, "carol", "approve").stage == "second"
    assert _adv(TWO_REVIEWS, inst, "frank", "approve").status == "completed"


def test_a_task_may_exclude_its_initiator_and_an_approval_may_allow_it() -> None:
    p = _inline([
        {"id": "check", "kind": "task", "start": True, "assignee": {"role": "sales-rep"},
         "exclude": ["initiator"], "results": {"done": "self"}},
        {"id": "self", "kind": "approval", "approvers": ["initiator"],
         "allow_initiator": True, "results": {"approve": "end", "reject": "check"}},
        {"id": "end", "kind": "end"},
    ])
    inst = _start(p, "alice")
    with pytest.raises(NotPermitted) as exc:
        _adv(p, inst, "alice", "done")
    assert exc.value.message == (
        "alice may not advance 'check': alice started inline-1, and it excludes its initiator"
    )
    inst = _adv(p, inst, "bob", "done")
    assert _adv(p, inst, "alice", "approve").status == "completed"
    with pytest.raises(NotPermitted) as exc:
        engine.apply(p, _start(p, "bob"), Reassign("bob"), _ctx("alice"))
    assert exc.value.message == (
        "cannot reassign 'check' to bob: bob started inline-1, and it excludes its initiator"
    )


# ------------------------------------------------- the org tree


def test_alice_in_a_sub_department_may_start(sub_cli: Cli) -> None:
    out = sub_cli("start", KEY, "--set", "owner=alice", user="alice").stdout.splitlines()
    assert out[-1] == f"{KEY}-1: at 'edit-customer', waiting for alice (initiator)"


def test_exact_departments_leave_sub_departments_out() -> None:
    org = build_org({"departments": [
        {"id": "sales", "head": "carol"},
        {"id": "sales-east", "parent": "sales"},
        {"id": "east-retail", "parent": "sales-east"},
    ], "users": [
        {"id": "carol", "department": "sales"},
        {"id": "alice", "department": "sales-east"},
        {"id": "erin", "department": "east-retail"},
    ]})
    stages = [{"id": "a", "kind": "task", "start": True, "assignee": "initiator",
               "results": {"done": "z"}}, {"id": "z", "kind": "end"}]
    tree = _inline(stages, starters={"departments": ["sales"]})
    exact = _inline(stages, starters={"departments": ["sales"], "exact": True})
    for user in ("carol", "alice", "erin"):
        assert _start(tree, user, org).initiator == user
    assert _start(exact, "carol", org).initiator == "carol"
    with pytest.raises(Refused) as exc:
        _start(exact, "erin", org)
    assert exc.value.message == "erin may not start 'inline'; it is started by: department sales"


def test_a_department_without_a_head_answers_through_the_one_above() -> None:
    org = build_org({"departments": [
        {"id": "sales", "head": "carol"},
        {"id": "sales-east", "parent": "sales"},
    ], "users": [
        {"id": "carol", "department": "sales"},
        {"id": "alice", "department": "sales-east"},
    ]})
    p = _inline([
        {"id": "a", "kind": "task", "start": True, "assignee": "initiator",
         "results": {"done": "b"}},
        {"id": "b", "kind": "approval",
         "approvers": [{"relation": "department-head", "of": "initiator"}],
         "results": {"approve": "c", "reject": "a"}},
        {"id": "c", "kind": "task", "assignee": {"department": "sales-east"},
         "results": {"done": "z"}},
        {"id": "z", "kind": "end"},
    ])
    inst = engine.apply(p, _start(p, "alice", org), Advance("done"), _ctx("alice", org)).instance
    assert (inst.assignees, dict(inst.labels)) == (("user:carol",), {"user:carol": "head of sales"})
    inst = engine.apply(p, inst, Advance("approve"), _ctx("carol", org)).instance
    assert (inst.assignees, dict(inst.labels)) == (("user:carol",), {"user:carol": "head of sales"})


def test_a_result_may_declare_optional_fields() -> None:
    p = _inline([
        {"id": "review", "kind": "approval", "start": True, "approvers": [{"user": "carol"}],
         "results": {"approve": {"to": "z", "fields": {"optional": ["remark"]}},
                     "reject": "z"}},
        {"id": "z", "kind": "end"},
    ], fields={"remark": {"type": "string"}})
    inst = _start(p, "alice")
    with pytest.raises(Refused) as exc:
        engine.apply(p, inst, Advance("reject", {"remark": "no"}), _ctx("carol"))
    assert exc.value.message == (
        "field 'remark' cannot be set at stage 'review' with result 'reject'; fields that may be"
        " set there: none"
    )
    done = engine.apply(p, inst, Advance("approve", {"remark": "fine"}), _ctx("carol"))
    assert done.instance.record == {"remark": "fine"}


def test_an_escalation_does_not_hand_an_approval_to_its_initiator() -> None:
    p = _inline([
        {"id": "ask", "kind": "task", "start": True, "assignee": "initiator",
         "results": {"done": "review"}},
        {"id": "review", "kind": "approval", "approvers": [{"department": "sales"}],
         "results": {"approve": "z", "reject": "ask"},
         "sla": {"within": "2h", "escalations": [
             {"after": "1h", "action": "reassign",
              "to": {"relation": "manager", "of": "assignee"}}]}},
        {"id": "z", "kind": "end"},
    ])
    inst = _adv(p, _start(p, "grace"), "grace", "done")  # carol's manager is grace
    assert inst.assignees == ("user:carol",)
    (timer,) = [t for t in inst.timers if t.kind == "escalation"]
    tr = engine.apply(p, inst, engine.Fire(timer.key),
                      Context(engine.SYSTEM_ACTOR, ORG, engine.parse_time("2026-11-23T10:00:00Z")))
    assert tr.instance.assignees == ("user:carol",)
    (failed,) = [e for e in tr.events if e.kind == "timer_failed"]
    assert failed.data["error"] == (
        "an escalation cannot reassign 'review' to grace: grace started inline-1, and an"
        " approval excludes its initiator unless it says allow_initiator: true"
    )

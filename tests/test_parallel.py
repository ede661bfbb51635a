"""Parallel stages: branches started at once, their join, and what runs in them.

The engine is pure, so most of these drive it directly with small inline
definitions; the docs' example is linted and run as a user would.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_engine import NOW, PROCESSES, act, adv, ctx, kinds, refusal, start

from flowctl import api, engine
from flowctl.definition.build import build_process
from flowctl.engine import Advance, Begin, Cancel, Fire, Instance, Pause, Reassign, Resume
from flowctl.engine import migrate as engine_migrate
from flowctl.model import Process

ROOT = Path(__file__).resolve().parent.parent


def review(stage_id: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"id": stage_id, "kind": "task", "assignee": {"user": user},
            "results": {"approve": "done", "reject": "rejected"}, **extra}


def forked(complete: Any = "all", on_reject: str = "cancel-others",
           b_when: str | None = None, **b_extra: Any) -> Process:
    b: dict[str, Any] = {"name": "b", "to": "b-review"}
    if b_when is not None:
        b["when"] = b_when
    return build_process({"id": "forked", "name": "Forked", "fields": {
        "amount": {"type": "number"}}, "stages": [
        {"id": "open", "kind": "task", "start": True, "assignee": "initiator",
         "fields": {"optional": ["amount"]}, "results": {"go": "reviews"}},
        {"id": "reviews", "kind": "parallel", "branches": [
            {"name": "a", "to": "a-review"}, b, {"name": "c", "to": "c-review"}]},
        review("a-review", "carol"),
        review("b-review", "frank", **b_extra),
        review("c-review", "linda"),
        {"id": "done", "kind": "join", "fork": "reviews", "complete": complete,
         "on_reject": on_reject, "next": "ok"},
        {"id": "ok", "kind": "end", "outcome": "approved"},
        {"id": "rejected", "kind": "end", "outcome": "rejected"},
    ]})


def opened(p: Process, **values: Any) -> Instance:
    return act(p, start(p, "alice"), Advance("go", values), "alice").instance


def test_the_branches_start_at_once_each_with_its_own_stage() -> None:
    p = forked()
    tr = act(p, start(p, "alice"), Advance("go"), "alice")
    assert kinds(tr) == [
        ("result", "open", "go"), ("stage_entered", "reviews", None),
        ("stage_entered", "a-review", None), ("stage_entered", "b-review", None),
        ("stage_entered", "c-review", None),
    ]
    assert tr.events[1].data == {"branches": ["a", "b", "c"], "join": "done",
                                 "complete": "all", "needed": 3}
    assert [e.data.get("branch") for e in tr.events[2:]] == ["a", "b", "c"]
    inst = tr.instance
    assert (inst.status, inst.stage, inst.fork, inst.active_stages) == (
        "active", "reviews", "reviews", ("a-review", "b-review", "c-review"))
    assert inst.assignees == ("user:carol", "user:frank", "user:linda")
    assert [(n.user, n.stage) for n in tr.notices] == [
        ("carol", "a-review"), ("frank", "b-review"), ("linda", "c-review")]


def test_all_waits_for_every_branch() -> None:
    p = forked()
    inst = adv(p, opened(p), "carol", "approve")
    inst = adv(p, inst, "frank", "approve")
    assert (inst.status, inst.active_stages) == ("active", ("c-review",))
    assert [(b.name, b.status, b.stage) for b in inst.branches] == [
        ("a", "joined", "done"), ("b", "joined", "done"), ("c", "active", "c-review")]
    tr = act(p, inst, Advance("approve"), "linda")
    assert kinds(tr)[-3:] == [
        ("branch_joined", "done", None), ("joined", "done", None), ("completed", "ok", None)]
    assert tr.events[-2].data == {"branches": ["a", "b", "c"], "complete": "all", "to": "ok"}


def test_any_one_branch_completes_the_join_and_the_others_are_cancelled() -> None:
    p = forked(complete="any")
    tr = act(p, opened(p), Advance("approve", comment="fine"), "carol")
    assert kinds(tr) == [
        ("result", "a-review", "approve"),
        ("branch_joined", "done", None),
        ("branch_cancelled", "b-review", None),
        ("branch_cancelled", "c-review", None),
        ("joined", "done", None),
        ("completed", "ok", None),
    ]
    assert tr.events[2].data == {
        "branch": "b", "reason": "the join 'done' is complete (1 of 3 branches reached it)"}
    assert tr.events[4].data == {"branches": ["a"], "cancelled": ["b", "c"], "complete": "any",
                                 "to": "ok"}
    told = [(n.user, n.kind, n.message) for n in tr.notices if n.kind == "cancelled"]
    assert told == [
        ("frank", "cancelled", "forked-1: 'b-review' is no longer needed: the join 'done' is"
         " complete (1 of 3 branches reached it)"),
        ("linda", "cancelled", "forked-1: 'c-review' is no longer needed: the join 'done' is"
         " complete (1 of 3 branches reached it)"),
    ]
    assert (tr.instance.status, tr.instance.outcome, tr.instance.timers) == (
        "completed", "approved", ())


def test_n_of_m() -> None:
    p = forked(complete=2)
    inst = adv(p, opened(p), "linda", "approve")
    assert inst.active_stages == ("a-review", "b-review")
    tr = act(p, inst, Advance("approve"), "frank")
    assert kinds(tr)[1:4] == [
        ("branch_joined", "done", None), ("branch_cancelled", "a-review", None),
        ("joined", "done", None)]
    assert tr.events[1].data == {"branch": "b", "joined": 2, "needed": 2}


def test_a_reject_ends_the_instance_and_cancels_the_others_by_default() -> None:
    p = forked()
    inst = adv(p, opened(p), "carol", "approve")
    tr = act(p, inst, Advance("reject", comment="no"), "frank")
    assert kinds(tr) == [
        ("result", "b-review", "reject"),
        ("branch_ended", "rejected", None),
        ("branch_cancelled", "c-review", None),
        ("completed", "rejected", None),
    ]
    assert tr.events[1].data == {"branch": "b", "outcome": "rejected",
                                 "policy": "cancel-others"}
    assert (tr.instance.outcome, tr.instance.fork, tr.instance.assignees) == (
        "rejected", None, ())
    assert ("alice", "rejected", "forked-1: rejected at 'rejected' (outcome: rejected);"
            " reason: no") in [(n.user, n.kind, n.message) for n in tr.notices]


def test_finish_others_lets_the_others_finish_then_ends_at_the_reject() -> None:
    p = forked(on_reject="finish-others")
    tr = act(p, opened(p), Advance("reject"), "carol")
    assert kinds(tr)[1:] == [("branch_ended", "rejected", None)]
    inst = tr.instance
    assert (inst.status, inst.active_stages) == ("active", ("b-review", "c-review"))
    inst = adv(p, inst, "frank", "approve")
    assert inst.status == "active"
    tr = act(p, inst, Advance("approve"), "linda")
    assert kinds(tr) == [
        ("result", "c-review", "approve"), ("branch_joined", "done", None),
        ("completed", "rejected", None)]
    assert tr.instance.outcome == "rejected"


def test_a_branch_when_starts_it_only_when_it_holds() -> None:
    p = forked(b_when="record.amount > 10")
    tr = act(p, start(p, "alice"), Advance("go", {"amount": "5"}), "alice")
    assert tr.events[2].data == {
        "branches": ["a", "c"], "join": "done", "complete": "all", "needed": 2,
        "skipped": {"b": "record.amount > 10"}, "values": {"amount": 5},
    }
    assert tr.instance.active_stages == ("a-review", "c-review")
    assert opened(p, amount="50").active_stages == ("a-review", "b-review", "c-review")


def test_a_branch_condition_that_cannot_be_evaluated_is_refused() -> None:
    p = forked(b_when="record.amount > 10")
    with pytest.raises(engine.Refused) as exc:
        act(p, start(p, "alice"), Advance("go"), "alice")
    assert refusal(exc).startswith(
        "cannot start the branches of 'reviews': condition `record.amount > 10` failed:")


def test_several_active_stages_need_one_named() -> None:
    p = forked()
    inst = opened(p)
    with pytest.raises(engine.StageChoice) as exc:
        act(p, inst, Advance("approve"), "grace")
    assert refusal(exc) == (
        "forked-1 has 3 active stages (grace holds none of them): 'a-review' (branch a, carol);"
        " 'b-review' (branch b, frank); 'c-review' (branch c, linda); name the one you mean"
    )
    assert exc.value.hint == "add --stage STAGE, e.g. --stage a-review"
    assert exc.value.active == ("a-review", "b-review", "c-review")
    tr = act(p, inst, Advance("approve", stage="b-review"), "grace")  # an admin names it
    assert tr.events[0].data == {"as_admin": True, "branch": "b"}
    with pytest.raises(engine.StageChoice) as exc:
        act(p, inst, Advance("approve", stage="done"), "carol")
    assert refusal(exc).startswith(
        "stage 'done' cannot be advanced: it is not an active stage of forked-1; active stages:")
    with pytest.raises(engine.NotPermitted) as exc:  # a stage someone else holds
        act(p, inst, Advance("approve", stage="b-review"), "carol")
    assert refusal(exc) == "only frank can advance 'b-review'"


def test_begin_and_reassign_act_in_one_branch() -> None:
    p = forked()
    tr = act(p, opened(p), Begin(), "frank")
    assert (kinds(tr), tr.events[0].data) == ([("began", "b-review", None)], {"branch": "b"})
    assert [(b.name, b.stage_state) for b in tr.instance.branches] == [
        ("a", "not started"), ("b", "in progress"), ("c", "not started")]
    tr = act(p, tr.instance, Reassign("bob", stage="b-review"), "frank")
    assert tr.events[0].data == {"from": ["user:frank"], "to": "user:bob", "branch": "b"}
    assert tr.instance.assignees == ("user:carol", "user:bob", "user:linda")
    assert adv(p, tr.instance, "bob", "approve").active_stages == ("a-review", "c-review")


def test_a_decision_in_a_branch_keeps_its_pick_as_choice() -> None:
    p = build_process({"id": "d", "name": "D", "fields": {"amount": {"type": "number"}},
                       "stages": [
        {"id": "reviews", "kind": "parallel", "start": True, "branches": [
            {"name": "a", "to": "check"}, {"name": "b", "to": "b-review"}]},
        {"id": "check", "kind": "decision", "default": "done",
         "branches": [{"when": "record.amount != null", "to": "a-review"}]},
        review("a-review", "carol"), review("b-review", "frank"),
        {"id": "done", "kind": "join", "fork": "reviews", "next": "ok"},
        {"id": "ok", "kind": "end"}, {"id": "rejected", "kind": "end"},
    ]})
    tr = engine.start(p, engine.Start(), ctx("alice"), instance_id="d-1", digest="d")
    decision = [e for e in tr.events if e.kind == "decision"][0]
    assert decision.data == {"choice": "default", "to": "done", "values": {"amount": None},
                             "branch": "a"}
    assert tr.instance.active_stages == ("b-review",)


def test_sla_timers_run_per_branch() -> None:
    sla = {"within": "1d", "escalations": [{"after": "12h", "action": "remind"}]}
    p = forked(sla=sla)
    inst = opened(p)
    b = inst.branch("b")
    assert b is not None
    assert b.due_at == "2026-11-24T09:00:00Z"
    assert [(t.kind, t.stage, t.key) for t in inst.timers] == [
        ("due", "b-review", "due:b-review:0:v2"),
        ("escalation", "b-review", "escalation:b-review:0:v2")]
    assert inst.due_at == "2026-11-24T09:00:00Z"
    later = engine.apply(p, inst, Fire("escalation:b-review:0:v2"),
                         ctx("flowctl", NOW + timedelta(hours=12)))
    assert (kinds(later), later.events[0].data["branch"]) == (
        [("escalation", "b-review", None)], "b")
    assert [(n.user, n.kind) for n in later.notices] == [("frank", "reminder")]
    assert [t.key for t in later.instance.timers] == ["due:b-review:0:v2"]
    left = adv(p, later.instance, "frank", "approve")
    assert left.timers == ()
    with pytest.raises(engine.TimerVoid):
        act(p, left, Fire("due:b-review:0:v2"), "flowctl")


def test_a_pause_moves_every_branch_clock() -> None:
    p = forked(sla={"within": "1d"})
    inst = act(p, opened(p), Pause(), "alice").instance
    assert inst.timers == ()
    resumed = engine.apply(p, inst, Resume(), ctx("alice", NOW + timedelta(hours=2))).instance
    b = resumed.branch("b")
    assert b is not None
    assert b.due_at == "2026-11-24T11:00:00Z"
    assert [t.at for t in b.timers] == ["2026-11-24T11:00:00Z"]
    assert resumed.timers == b.timers
    assert adv(p, resumed, "frank", "approve").active_stages == ("a-review", "c-review")


def test_cancel_ends_every_branch() -> None:
    p = forked()
    tr = act(p, opened(p), Cancel("no longer needed"), "alice")
    assert tr.events[0].data == {"reason": "no longer needed",
                                 "branches_cancelled": ["a", "b", "c"]}
    assert (tr.instance.status, tr.instance.branches, tr.instance.fork) == ("cancelled", (), None)


def test_state_with_branches_round_trips_through_json() -> None:
    p = forked(sla={"within": "1d"})
    inst = adv(p, opened(p), "carol", "approve")
    state = json.loads(json.dumps(engine.dump_state(inst)))
    columns = {k: getattr(inst, k) for k in (
        "id", "process_id", "definition_digest", "initiator", "started_at", "updated_at",
        "version", "status", "stage", "due_at", "assignees", "parent_id",
    )}
    assert engine.load_instance(columns, state) == inst
    assert "branches" not in engine.dump_state(start(p, "alice"))  # nothing for the others


def _docs_example() -> str:
    text = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- parallel-example -->\n```yaml\n(.*?)```", text, re.S)
    assert found is not None
    return found.group(1)


def test_the_format_docs_example_lints_clean_and_runs(tmp_path: Path) -> None:
    (tmp_path / "purchase-review.yaml").write_text(_docs_example(), encoding="utf-8")
    result = api.lint_paths([str(tmp_path)], org=str(PROCESSES / "org.yaml"))
    assert [d.format() for d in result.diagnostics] == []
    p = api.load_process(str(tmp_path / "purchase-review.yaml"))
    small = opened_doc(p, "5000")
    assert small.active_stages == ("budget-review",)
    big = opened_doc(p, "50000")
    assert big.active_stages == ("budget-review", "legal-review")
    big = adv(p, big, "linda", "approve")
    done = adv(p, big, "frank", "approve")
    assert (done.status, done.outcome) == ("completed", "approved")


def opened_doc(p: Process, amount: str) -> Instance:
    return act(p, start(p, "alice"), Advance("submit", {"amount": amount}), "alice").instance



def test_an_instance_in_a_parallel_stage_does_not_migrate() -> None:
    p = forked()
    inst = adv(p, opened(p), "carol", "approve")
    plan = engine_migrate.plan(p, forked(complete="any"), inst, "e" * 64, {})
    assert (plan.moves, plan.refusal) == (False, (
        "it is at parallel stage 'reviews' with branches running (b at 'b-review', c at"
        " 'c-review'); an instance moves between definitions outside parallel stages: let its"
        " branches reach the join, then run the migration again"))


def test_overdue_lists_each_late_branch_on_its_own(tmp_path: Path) -> None:
    from flowctl.api import instances as runtime
    from flowctl.api import timers

    kw: dict[str, Any] = {"db": str(tmp_path / "f.db"), "processes_dir": str(PROCESSES),
                          "org": str(PROCESSES / "org.yaml"), "now": NOW}
    iid = runtime.start("contract-approval", values={
        "customer": "Acme", "amount": "250000", "credit_score": "60", "term_months": "6"},
        as_user="alice", **kw).instance.id
    runtime.advance(iid, result="submit", as_user="alice", **kw)
    runtime.advance(iid, result="approve", as_user="carol", **kw)
    late = timers.overdue(as_user="grace", **{**kw, "now": NOW + timedelta(days=6)})
    assert [(o.stage, o.due_at, o.late_seconds, o.held_by) for o in late if o.what == "stage"] \
        == [("executive-signature", "2026-11-28T09:00:00Z", 86400,
             "a general-manager (grace) or frank (head of finance)")]


def test_a_wait_in_a_branch_wakes_that_branch_only() -> None:
    p = build_process({"id": "w", "name": "W", "stages": [
        {"id": "reviews", "kind": "parallel", "start": True, "branches": [
            {"name": "a", "to": "cool-off"}, {"name": "b", "to": "b-review"}]},
        {"id": "cool-off", "kind": "wait", "for": "1d", "next": "a-review"},
        review("a-review", "carol"), review("b-review", "frank"),
        {"id": "done", "kind": "join", "fork": "reviews", "next": "ok"},
        {"id": "ok", "kind": "end"}, {"id": "rejected", "kind": "end"},
    ]})
    inst = engine.start(p, engine.Start(), ctx("alice"), instance_id="w-1",
                        digest="d").instance
    assert (inst.status, inst.active_stages, inst.wake_at) == (
        "active", ("b-review",), "2026-11-24T09:00:00Z")
    assert [(b.name, b.status) for b in inst.branches] == [("a", "waiting"), ("b", "active")]
    woke = engine.apply(p, inst, Fire("wake:cool-off:0:v1"),
                        ctx("flowctl", NOW + timedelta(days=1)))
    assert [(e.kind, e.stage, e.data.get("branch")) for e in woke.events] == [
        ("woke", "cool-off", "a"), ("stage_entered", "a-review", "a")]
    assert woke.instance.active_stages == ("a-review", "b-review")
    assert woke.instance.wake_at is None


ORDER = """\
kind: process
id: order
name: Order
fields:
  order_ref: {type: string}
  address: {type: string}
  carrier: {type: string}
  ship_date: {type: date}
stages:
  - id: take
    kind: task
    start: true
    assignee: initiator
    fields:
      required: [order_ref, address, carrier, ship_date]
    results:
      go: prep
  - id: prep
    kind: parallel
    branches:
      - name: delivery
        to: deliver
      - name: billing
        to: invoice
  - id: deliver
    kind: subprocess
    process: goods-delivery
    inputs:
      order_ref: order_ref
      address: address
      carrier: carrier
      ship_date: ship_date
    results:
      delivered: prep-done
      returned: failed
  - id: invoice
    kind: task
    assignee: {user: alice}
    results:
      sent: prep-done
  - id: prep-done
    kind: join
    fork: prep
    next: ok
  - id: ok
    kind: end
  - id: failed
    kind: end
    outcome: rejected
"""


def test_a_child_process_in_a_branch_ends_that_branch(tmp_path: Path) -> None:
    import shutil

    from flowctl.api import instances as runtime
    from flowctl.api import timers as timework

    procs = tmp_path / "processes"
    procs.mkdir()
    for name in ("org.yaml", "goods-delivery.yaml"):
        shutil.copy(PROCESSES / name, procs / name)
    (procs / "order.yaml").write_text(ORDER, encoding="utf-8")
    kw: dict[str, Any] = {"db": str(tmp_path / "f.db"), "processes_dir": str(procs),
                          "org": str(procs / "org.yaml"), "now": NOW}
    runtime.start("order", values={"order_ref": "O1", "address": "X", "carrier": "courier",
                                   "ship_date": "2026-11-23"}, as_user="alice", **kw)
    step = runtime.advance("order-1", result="go", as_user="alice", **kw)
    assert [b.where for b in step.instance.branches] == [
        "delivery: waiting at 'deliver' for child process goods-delivery-1",
        "billing: at 'invoice', waiting for alice"]
    started = [e for e in step.entries if e.kind == "child_started"]
    assert [(e.instance_id, e.data["branch"]) for e in started] == [("order-1", "delivery")]
    runtime.advance("goods-delivery-1", result="done", as_user="oleg", **kw)
    timework.tick(deliver=False, **{**kw, "now": NOW + timedelta(days=1)})
    runtime.advance("goods-delivery-1", result="shipped", values={"tracking_number": "T"},
                    as_user="oleg", **kw)
    step = runtime.advance("goods-delivery-1", result="delivered", as_user="oleg", **kw)
    mine = [(e.kind, e.stage, e.data.get("branch")) for e in step.entries
            if e.instance_id == "order-1"]
    assert mine == [("child_ended", "deliver", "delivery"), ("result", "deliver", "delivery"),
                    ("branch_joined", "prep-done", "delivery")]
    done = runtime.advance("order-1", result="sent", as_user="alice", **kw)
    assert (done.instance.status, done.instance.last_stage) == ("completed", "ok")


def test_mermaid_puts_the_join_rule_on_the_arrow_leaving_its_bar() -> None:
    from flowctl.diagram import extract
    from flowctl.diagram.mermaid import render_mermaid

    text = render_mermaid(extract(api.load_process(str(PROCESSES / "contract-approval.yaml"))))
    assert '    s_reviews@{ shape: fork, label: ' in text  # a bar: Mermaid drops its text
    assert ('    s_reviews_done -->|"Every review done<br>waits for all branches<br>an end in a'
            ' branch cancels the others"| s_approved') in text


def test_the_reviews_run_at_the_same_time_on_a_postgresql_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    """The branches' state lives in the instance's JSON state: the PostgreSQL
    store keeps it as the SQLite one does (a real server, through the CLI)."""
    import shutil

    from clirun import invoke, trust_workspace

    shutil.copytree(PROCESSES, tmp_path / "processes")
    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCTL_DB", pg_url)

    def ok(*args: str) -> list[str]:
        result = invoke(list(args), env={"FLOWCTL_NOW": "2026-11-23T09:00:00Z"})
        assert result.exit_code == 0, result.output
        return str(result.stdout).splitlines()

    c1 = "contract-approval-1"
    ok("start", "contract-approval", "--as", "alice", "--set", "customer=Acme",
       "--set", "amount=250000", "--set", "credit_score=60", "--set", "term_months=24")
    ok("advance", c1, "-r", "submit", "--as", "alice")
    assert ok("advance", c1, "-r", "approve", "--as", "carol")[1] == (
        f"{c1}: at 'reviews', 3 of 3 branches running")
    ok("advance", c1, "-r", "approve", "--as", "linda")
    ok("advance", c1, "-r", "approve", "--as", "frank", "--stage", "finance-review")
    assert ok("inbox", "--as", "grace")[1].startswith(
        f"{c1}  executive-signature (branch general-manager)  not started")
    ok("advance", c1, "-r", "approve", "--as", "grace")
    assert ok("advance", c1, "-r", "approve", "--as", "frank")[-1] == (
        f"{c1}: completed at 'approved' (outcome: approved)")
    entries = json.loads("\n".join(ok("journal", c1, "--as", "grace", "--json")))
    assert [(e["kind"], e["data"].get("branch")) for e in entries
            if e["kind"] in ("branch_joined", "joined")] == [
        ("branch_joined", "legal"), ("branch_joined", "finance"),
        ("branch_joined", "general-manager"), ("joined", None)]
    assert ok("journal", "verify")[0].startswith("journal intact")
    assert not (tmp_path / ".flowctl").exists()


def test_the_journal_verifies_while_branches_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: "instance contract-approval-1 is at stage reviews, but its journal
    last entered stage executive-signature" as soon as the branches started."""
    from clirun import invoke, trust_workspace

    trust_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)

    def ok(*args: str) -> list[str]:
        result = invoke(list(args), env={"FLOWCTL_NOW": "2026-11-23T09:00:00Z",
                                          "FLOWCTL_PROCESSES": str(PROCESSES), "FLOWCTL_ORG": None})
        assert result.exit_code == 0, result.output
        return str(result.stdout).splitlines()

    c1 = "contract-approval-1"
    ok("start", "contract-approval", "--as", "alice", "--set", "customer=Acme",
       "--set", "amount=250000", "--set", "credit_score=60", "--set", "term_months=24")
    ok("advance", c1, "-r", "submit", "--as", "alice")
    ok("advance", c1, "-r", "approve", "--as", "carol")
    assert ok("journal", "verify")[0].startswith("journal intact")
    ok("advance", c1, "-r", "approve", "--as", "linda")
    assert ok("journal", "verify")[0].startswith("journal intact")


def test_naming_a_stage_the_instance_is_not_at_is_refused_without_branches_too() -> None:
    p = forked()
    inst = start(p, "alice")
    with pytest.raises(engine.StageChoice) as exc:
        act(p, inst, Begin(stage="a-review"), "alice")
    assert refusal(exc) == "stage 'a-review' cannot be begun: forked-1 is at 'open'"
    assert (exc.value.hint, exc.value.active) == (
        "drop --stage, or name the instance's current stage", ("open",))
    tr = act(p, inst, Begin(stage="open"), "alice")  # its own stage named: as without
    assert kinds(tr) == [("began", "open", None)]
    waiting = adv(p, opened(p), "carol", "approve")
    with pytest.raises(engine.StageChoice) as exc:
        act(p, waiting, Reassign("bob", stage="a-review"), "grace")
    assert refusal(exc).startswith("stage 'a-review' cannot be reassigned: it is not an active"
                                   " stage of forked-1; active stages: 'b-review' (branch b,")


def test_coverage_counts_each_parallel_branch_started(tmp_path: Path) -> None:
    import shutil

    from clirun import invoke

    shutil.copytree(PROCESSES, tmp_path / "processes")
    small = (ROOT / "scenarios" / "contract-approval.yaml").read_text(encoding="utf-8")
    small = small[:small.index("  - name: the rep withdraws the contract")]
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "contract-approval.yaml").write_text(small, encoding="utf-8")
    result = invoke(["test", str(tmp_path / "scenarios"), "--processes",
                     str(tmp_path / "processes"), "--format", "json"])
    assert result.exit_code == 0, result.output
    (coverage,) = json.loads(result.stdout)["coverage"]
    assert coverage["branches"] == 3
    assert coverage["missing"]["branches"] == [
        "reviews: branch finance (when record.credit_score < 70)",
        "reviews: branch legal (when record.term_months > 12)",
        "reviews: branch general-manager (when record.amount > 100000)",
    ]

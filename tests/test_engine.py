"""The pure engine: every stage kind, every approval policy, every refusal.

Definitions are the example processes in processes/ (plus small inline ones
for cases the examples do not have); the org is processes/org.yaml.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from flowctl import engine
from flowctl.api.definitions import load_org
from flowctl.api.instances import process_from_source
from flowctl.definition.build import build_process
from flowctl.engine import (
    Advance,
    AlreadySigned,
    Begin,
    Cancel,
    Context,
    FieldsMissing,
    Instance,
    InstanceClosed,
    InvalidValue,
    Link,
    NoAssignee,
    Note,
    NotPermitted,
    Reassign,
    Refused,
    ResultNotAllowed,
    RuleBroken,
    Start,
    Transition,
)
from flowctl.model import Process

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
ORG = load_org(processes_dir=str(PROCESSES))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
T0 = "2026-11-23T09:00:00Z"


def example(name: str) -> Process:
    return process_from_source((PROCESSES / f"{name}.yaml").read_text("utf-8"), name)


KEY = example("key-account-filing-approval")
CONTRACT = example("contract-approval")
LOST = example("lost-customer-recovery")
DELIVERY = example("goods-delivery")


def ctx(user: str, now: datetime = NOW) -> Context:
    return Context(user, ORG, now)


def start(process: Process, user: str, **values: Any) -> Instance:
    tr = engine.start(
        process, Start(values), ctx(user), instance_id=f"{process.id}-1", digest="d" * 64
    )
    return tr.instance


def act(process: Process, inst: Instance, cmd: engine.Command, user: str) -> Transition:
    return engine.apply(process, inst, cmd, ctx(user))


def adv(process: Process, inst: Instance, user: str, result: str, **values: Any) -> Instance:
    return act(process, inst, Advance(result, values), user).instance


def kinds(tr: Transition) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind, e.stage, e.result) for e in tr.events]


def refusal(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.message)


def prices_checked(inst: Instance, user: str) -> Instance:
    """prepare-offer's blocking task check-prices, done by ``user``."""
    return act(LOST, inst, engine.TaskDone("check-prices"), user).instance


# --------------------------------------------------------------- start


def test_context_at_is_now_in_iso_and_follows_a_copy_with_another_time() -> None:
    c = ctx("alice", datetime(2026, 11, 23, 12, 30, 5, 999, tzinfo=timezone(timedelta(hours=3))))
    assert (c.at, c.at) == ("2026-11-23T09:30:05Z", "2026-11-23T09:30:05Z")
    later = replace(c, now=NOW + timedelta(days=1))
    assert (later.at, c.at) == ("2026-11-24T09:00:00Z", "2026-11-23T09:30:05Z")
    assert later == ctx("alice", NOW + timedelta(days=1))


def test_start_enters_the_start_stage_and_waits_for_the_initiator() -> None:
    tr = engine.start(
        KEY, Start({"owner": "alice"}, note="new lead"), ctx("alice"),
        instance_id="key-account-filing-approval-1", digest="d" * 64,
    )
    inst = tr.instance
    assert (inst.status, inst.stage, inst.stage_state) == ("active", "edit-customer", "not started")
    assert inst.assignees == ("user:alice",)
    assert inst.labels == {"user:alice": "initiator"}
    assert inst.version == 1
    assert inst.record == {"owner": "alice"}
    assert inst.note == "new lead"
    assert (inst.started_at, inst.updated_at, inst.entered_at) == (T0, T0, T0)
    assert kinds(tr) == [("started", None, None), ("stage_entered", "edit-customer", None)]
    assert tr.events[0].data == {
        "process": KEY.id, "name": KEY.name, "definition": "d" * 64,
        "fields": {"owner": "alice"}, "note": "new lead",
    }
    assert tr.events[1].data == {"assignees": ["user:alice"]}
    assert all(e.actor == "alice" and e.at == T0 for e in tr.events)


def test_only_starters_may_start() -> None:
    with pytest.raises(Refused) as exc:
        start(KEY, "frank")
    assert refusal(exc) == (
        "frank may not start 'key-account-filing-approval'; it is started by: department sales"
    )
    with pytest.raises(Refused) as exc:
        start(CONTRACT, "grace")
    assert refusal(exc) == (
        "grace may not start 'contract-approval'; it is started by: role sales-rep,"
        " role sales-manager"
    )
    assert start(CONTRACT, "carol").stage == "submit"  # sales-manager role


def test_anyone_may_start_when_starters_are_empty() -> None:
    p = inline({"stages": [
        {"id": "a", "kind": "task", "start": True, "assignee": "initiator",
         "results": {"done": "z"}},
        {"id": "z", "kind": "end"},
    ]})
    assert start(p, "linda").stage == "a"


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("amount", "abc", "field 'amount' must be a number; got 'abc'"),
        ("credit_score", "7.5", "field 'credit_score' must be an integer; got '7.5'"),
        ("colour", "red", "process 'contract-approval' has no field 'colour'; its fields:"
         " customer, amount, credit_score, term_months, rejection_reason"),
    ],
)
def test_start_refuses_values_that_do_not_fit(field: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        start(CONTRACT, "alice", **{field: raw})
    assert refusal(exc) == message
    assert exc.value.exit_code == 2


@pytest.mark.parametrize(
    ("field", "raw", "rule", "message"),
    [
        ("amount", "-5", "minimum", "field 'amount' must be at least 0; got -5"),
        ("credit_score", "101", "maximum", "field 'credit_score' must be at most 100; got 101"),
        ("term_months", "0", "minimum", "field 'term_months' must be at least 1; got 0"),
    ],
)
def test_start_refuses_values_out_of_range_by_the_rules(field: str, raw: str, rule: str,
                                                         message: str) -> None:
    with pytest.raises(RuleBroken) as exc:
        start(CONTRACT, "alice", **{field: raw})
    assert refusal(exc) == message
    assert (exc.value.field, exc.value.rule, exc.value.exit_code) == (field, rule, 1)


def test_values_are_stored_typed() -> None:
    inst = start(
        CONTRACT, "alice", customer="Acme", amount="250000", credit_score="65", term_months="24"
    )
    assert inst.record == {
        "customer": "Acme", "amount": 250000, "credit_score": 65, "term_months": 24,
    }
    assert start(CONTRACT, "alice", amount="99.5").record == {"amount": 99.5}


TYPED = build_process({
    "id": "typed", "name": "Typed",
    "fields": {
        "flag": {"type": "boolean"},
        "day": {"type": "date"},
        "moment": {"type": "datetime"},
        "who": {"type": "user"},
        "size": {"type": "enum", "values": ["s", "m"]},
    },
    "stages": [
        {"id": "a", "kind": "task", "start": True, "assignee": "initiator",
         "fields": {"optional": ["flag", "day", "moment", "who", "size"]},
         "results": {"done": "z"}},
        {"id": "z", "kind": "end"},
    ],
})


@pytest.mark.parametrize(
    ("field", "raw", "stored"),
    [
        ("flag", "true", True),
        ("flag", "false", False),
        ("day", "2026-12-01", "2026-12-01"),
        ("moment", "2026-12-01T10:30:00+03:00", "2026-12-01T07:30:00Z"),
        ("moment", "2026-12-01T10:30", "2026-12-01T10:30:00Z"),
        ("who", "dmitry", "dmitry"),
        ("size", "m", "m"),
    ],
)
def test_each_type_is_read_from_text(field: str, raw: str, stored: Any) -> None:
    assert start(TYPED, "alice", **{field: raw}).record == {field: stored}


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("flag", "yes", "field 'flag' must be true or false; got 'yes'"),
        ("day", "01.12.2026", "field 'day' must be a date (YYYY-MM-DD); got '01.12.2026'"),
        ("day", "2026-02-30", "field 'day' must be a date (YYYY-MM-DD); got '2026-02-30'"),
        ("moment", "tomorrow", "field 'moment' must be a date and time (ISO-8601,"
         " e.g. 2026-11-23T09:00:00Z); got 'tomorrow'"),
        ("who", "zed", "field 'who' must be a user of the org directory; 'zed' is not one"),
        ("size", "xl", "field 'size' must be one of s, m; got 'xl'"),
    ],
)
def test_each_type_refuses_bad_text(field: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        start(TYPED, "alice", **{field: raw})
    assert refusal(exc) == message


# ------------------------------------------- key-account-filing-approval


def test_key_path_runs_to_completion() -> None:
    inst = start(KEY, "alice", owner="alice")
    tr = act(KEY, inst, Advance("done", {"level": "key"}, comment="big one"), "alice")
    assert kinds(tr) == [
        ("field_changed", "edit-customer", None),
        ("result", "edit-customer", "done"),
        ("decision", "check-level", None),
        ("stage_entered", "level-approval", None),
    ]
    assert tr.events[0].data == {"field": "level", "from": None, "to": "key"}
    assert tr.events[1].data == {"comment": "big one"}
    assert tr.events[2].data == {
        "branch": 1, "when": 'record.level == "key"', "to": "level-approval",
        "values": {"level": "key"},
    }
    inst = tr.instance
    assert (inst.stage, inst.assignees, inst.version) == ("level-approval", ("user:carol",), 2)
    assert inst.labels == {"user:carol": "head of sales"}
    assert inst.due_at == "2026-11-24T09:00:00Z"  # sla within 24h
    inst = adv(KEY, inst, "carol", "approve")
    assert (inst.stage, inst.assignees) == ("change-owner", ("user:carol",))
    assert inst.due_at is None
    tr = act(KEY, inst, Advance("done", {"owner": "bob"}), "carol")
    assert kinds(tr) == [
        ("field_changed", "change-owner", None),
        ("result", "change-owner", "done"),
        ("completed", "end", None),
    ]
    done = tr.instance
    assert (done.status, done.stage, done.last_stage, done.outcome) == (
        "completed", None, "end", "completed",
    )
    assert done.assignees == ()
    assert done.version == 4
    assert done.record == {"owner": "bob", "level": "key", "approved_by": "carol",
                           "previous_owner": "alice"}


def test_normal_path_ends_right_after_check_level() -> None:
    tr = act(KEY, start(KEY, "bob"), Advance("done", {"level": "normal"}), "bob")
    assert kinds(tr)[-2:] == [("decision", "check-level", None), ("completed", "end", None)]
    assert tr.events[-2].data == {"branch": "default", "to": "end", "values": {"level": "normal"}}
    assert tr.instance.status == "completed"


def test_reject_goes_back_to_edit_customer() -> None:
    inst = adv(KEY, start(KEY, "alice", owner="alice"), "alice", "done", level="key")
    tr = act(KEY, inst, Advance("reject", comment="not a key account"), "carol")
    assert kinds(tr) == [
        ("result", "level-approval", "reject"),
        ("stage_entered", "edit-customer", None),
    ]
    assert (tr.instance.stage, tr.instance.assignees) == ("edit-customer", ("user:alice",))
    assert tr.instance.stage_state == "not started"


def test_approver_needs_the_owner_field() -> None:
    with pytest.raises(NoAssignee) as exc:
        adv(KEY, start(KEY, "alice"), "alice", "done", level="key")
    assert refusal(exc) == (
        "cannot find who handles stage 'level-approval': it depends on record.owner, which is empty"
    )
    assert exc.value.hint == "set it with --set owner=USER"


def test_owner_in_another_department_routes_to_that_head() -> None:
    inst = adv(KEY, start(KEY, "alice", owner="frank"), "alice", "done", level="key")
    assert inst.assignees == ("user:frank",)
    assert inst.labels == {"user:frank": "head of finance"}


# ----------------------------------------------------------- refusals


def test_wrong_result_is_refused() -> None:
    with pytest.raises(ResultNotAllowed) as exc:
        adv(KEY, start(KEY, "alice"), "alice", "approve")
    assert refusal(exc) == "result 'approve' is not allowed at stage 'edit-customer'; allowed: done"
    assert exc.value.allowed == ("done",)
    assert exc.value.exit_code == 1


def test_wrong_user_is_refused() -> None:
    inst = adv(KEY, start(KEY, "alice", owner="alice"), "alice", "done", level="key")
    with pytest.raises(NotPermitted) as exc:
        adv(KEY, inst, "bob", "approve")
    assert refusal(exc) == "only carol (head of sales) can approve 'level-approval'"
    assert exc.value.allowed == ("user:carol",)
    with pytest.raises(NotPermitted) as exc:
        adv(KEY, start(KEY, "alice"), "bob", "done", level="key")
    assert refusal(exc) == "only alice (initiator) can advance 'edit-customer'"


def test_missing_required_field_is_refused() -> None:
    with pytest.raises(FieldsMissing) as exc:
        adv(KEY, start(KEY, "alice"), "alice", "done")
    assert refusal(exc) == "field 'level' is required: one of normal, key"
    assert exc.value.fields == ("level",)
    assert exc.value.hint == "add --set level=VALUE"


def test_every_missing_field_is_named() -> None:
    with pytest.raises(Refused) as exc:
        adv(CONTRACT, start(CONTRACT, "alice", customer="Acme"), "alice", "submit")
    assert refusal(exc) == (
        "field 'amount' is required: a number (at least 0);"
        " field 'credit_score' is required: an integer (at least 0, at most 100);"
        " field 'term_months' is required: an integer (at least 1)"
    )


def test_result_required_field_is_checked() -> None:
    inst = submitted(amount="50000", credit_score="90", term_months="12")
    with pytest.raises(Refused) as exc:
        adv(CONTRACT, inst, "carol", "reject")
    assert refusal(exc) == "field 'rejection_reason' is required: text"


def test_wrong_type_at_advance_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        adv(KEY, start(KEY, "alice"), "alice", "done", level="vip")
    assert refusal(exc) == "field 'level' must be one of normal, key; got 'vip'"


def test_finished_instance_is_refused() -> None:
    done = adv(KEY, start(KEY, "alice"), "alice", "done", level="normal")
    commands: list[tuple[engine.Command, str]] = [
        (Advance("done"), "advanced"), (Begin(), "begun"), (Reassign("bob"), "reassigned"),
        (Cancel(), "cancelled"),
    ]
    for cmd, word in commands:
        with pytest.raises(InstanceClosed) as exc:
            act(KEY, done, cmd, "alice")
        assert refusal(exc) == (
            f"instance key-account-filing-approval-1 is completed; nothing can be {word}"
        )


def test_admin_may_act_for_the_assignee_and_is_journalled_as_admin() -> None:
    inst = adv(KEY, start(KEY, "alice", owner="alice"), "alice", "done", level="key")
    tr = act(KEY, inst, Advance("approve"), "grace")
    assert tr.events[0].kind == "field_changed"  # set: approved_by: actor
    assert tr.events[0].data["to"] == "grace"
    assert tr.events[1].kind == "result"
    assert tr.events[1].data == {"as_admin": True}
    assert tr.events[1].actor == "grace"


def test_a_refusal_leaves_the_instance_untouched() -> None:
    inst = start(KEY, "alice")
    before = engine.dump_state(inst)
    with pytest.raises(Refused):
        act(KEY, inst, Advance("done", {"type": "retail"}), "alice")  # level missing
    assert engine.dump_state(inst) == before
    assert inst.version == 1


# --------------------------------------------------- contract-approval


def submitted(**values: str) -> Instance:
    inst = start(CONTRACT, "alice", customer="Acme", **values)
    return adv(CONTRACT, inst, "alice", "submit")


def test_role_approver_any_member_may_decide() -> None:
    inst = submitted(amount="50000", credit_score="90", term_months="12")
    assert (inst.stage, inst.assignees) == ("manager-review", ("role:sales-manager",))
    # 48 working hours of Moscow 09:00-18:00 from Monday 12:00 local: Monday 6h,
    # Tuesday to Friday 36h, then 6h of the next Monday: 15:00 local.
    assert inst.due_at == "2026-11-30T12:00:00Z"
    assert [(t.kind, t.at, t.key) for t in inst.timers] == [
        ("due", "2026-11-30T12:00:00Z", "due:manager-review:0:v2"),
        ("escalation", "2026-11-25T15:00:00Z", "escalation:manager-review:0:v2"),
        ("escalation", "2026-11-30T12:00:00Z", "escalation:manager-review:1:v2"),
    ]
    with pytest.raises(Refused) as exc:
        adv(CONTRACT, inst, "bob", "approve")
    assert refusal(exc) == "only a sales-manager (carol) can approve 'manager-review'"
    tr = act(CONTRACT, inst, Advance("approve"), "carol")
    assert [e.kind for e in tr.events] == ["result", "stage_entered", "joined", "completed"]
    assert tr.events[1].data["branches"] == []
    assert tr.instance.outcome == "approved"


def test_contract_with_every_review_and_countersign() -> None:
    inst = submitted(amount="250000", credit_score="60", term_months="24")
    inst = adv(CONTRACT, inst, "carol", "approve")
    assert (inst.stage, inst.fork, inst.active_stages) == (
        "reviews", "reviews", ("finance-review", "legal-review", "executive-signature"),
    )
    assert inst.assignees == ("role:finance-reviewer", "role:legal-reviewer",
                              "role:general-manager", "user:frank")
    assert inst.due_at == "2026-11-28T09:00:00Z"  # the earliest: the countersign's 5d
    gm = engine.focused(inst, "general-manager")
    assert gm.assignees == gm.approvers == ("role:general-manager", "user:frank")
    inst = adv(CONTRACT, inst, "linda", "approve")
    assert inst.active_stages == ("finance-review", "executive-signature")
    tr = act(CONTRACT, inst, Advance("approve", comment="ok", stage="executive-signature"),
             "frank")
    assert kinds(tr) == [("vote", "executive-signature", "approve")]
    assert tr.events[0].data == {
        "comment": "ok", "for": "user:frank", "pending": ["role:general-manager"],
        "branch": "general-manager",
    }
    gm = engine.focused(tr.instance, "general-manager")
    assert (gm.stage, gm.assignees, gm.stage_state) == (
        "executive-signature", ("role:general-manager",), "in progress",
    )
    inst = adv(CONTRACT, tr.instance, "grace", "approve")
    tr = act(CONTRACT, inst, Advance("approve", stage="finance-review"), "frank")
    assert kinds(tr) == [
        ("result", "finance-review", "approve"),
        ("branch_joined", "reviews-done", None),
        ("joined", "reviews-done", None),
        ("completed", "approved", None),
    ]
    assert (tr.instance.outcome, tr.instance.fork, tr.instance.branches) == (
        "approved", None, ())


def test_countersign_one_reject_rejects_at_once() -> None:
    inst = signing()
    inst = adv(CONTRACT, inst, "grace", "approve")
    tr = act(CONTRACT, inst, Advance("reject", {"rejection_reason": "too risky"}), "frank")
    assert kinds(tr) == [
        ("field_changed", "executive-signature", None),
        ("vote", "executive-signature", "reject"),
        ("result", "executive-signature", "reject"),
        ("branch_ended", "rejected", None),
        ("completed", "rejected", None),
    ]
    assert (tr.instance.status, tr.instance.outcome, tr.instance.votes) == (
        "completed", "rejected", ())


def test_countersign_same_approver_twice_is_refused() -> None:
    inst = adv(CONTRACT, signing(), "frank", "approve")
    with pytest.raises(AlreadySigned) as exc:
        adv(CONTRACT, inst, "frank", "approve")
    assert refusal(exc) == (
        "frank has already approved 'executive-signature'; every approver signs once;"
        " still waiting for: a general-manager (grace)"
    )


def test_countersign_outsider_is_refused() -> None:
    with pytest.raises(Refused) as exc:
        adv(CONTRACT, signing(), "carol", "approve")
    assert refusal(exc) == (
        "only a general-manager (grace) or frank (head of finance)"
        " can approve 'executive-signature'"
    )


def signing() -> Instance:
    inst = submitted(amount="250000", credit_score="90", term_months="6")
    inst = adv(CONTRACT, inst, "carol", "approve")
    assert (inst.stage, inst.active_stages) == ("reviews", ("executive-signature",))
    return inst


def test_reviewer_reject_rejects_the_contract() -> None:
    inst = submitted(amount="50000", credit_score="60", term_months="6")
    inst = adv(CONTRACT, inst, "carol", "approve")
    assert inst.active_stages == ("finance-review",)
    done = adv(CONTRACT, inst, "frank", "reject", rejection_reason="credit too low")
    assert (done.status, done.outcome, done.last_stage, done.record["rejection_reason"]) == (
        "completed", "rejected", "rejected", "credit too low")


def test_single_policy_first_approver_decides() -> None:
    p = inline({"stages": [
        {"id": "a", "kind": "approval", "start": True, "policy": "single",
         "approvers": [{"user": "carol"}, {"user": "frank"}],
         "results": {"approve": "z", "reject": "z"}},
        {"id": "z", "kind": "end"},
    ]})
    inst = start(p, "alice")
    assert inst.assignees == ("user:carol", "user:frank")
    assert inst.approvers == ()
    assert adv(p, inst, "frank", "reject").status == "completed"


# --------------------------------------------------- waits and children


def test_wait_for_a_duration_pauses_with_a_wake_timer() -> None:
    inst = start(LOST, "alice", owner="bob", customer="Acme")
    assert inst.assignees == ("user:bob",)
    assert inst.labels == {"user:bob": "record.owner"}
    inst = adv(LOST, inst, "bob", "reached")
    inst = prices_checked(adv(LOST, inst, "bob", "done", reason="price"), "bob")
    tr = act(LOST, inst, Advance("wants-time", {"offer_amount": "1000"}), "bob")
    assert kinds(tr)[-1] == ("stage_entered", "pause", None)
    assert tr.events[-1].data == {"wait": "for 30d", "wake_at": "2026-12-23T09:00:00Z"}
    inst = tr.instance
    assert (inst.status, inst.stage, inst.wake_at, inst.assignees) == (
        "waiting", "pause", "2026-12-23T09:00:00Z", (),
    )
    assert inst.timers == (
        engine.Timer("wake", "2026-12-23T09:00:00Z", "pause", 0, "wake:pause:0:v5"),
    )
    with pytest.raises(Refused) as exc:
        adv(LOST, inst, "bob", "reached")
    assert refusal(exc) == (
        "instance lost-customer-recovery-1 is waiting at stage 'pause' until"
        " 2026-12-23T09:00:00Z; nothing can be advanced now"
    )


def test_wait_until_a_date_field() -> None:
    inst = start(DELIVERY, "oleg", order_ref="O-1", address="Moscow", carrier="courier",
                 ship_date="2026-12-01")
    assert inst.assignees == ("role:logistics",)
    tr = act(DELIVERY, inst, Advance("done"), "dmitry")
    assert tr.instance.wake_at == "2026-12-01T00:00:00Z"
    assert tr.events[-1].data == {
        "wait": "until record.ship_date", "wake_at": "2026-12-01T00:00:00Z",
    }


def test_wait_until_an_empty_date_is_refused() -> None:
    inst = start(DELIVERY, "oleg", order_ref="O-1", address="Moscow", carrier="courier")
    with pytest.raises(Refused) as exc:
        adv(DELIVERY, inst, "oleg", "done")
    assert refusal(exc) == (
        "cannot enter wait stage 'wait-ship-date': it waits until record.ship_date, which is empty"
    )


def test_lost_customer_paid_records_a_fire_and_forget_child_and_is_won() -> None:
    inst = start(LOST, "alice", owner="alice", customer="Acme")
    inst = adv(LOST, inst, "alice", "reached")
    inst = prices_checked(adv(LOST, inst, "alice", "done", reason="service"), "alice")
    inst = adv(LOST, inst, "alice", "accepted", offer_amount="5000")
    assert (inst.stage, inst.assignees) == ("await-payment", ("role:finance-reviewer",))
    tr = act(LOST, inst, Advance("paid", {
        "order_ref": "O-7", "delivery_address": "Kazan", "ship_date": "2026-12-05",
    }), "frank")
    assert kinds(tr)[-3:] == [
        ("result", "await-payment", "paid"),
        ("stage_entered", "delivery", None),
        ("completed", "won", None),
    ]
    assert tr.events[-2].data == {
        "child_needed": "goods-delivery",
        "inputs": {"order_ref": "O-7", "address": "Kazan", "ship_date": "2026-12-05"},
        "wait": False,
    }
    child = tr.instance.children[0]
    assert (child.process, child.stage, child.status, child.wait) == (
        "goods-delivery", "delivery", "pending", False,
    )


def test_subprocess_without_wait_records_the_child_and_goes_on() -> None:
    p = inline({"stages": [
        {"id": "a", "kind": "subprocess", "start": True, "process": "goods-delivery",
         "wait": False, "next": "z"},
        {"id": "z", "kind": "end"},
    ]})
    tr = engine.start(p, Start(), ctx("alice"), instance_id="t-1", digest="d" * 64)
    assert kinds(tr) == [
        ("started", None, None), ("stage_entered", "a", None), ("completed", "z", None),
    ]
    assert tr.instance.children[0].wait is False


def test_subprocess_that_waits_holds_the_instance() -> None:
    p = inline({"stages": [
        {"id": "a", "kind": "subprocess", "start": True, "process": "goods-delivery",
         "results": {"delivered": "z"}},
        {"id": "z", "kind": "end"},
    ]})
    inst = start(p, "alice")
    assert (inst.status, inst.stage, inst.children[0].wait) == ("waiting", "a", True)


def test_lost_customer_unreachable_and_declined_branches() -> None:
    inst = start(LOST, "alice", owner="alice", customer="Acme")
    assert adv(LOST, inst, "alice", "unreachable").outcome == "rejected"
    inst = adv(LOST, adv(LOST, inst, "alice", "reached"), "alice", "done", reason="moved")
    inst = prices_checked(inst, "alice")
    assert adv(LOST, inst, "alice", "declined", offer_amount="0").last_stage == "lost"


def test_goods_delivery_to_each_end() -> None:
    inst = start(DELIVERY, "oleg")
    assert inst.stage == "prepare-documents"
    # after the wake-up (a later tick), ship -> confirm -> delivered / returned
    at_ship = replace(inst, stage="ship", status="active")
    at_ship = engine.apply(DELIVERY, at_ship, Advance("shipped", {"tracking_number": "T1"}),
                           ctx("dmitry")).instance
    assert at_ship.stage == "confirm-delivery"
    assert adv(DELIVERY, at_ship, "oleg", "delivered").outcome == "completed"
    assert adv(DELIVERY, at_ship, "oleg", "returned").outcome == "rejected"


# ------------------------------------------------------ no assignee set


def inline(spec: dict[str, Any]) -> Process:
    return build_process({"id": "inline", "name": "Inline", **spec})


def named_process() -> Process:
    return inline({"stages": [
        {"id": "a", "kind": "task", "start": True, "results": {"done": "b"}},
        {"id": "b", "kind": "task", "results": {"done": "z"}},
        {"id": "z", "kind": "end"},
    ]})


def test_a_stage_without_assignee_needs_next_assignee() -> None:
    p = named_process()
    inst = start(p, "alice")
    assert inst.assignees == ("user:alice",)  # the start stage: its initiator
    with pytest.raises(Refused) as exc:
        adv(p, inst, "alice", "done")
    assert refusal(exc) == (
        "stage 'b' has no assignee in the definition; name who does it next"
    )
    assert exc.value.hint == "add --next-assignee USER"
    tr = act(p, inst, Advance("done", next_assignee="linda"), "alice")
    assert tr.instance.assignees == ("user:linda",)
    assert tr.instance.labels == {"user:linda": "named by alice"}


def test_next_assignee_must_exist_and_be_needed() -> None:
    p = named_process()
    with pytest.raises(InvalidValue) as exc:
        act(p, start(p, "alice"), Advance("done", next_assignee="zed"), "alice")
    assert refusal(exc) == "--next-assignee zed: no such user in the org directory"
    with pytest.raises(InvalidValue) as exc:
        act(KEY, start(KEY, "alice"), Advance("done", {"level": "normal"}, next_assignee="bob"),
            "alice")
    assert refusal(exc) == (
        "--next-assignee is only for a next stage with no assignee; 'end' finds its own"
    )


# ----------------------------------------------------------- decisions


def test_decision_on_an_empty_field_is_refused() -> None:
    p = inline({
        "fields": {"n": {"type": "integer"}},
        "stages": [
            {"id": "a", "kind": "task", "start": True, "assignee": "initiator",
             "results": {"done": "d"}},
            {"id": "d", "kind": "decision", "branches": [{"when": "record.n > 1", "to": "z"}],
             "default": "z"},
            {"id": "z", "kind": "end"},
        ],
    })
    with pytest.raises(Refused) as exc:
        adv(p, start(p, "alice"), "alice", "done")
    assert refusal(exc).startswith("cannot decide at 'd': condition `record.n > 1` failed: ")


def test_decision_loop_is_stopped() -> None:
    p = inline({
        "fields": {"n": {"type": "integer"}},
        "stages": [
            {"id": "d", "kind": "decision", "start": True,
             "branches": [{"when": "record.n == 1", "to": "e"}], "default": "e"},
            {"id": "e", "kind": "decision", "branches": [], "default": "d"},
        ],
    })
    with pytest.raises(Refused) as exc:
        start(p, "alice", n="1")
    assert refusal(exc) == (
        "more than 100 automatic stages in a row in 'inline' (last: 'd'); the decisions loop"
    )


# ------------------------------------------- begin, reassign, note, link, cancel


def test_begin_marks_the_stage_in_progress_once() -> None:
    inst = start(KEY, "alice")
    tr = act(KEY, inst, Begin(), "alice")
    assert tr.instance.stage_state == "in progress"
    assert kinds(tr) == [("began", "edit-customer", None)]
    with pytest.raises(Refused) as exc:
        act(KEY, tr.instance, Begin(), "alice")
    assert refusal(exc) == (
        "stage 'edit-customer' of key-account-filing-approval-1 is already in progress"
    )
    with pytest.raises(Refused) as exc:
        act(KEY, inst, Begin(), "bob")
    assert refusal(exc) == "only alice (initiator) can begin 'edit-customer'"


def test_reassign_by_assignee_or_admin() -> None:
    inst = start(DELIVERY, "oleg")
    tr = act(DELIVERY, inst, Reassign("dmitry", "on leave"), "oleg")
    assert tr.instance.assignees == ("user:dmitry",)
    assert tr.events[0].data == {
        "from": ["role:logistics"], "to": "user:dmitry", "comment": "on leave",
    }
    with pytest.raises(Refused) as exc:
        act(DELIVERY, tr.instance, Reassign("oleg"), "alice")
    assert refusal(exc) == "only dmitry (reassigned by oleg) can reassign 'prepare-documents'"
    back = act(DELIVERY, tr.instance, Reassign("oleg"), "grace")
    assert back.events[0].data["as_admin"] is True
    with pytest.raises(Refused) as exc:
        act(DELIVERY, tr.instance, Reassign("dmitry"), "dmitry")
    assert refusal(exc) == "dmitry is already the assignee of 'prepare-documents'"
    with pytest.raises(InvalidValue) as bad:
        act(DELIVERY, inst, Reassign("zed"), "oleg")
    assert refusal(bad) == "cannot reassign to zed: no such user in the org directory"


def test_countersign_cannot_be_reassigned() -> None:
    with pytest.raises(Refused) as exc:
        act(CONTRACT, signing(), Reassign("carol"), "grace")
    assert refusal(exc) == (
        "stage 'executive-signature' needs every approver's signature; it cannot be reassigned"
    )


def test_note_replaces_or_appends() -> None:
    inst = start(KEY, "alice")
    inst = act(KEY, inst, Note("first"), "alice").instance
    tr = act(KEY, inst, Note("second", append=True), "carol")
    assert tr.instance.note == "first\nsecond"
    assert tr.events[0].data == {"text": "second", "append": True, "note": "first\nsecond"}
    assert act(KEY, tr.instance, Note("only"), "alice").instance.note == "only"


def test_link_adds_once() -> None:
    inst = act(KEY, start(KEY, "alice"), Link("contract", "C-1"), "alice").instance
    assert inst.links == (engine.LinkRef("contract", "C-1", "alice", T0),)
    with pytest.raises(Refused) as exc:
        act(KEY, inst, Link("contract", "C-1"), "alice")
    assert refusal(exc) == "key-account-filing-approval-1 is already linked to contract C-1"
    with pytest.raises(InvalidValue):
        act(KEY, inst, Link(" ", "x"), "alice")


def test_cancel_by_initiator_or_admin() -> None:
    inst = start(KEY, "alice")
    with pytest.raises(Refused) as exc:
        act(KEY, inst, Cancel(), "bob")
    assert refusal(exc) == (
        "only alice (initiator) or an admin can cancel key-account-filing-approval-1"
    )
    tr = act(KEY, inst, Cancel("duplicate"), "alice")
    assert (tr.instance.status, tr.instance.stage, tr.instance.last_stage) == (
        "cancelled", None, "edit-customer",
    )
    assert tr.events[0].data == {"reason": "duplicate"}
    assert act(KEY, inst, Cancel(), "grace").events[0].data == {"as_admin": True}


# ---------------------------------------------------------- state


def test_state_round_trips_through_json() -> None:
    import json

    inst = adv(CONTRACT, signing(), "frank", "approve")
    inst = act(CONTRACT, inst, Link("contract", "C-9"), "alice").instance
    state = json.loads(json.dumps(engine.dump_state(inst)))
    columns = {k: getattr(inst, k) for k in (
        "id", "process_id", "definition_digest", "initiator", "started_at", "updated_at",
        "version", "status", "stage", "due_at", "assignees", "parent_id",
    )}
    assert engine.load_instance(columns, state) == inst


def test_times_are_iso_utc_with_seconds() -> None:
    later = NOW + timedelta(hours=3, minutes=5)
    inst = engine.start(KEY, Start(), ctx("alice", later), instance_id="k-1", digest="d").instance
    assert inst.started_at == "2026-11-23T12:05:00Z"
    assert engine.iso(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == "2026-01-01T12:00:00Z"
    assert engine.parse_time("2026-01-01T15:00:00+03:00") == datetime(2026, 1, 1, 12, tzinfo=UTC)


# ------------------------------------------------------------ properties

USERS = [u.id for u in ORG.users]
VALUES = {
    "level": ["normal", "key", "vip"], "owner": ["alice", "frank", "zed"],
    "amount": ["0", "150000", "x"], "credit_score": ["50", "90"],
    "term_months": ["6", "24"], "customer": ["Acme"], "rejection_reason": ["no"],
}


def _command(data: Any, process: Process) -> engine.Command:
    from hypothesis import strategies as st

    kind = data.draw(st.sampled_from(["advance", "advance", "advance", "begin", "reassign",
                                      "note", "cancel"]))
    if kind == "advance":
        results = sorted({r.name for s in process.stages for r in s.results})
        fields = [f.name for f in process.fields if f.name in VALUES]
        chosen = data.draw(st.lists(st.sampled_from(fields), max_size=3, unique=True))
        values = {f: data.draw(st.sampled_from(VALUES[f])) for f in chosen}
        return Advance(data.draw(st.sampled_from(results)), values)
    if kind == "begin":
        return Begin()
    if kind == "reassign":
        return Reassign(data.draw(st.sampled_from(USERS)))
    if kind == "note":
        return Note("n", append=data.draw(st.booleans()))
    return Cancel()


def test_any_command_sequence_keeps_the_invariants() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(st.data(), st.sampled_from([KEY, CONTRACT]))
    def run(data: Any, process: Process) -> None:
        inst = start(process, "alice", **({"owner": "alice"} if process is KEY else {}))
        for _ in range(20):
            cmd = _command(data, process)
            user = data.draw(st.sampled_from(USERS))
            before = engine.dump_state(inst)
            try:
                tr = act(process, inst, cmd, user)
            except (Refused, InvalidValue) as exc:
                message = exc.message
            else:
                message = ""
            if message:  # refused: it says why, and nothing changed
                assert engine.dump_state(inst) == before
                continue
            assert tr.instance.version == inst.version + 1
            assert tr.events
            assert all(e.actor == user for e in tr.events)
            inst = tr.instance
            seen.add(inst.status)
            if inst.finished:
                assert inst.stage is None
                assert inst.assignees == ()
                assert inst.last_stage is not None
            else:
                stage = process.stage(inst.stage or "")
                assert stage is not None
                assert stage.kind.value in ("task", "approval")
                assert inst.assignees

    run()
    assert seen >= {"active", "completed", "cancelled"}  # the sequences went somewhere


def test_every_command_has_a_handler() -> None:
    import typing

    from flowctl.engine import _HANDLERS

    assert set(_HANDLERS) == set(typing.get_args(engine.Command))

"""flowctl tick with a fake clock: every SLA level (remind, notify, reassign to
the manager, automatic result), waits for a duration and until a date,
delayed and blocking tasks, pause and resume, overdue; the exact journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke, trust_workspace

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.engine import NotPermitted, Refused
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


def kw(store: SqliteStore, user: str | None, when: datetime = T0) -> dict[str, Any]:
    out: dict[str, Any] = {"store": store, "processes_dir": PROCESSES, "now": when}
    if user is not None:
        out["as_user"] = user
    return out


def tick(store: SqliteStore, when: datetime) -> timework.TickReport:
    return timework.tick(store=store, processes_dir=PROCESSES, now=when)


def fired(report: timework.TickReport) -> list[tuple[str, str, str]]:
    return [(f.instance_id, f.kind, f.status) for f in report.fired]


def entries(store: SqliteStore, iid: str, since: int = 0) -> list[tuple[str, str | None, Any]]:
    return [(e.kind, e.stage, e.data) for e in runtime.journal(iid, store=store)][since:]


def notes(store: SqliteStore, user: str) -> list[tuple[str, str]]:
    return [(n.kind, n.message) for n in store.notifications(user)]


def timer_rows(store: SqliteStore, iid: str) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(
            "SELECT key, due_at, status FROM timers WHERE instance_id = ? ORDER BY key", (iid,)
        ).fetchall()
    finally:
        conn.close()


# ------------------------------------------------------- contract: SLA levels

C1 = "contract-approval-1"


def submit(store: SqliteStore, amount: int = 50000) -> None:
    runtime.start("contract-approval", values={
        "customer": "Acme", "amount": amount, "credit_score": 90, "term_months": 12,
    }, **kw(store, "alice"))
    runtime.advance(C1, result="submit", **kw(store, "alice"))


def test_remind_then_reassign_to_the_manager_in_business_hours(store: SqliteStore) -> None:
    submit(store)
    # manager-review: 24 and 48 working hours of Moscow 09:00-18:00 from Monday 12:00 local
    assert timer_rows(store, C1) == [
        ("due:manager-review:0:v2", "2026-11-30T12:00:00Z", "pending"),
        ("escalation:manager-review:0:v2", "2026-11-25T15:00:00Z", "pending"),
        ("escalation:manager-review:1:v2", "2026-11-30T12:00:00Z", "pending"),
    ]
    assert fired(tick(store, t("2026-11-25T14:59:59Z"))) == []
    report = tick(store, t("2026-11-25T15:00:00Z"))
    assert fired(report) == [(C1, "escalation", "fired")]
    assert fired(tick(store, t("2026-11-25T15:00:00Z"))) == []  # idempotent
    assert entries(store, C1, 4) == [("escalation", "manager-review", {
        "timer": "escalation:manager-review:0:v2", "due_at": "2026-11-25T15:00:00Z",
        "level": 1, "action": "remind", "after": "24h", "to": ["role:sales-manager"],
    })]
    assert notes(store, "carol")[0] == (
        "reminder", "contract-approval-1: reminder: 'Sales manager review' waits for you since"
        " 2026-11-23T09:00:00Z, due 2026-11-30T12:00:00Z",
    )
    report = tick(store, t("2026-11-30T12:00:00Z"))
    assert fired(report) == [(C1, "due", "fired"), (C1, "escalation", "fired")]
    assert entries(store, C1, 5) == [
        ("overdue", "manager-review", {
            "timer": "due:manager-review:0:v2", "due_at": "2026-11-30T12:00:00Z",
            "assignees": ["role:sales-manager"],
        }),
        ("escalation", "manager-review", {
            "timer": "escalation:manager-review:1:v2", "due_at": "2026-11-30T12:00:00Z",
            "level": 2, "action": "reassign", "after": "48h",
            "from": ["role:sales-manager"], "to": ["user:grace"],
        }),
    ]
    view = runtime.get(C1, **kw(store, "alice", t("2026-11-30T13:00:00Z")))
    assert (view.assignees, view.waiting_for) == (
        ("user:grace",), "grace (escalated: manager of carol)",
    )
    assert notes(store, "grace")[0] == (
        "assigned", "contract-approval-1: 'Sales manager review' is yours now: no answer for 48h",
    )
    late = timework.overdue(**kw(store, "alice", t("2026-11-30T13:00:00Z")))
    assert [(o.instance_id, o.stage, o.late_seconds, o.held_by, o.what) for o in late] == [
        (C1, "manager-review", 3600, "grace (escalated: manager of carol)", "stage"),
    ]
    with pytest.raises(NotPermitted):
        runtime.advance(C1, result="approve", **kw(store, "carol", t("2026-11-30T13:00:00Z")))
    step = runtime.advance(C1, result="approve", **kw(store, "grace", t("2026-11-30T13:00:00Z")))
    assert step.instance.outcome == "approved"
    assert [s for _, _, s in timer_rows(store, C1)] == ["fired", "fired", "fired"]


def test_automatic_result_after_five_days(store: SqliteStore) -> None:
    submit(store, amount=250000)
    runtime.advance(C1, result="approve", **kw(store, "carol"))  # -> executive-signature
    report = tick(store, t("2026-11-28T09:00:00Z"))  # 5 days: remind (2d), due, result
    assert fired(report) == [
        (C1, "escalation", "fired"), (C1, "due", "fired"), (C1, "escalation", "fired"),
    ]
    kinds = [(k, s, d.get("action"), d.get("branch")) for k, s, d in entries(store, C1, 7)]
    assert kinds == [  # the branch of the reviews it happens in
        ("escalation", "executive-signature", "remind", "general-manager"),
        ("overdue", "executive-signature", None, "general-manager"),
        ("escalation", "executive-signature", "result", "general-manager"),
        ("result", "executive-signature", None, "general-manager"),
        ("branch_ended", "rejected", None, "general-manager"),
        ("completed", "rejected", None, None),
    ]
    result = [e for e in runtime.journal(C1, store=store) if e.kind == "result"][-1]
    assert (result.actor, result.result, result.data) == ("flowctl", "reject", {
        "automatic": True, "comment": "no answer within 5d", "fields_missing": ["rejection_reason"],
        "branch": "general-manager",
    })
    view = runtime.get(C1, **kw(store, "alice", t("2026-11-28T09:00:00Z")))
    assert (view.status, view.outcome, view.branches) == ("completed", "rejected", ())
    assert notes(store, "alice")[0] == (
        "rejected", "contract-approval-1: rejected at 'rejected' (outcome: rejected); reason:"
        " no answer within 5d",
    )


def test_a_timer_of_a_stage_left_is_void(store: SqliteStore) -> None:
    submit(store)
    runtime.advance(C1, result="approve", **kw(store, "carol", t("2026-11-24T09:00:00Z")))
    assert [s for _, _, s in timer_rows(store, C1)] == ["void", "void", "void"]
    assert fired(tick(store, t("2026-12-31T00:00:00Z"))) == []


# ------------------------------------------------- lost customer: notify, waits

L1 = "lost-customer-recovery-1"


def lost(store: SqliteStore) -> None:
    runtime.start("lost-customer-recovery", values={"owner": "bob", "customer": "Acme"},
                  **kw(store, "alice"))


def test_remind_then_notify_the_department_head(store: SqliteStore) -> None:
    lost(store)
    assert fired(tick(store, t("2026-11-26T09:00:00Z"))) == [
        (L1, "escalation", "fired"), (L1, "due", "fired"), (L1, "escalation", "fired"),
    ]
    escalations = [d for k, _, d in entries(store, L1) if k == "escalation"]
    assert [(d["level"], d["action"], d["to"]) for d in escalations] == [
        (1, "remind", ["user:bob"]), (2, "notify", ["user:carol"]),
    ]
    assert notes(store, "carol") == [(
        "escalation", "lost-customer-recovery-1: 'Позвонить клиенту' held by bob (record.owner)"
        " has had no answer for 3d",
    )]
    assert [k for k, _ in notes(store, "bob")] == ["overdue", "reminder", "assigned"]


def offer(store: SqliteStore, when: datetime = T0) -> None:
    lost(store)
    runtime.advance(L1, result="reached", **kw(store, "bob", when))
    runtime.advance(L1, result="done", values={"reason": "price"}, **kw(store, "bob", when))


def test_delayed_task_appears_and_blocking_task_holds_the_stage(store: SqliteStore) -> None:
    offer(store)
    with pytest.raises(Refused) as exc:
        runtime.advance(L1, result="accepted", values={"offer_amount": 1}, **kw(store, "bob"))
    assert exc.value.message == (
        "stage 'prepare-offer' of lost-customer-recovery-1 cannot take result 'accepted':"
        " blocking task not done: check-prices (Check the current price list; bob)"
    )
    mine, _ = timework.inbox_tasks(**kw(store, "carol"))
    assert mine == []  # ask-manager appears after 1h
    with pytest.raises(Refused) as exc:
        runtime.task_done(L1, "ask-manager", **kw(store, "carol"))
    assert exc.value.message == (
        "task 'ask-manager' of lost-customer-recovery-1 appears at 2026-11-23T10:00:00Z;"
        " it cannot be done before"
    )
    assert fired(tick(store, t("2026-11-23T10:00:00Z"))) == [(L1, "task", "fired")]
    assert entries(store, L1)[-1] == ("task_created", "prepare-offer", {
        "timer": "task:prepare-offer:1:v3", "due_at": "2026-11-23T10:00:00Z",
        "task": "ask-manager", "name": "Ask the sales manager about a discount",
        "assignee": "role:sales-manager", "blocking": False,
    })
    mine, unread = timework.inbox_tasks(**kw(store, "carol"))
    assert [(v.instance_id, v.task.id, v.task.status) for v in mine] == [
        (L1, "ask-manager", "open"),
    ]
    assert unread == 1
    with pytest.raises(NotPermitted):
        runtime.task_done(L1, "check-prices", **kw(store, "carol"))
    runtime.task_done(L1, "check-prices", comment="list of Nov 20", **kw(store, "bob"))
    assert entries(store, L1)[-1] == ("task_done", "prepare-offer", {
        "task": "check-prices", "name": "Check the current price list", "blocking": True,
        "comment": "list of Nov 20",
    })
    with pytest.raises(Refused):
        runtime.task_done(L1, "check-prices", **kw(store, "bob"))
    step = runtime.advance(L1, result="declined", values={"offer_amount": 1}, **kw(store, "bob"))
    assert step.instance.outcome == "rejected"


def test_a_task_that_blocks_acceptance_does_not_hold_back_a_decline(
    store: SqliteStore,
) -> None:
    offer(store)
    [created] = [d for k, _, d in entries(store, L1) if k == "task_created"]
    assert created == {"task": "check-prices", "name": "Check the current price list",
                       "assignee": "user:bob", "blocking": True, "blocks": ["accepted"]}
    step = runtime.advance(L1, result="declined", values={"offer_amount": 1}, **kw(store, "bob"))
    assert step.instance.outcome == "rejected"


def test_wait_for_thirty_days_then_call_again(store: SqliteStore) -> None:
    offer(store)
    runtime.task_done(L1, "check-prices", **kw(store, "bob"))
    runtime.advance(L1, result="wants-time", values={"offer_amount": 900}, **kw(store, "bob"))
    assert fired(tick(store, t("2026-12-23T08:59:59Z"))) == []
    report = tick(store, t("2026-12-23T09:00:00Z"))
    # the delayed task's timer was void when the offer stage was left
    assert fired(report) == [(L1, "wake", "fired")]
    assert entries(store, L1)[-2:] == [
        ("woke", "pause", {"timer": "wake:pause:0:v5", "due_at": "2026-12-23T09:00:00Z"}),
        ("stage_entered", "call-customer", {
            "assignees": ["user:bob"], "due_at": "2026-12-26T09:00:00Z",
        }),
    ]
    view = runtime.get(L1, **kw(store, "bob", t("2026-12-23T09:00:00Z")))
    assert (view.status, view.stage) == ("active", "call-customer")


def test_wait_until_a_date_field(store: SqliteStore) -> None:
    g1 = "goods-delivery-1"
    runtime.start("goods-delivery", values={
        "order_ref": "O-1", "address": "Omsk", "carrier": "post", "ship_date": "2026-12-01",
    }, **kw(store, "oleg"))
    runtime.advance(g1, result="done", **kw(store, "oleg"))
    assert fired(tick(store, t("2026-11-30T23:59:59Z"))) == []
    assert fired(tick(store, t("2026-12-01T00:00:00Z"))) == [(g1, "wake", "fired")]
    view = runtime.get(g1, **kw(store, "oleg", t("2026-12-01T00:00:00Z")))
    assert (view.stage, view.due_at) == ("ship", "2026-12-02T00:00:00Z")


# -------------------------------------------------------------- pause, resume


def test_pause_stops_the_sla_clock_and_resumes_by_itself(store: SqliteStore) -> None:
    submit(store)
    step = runtime.pause(C1, duration="2d", reason="customer on holiday",
                         **kw(store, "carol", t("2026-11-24T09:00:00Z")))
    assert step.instance.where == "paused at 'manager-review' since 2026-11-24T09:00:00Z," \
        " resumes 2026-11-26T09:00:00Z"
    with pytest.raises(Refused) as exc:
        runtime.advance(C1, result="approve", **kw(store, "carol", t("2026-11-24T10:00:00Z")))
    assert exc.value.message == (
        "instance contract-approval-1 is paused at stage 'manager-review'; nothing can be"
        " advanced until it is resumed"
    )
    assert fired(tick(store, t("2026-11-25T15:00:00Z"))) == []  # remind held back
    assert fired(tick(store, t("2026-11-26T09:00:00Z"))) == [(C1, "resume", "fired")]
    assert entries(store, C1)[-2:] == [
        ("paused", "manager-review", {
            "suspended": ["due:manager-review:0:v2", "escalation:manager-review:0:v2",
                          "escalation:manager-review:1:v2"],
            "for": "2d", "until": "2026-11-26T09:00:00Z", "reason": "customer on holiday",
        }),
        ("resumed", "manager-review", {
            "timer": "resume:manager-review:0:v3", "due_at": "2026-11-26T09:00:00Z",
            "auto": True, "paused_seconds": 172800,
        }),
    ]
    view = runtime.get(C1, **kw(store, "carol", t("2026-11-26T09:00:00Z")))
    assert (view.status, view.due_at) == ("active", "2026-12-02T12:00:00Z")
    assert fired(tick(store, t("2026-11-27T14:59:00Z"))) == []
    assert fired(tick(store, t("2026-11-27T15:00:00Z"))) == [(C1, "escalation", "fired")]


def test_pause_and_resume_by_hand(store: SqliteStore) -> None:
    submit(store)
    runtime.pause(C1, **kw(store, "alice", t("2026-11-23T10:00:00Z")))
    with pytest.raises(Refused, match="already paused"):
        runtime.pause(C1, **kw(store, "alice", t("2026-11-23T10:00:00Z")))
    with pytest.raises(NotPermitted):
        runtime.resume(C1, **kw(store, "frank", t("2026-11-23T11:00:00Z")))
    step = runtime.resume(C1, **kw(store, "alice", t("2026-11-23T11:00:00Z")))
    assert (step.instance.status, step.instance.due_at) == ("active", "2026-11-30T13:00:00Z")
    assert entries(store, C1)[-1] == ("resumed", "manager-review", {
        "auto": False, "paused_seconds": 3600,
    })
    with pytest.raises(Refused, match="is not paused"):
        runtime.resume(C1, **kw(store, "alice", t("2026-11-23T11:00:00Z")))


# ------------------------------------------------------------------ dry run, CLI


def test_dry_run_lists_and_writes_nothing(store: SqliteStore) -> None:
    lost(store)
    report = timework.tick(store=store, processes_dir=PROCESSES, now=t("2026-11-26T09:00:00Z"),
                           dry_run=True)
    assert [(f.kind, f.key, f.status) for f in report.fired] == [
        ("escalation", "escalation:call-customer:0:v1", "due"),
        ("due", "due:call-customer:0:v1", "due"),
        ("escalation", "escalation:call-customer:1:v1", "due"),
    ]
    assert [s for _, _, s in timer_rows(store, L1)] == ["pending"] * 3


def test_tick_and_overdue_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    trust_workspace(tmp_path)
    monkeypatch.setenv("FLOWCTL_PROCESSES", PROCESSES)
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)

    def run(*args: str, now: str = "2026-11-23T09:00:00Z", user: str = "alice") -> Any:
        env = {"FLOWCTL_NOW": now, "FLOWCTL_USER": user}
        return invoke(list(args), env=env)

    run("start", "lost-customer-recovery", "--set", "owner=bob", "--set", "customer=Acme")
    out = run("tick", "--dry-run", now="2026-11-25T09:00:00Z")
    assert (out.exit_code, out.stdout.splitlines()) == (0, [
        "would fire 1 timer due at 2026-11-25T09:00:00Z",
        "DUE                   INSTANCE                  KIND        STAGE          TIMER",
        "2026-11-25T09:00:00Z  lost-customer-recovery-1  escalation  call-customer"
        "  escalation:call-customer:0:v1",
    ])
    out = run("tick", "--now", "2026-11-25T09:00:00Z")
    assert (out.exit_code, out.stdout.splitlines()) == (0, [
        "tick 2026-11-25T09:00:00Z: fired 1",
        "  lost-customer-recovery-1  escalation  'call-customer'  due 2026-11-25T09:00:00Z"
        "  escalation level 1 remind at 'call-customer' after 2d: bob",
        "notifications: 2 undelivered (no user has channels and no FLOWCTL_NOTIFY_COMMAND set)",
    ])
    out = run("tick", "--json", now="2026-11-26T10:00:00Z")
    data = json.loads(out.stdout)
    assert [(f["kind"], f["status"]) for f in data["fired"]] == [
        ("due", "fired"), ("escalation", "fired"),
    ]
    assert data["fired"][1]["entries"][0]["data"]["to"] == ["user:carol"]
    out = run("overdue", now="2026-11-27T12:30:00Z")
    assert out.stdout.splitlines() == [
        "INSTANCE                  STAGE          DUE                   LATE BY    HELD BY",
        "lost-customer-recovery-1  call-customer  2026-11-26T09:00:00Z  1d 3h 30m"
        "  bob (record.owner)",
    ]
    out = run("notifications", user="carol")
    assert out.stdout.splitlines()[1].split("  ")[2:4] == ["carol", "escalation"]
    assert run("notifications", "read", user="carol").stdout == "1 notification marked read\n"
    assert run("notifications", user="carol").stdout == "no notifications\n"
    out = run("tick", "--now", "yesterday")
    assert out.exit_code == 2
    assert "--now 'yesterday' is not an ISO-8601 time" in out.stderr


# ------------------------------------------------------------ store upgrade


def test_a_v1_database_upgrades_in_place_and_its_timers_fire(tmp_path: Path) -> None:
    from flowctl import engine
    from flowctl.api.definitions import load_org
    from flowctl.store import migrations as schema

    db = tmp_path / "v1.db"
    SqliteStore.open(db, migrations=schema.MIGRATIONS[:1]).close()
    source = (ROOT / "processes" / "lost-customer-recovery.yaml").read_text("utf-8")
    process = runtime.process_from_source(source, "lost-customer-recovery")
    step = engine.start(process, engine.Start({"owner": "bob", "customer": "Acme"}),
                        engine.Context("alice", load_org(processes_dir=PROCESSES), T0),
                        instance_id=L1, digest=runtime.digest_of(source))
    row = runtime._to_row(step.instance)
    state = dict(row.state)  # as flowctl 1 wrote it: timers without keys, no tasks
    state["timers"] = [{k: v for k, v in tm.items() if k != "key"} for tm in state["timers"]]
    for name in ("tasks", "paused_from", "paused_at", "suspended"):
        state.pop(name)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO definitions VALUES (?, ?, ?, ?)",
                 (row.definition_digest, row.process_id, source, row.started_at))
    conn.execute(
        "INSERT INTO instances (id, process_id, definition_digest, status, stage, initiator,"
        " started_at, updated_at, version, due_at, assignees, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.id, row.process_id, row.definition_digest, row.status, row.stage, row.initiator,
         row.started_at, row.updated_at, row.version, row.due_at, json.dumps(["user:bob"]),
         json.dumps(state)),
    )
    conn.commit()
    conn.close()
    with SqliteStore.open(db) as store:
        assert store.settings()["user_version"] == schema.SCHEMA_VERSION
        assert timer_rows(store, L1) == [
            ("due:call-customer:0:v1", "2026-11-26T09:00:00Z", "pending"),
            ("escalation:call-customer:0:v1", "2026-11-25T09:00:00Z", "pending"),
            ("escalation:call-customer:1:v1", "2026-11-26T09:00:00Z", "pending"),
        ]
        report = tick(store, t("2026-11-25T09:00:00Z"))
        assert fired(report) == [(L1, "escalation", "fired")]
        assert timer_rows(store, L1)[1] == (
            "escalation:call-customer:0:v1", "2026-11-25T09:00:00Z", "fired",
        )
        view = runtime.get(L1, **kw(store, "bob", t("2026-11-25T09:00:00Z")))
        assert [tm.key for tm in view.timers] == [
            "due:call-customer:0:v1", "escalation:call-customer:1:v1",
        ]

"""Child processes: started in the parent's transaction with the declared
inputs, linked both ways; a waiting parent goes on with the result its
child's end stage maps to, in the transaction that completes the child; the
cancel policy (waited-for children are cancelled with the parent,
fire-and-forget ones keep running)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

ORDER = """\
kind: process
id: order-fulfilment
name: Order fulfilment
starters:
  departments: [sales]
fields:
  order_ref: {type: string}
  address: {type: string}
  ship_date: {type: date}
stages:
  - id: deliver
    kind: subprocess
    start: true
    process: goods-delivery
    inputs:
      order_ref: order_ref
      address: address
      ship_date: ship_date
    wait: true
    results:
      delivered: won
      returned: review-return
  - id: review-return
    kind: task
    assignee: initiator
    results:
      done: lost
  - id: won
    kind: end
  - id: lost
    kind: end
    outcome: rejected
"""

P1 = "order-fulfilment-1"
G1 = "goods-delivery-1"


@pytest.fixture
def folder(tmp_path: Path) -> str:
    processes = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", processes)
    (processes / "order-fulfilment.yaml").write_text(ORDER, encoding="utf-8")
    return str(processes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


def kw(store: SqliteStore, folder: str, user: str, when: datetime = T0) -> dict[str, Any]:
    return {"store": store, "processes_dir": folder, "now": when, "as_user": user}


def kinds(store: SqliteStore, iid: str) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.actor, e.stage) for e in runtime.journal(iid, store=store)]


def start_order(store: SqliteStore, folder: str) -> runtime.StepResult:
    return runtime.start("order-fulfilment", values={
        "order_ref": "O-9", "address": "Kazan", "ship_date": "2026-12-01",
    }, **kw(store, folder, "alice"))


def test_the_child_starts_with_the_parent_and_links_both_ways(
    store: SqliteStore, folder: str
) -> None:
    step = start_order(store, folder)
    assert step.instance.where == f"waiting at 'deliver' for child process {G1}"
    assert [(e.instance_id, e.kind) for e in step.entries] == [
        (P1, "started"), (P1, "stage_entered"), (P1, "child_started"),
        (G1, "started"), (G1, "stage_entered"), (G1, "event"),
    ]
    started = step.entries[3]
    assert (started.actor, started.data["parent"], started.data["initiator"]) == (
        "flowctl", P1, "alice",
    )
    assert started.data["fields"] == {
        "order_ref": "O-9", "address": "Kazan", "ship_date": "2026-12-01",
    }
    child = runtime.get(G1, **kw(store, folder, "oleg"))
    assert (child.parent_id, child.initiator, child.stage) == (P1, "alice", "prepare-documents")
    card = runtime.show(P1, **kw(store, folder, "alice"))
    assert [c.id for c in card.children] == [G1]
    assert [(c.instance_id, c.status, c.wait) for c in card.instance.children] == [
        (G1, "running", True),
    ]
    # the child runs on the exact definition text stored for it
    definition = store.get_definition(child.definition)
    assert definition is not None
    assert definition.source == (Path(folder) / "goods-delivery.yaml").read_text("utf-8")


def deliver(store: SqliteStore, folder: str, end: str) -> runtime.StepResult:
    runtime.advance(G1, result="done", values={"carrier": "post"}, **kw(store, folder, "oleg"))
    when = datetime(2026, 12, 1, tzinfo=UTC)
    timework.tick(store=store, processes_dir=folder, now=when)
    runtime.advance(G1, result="shipped", values={"tracking_number": "T1"},
                    **kw(store, folder, "oleg", when))
    return runtime.advance(G1, result=end, **kw(store, folder, "oleg", when))


def test_the_parent_goes_on_with_the_result_of_the_childs_end(
    store: SqliteStore, folder: str
) -> None:
    start_order(store, folder)
    step = deliver(store, folder, "delivered")
    assert [(e.instance_id, e.kind, e.result) for e in step.entries] == [
        (G1, "result", "delivered"), (G1, "completed", None),
        (P1, "child_ended", None), (P1, "result", "delivered"), (P1, "completed", None),
    ]
    assert step.entries[2].data == {
        "child": G1, "status": "completed", "end": "delivered", "outcome": "completed",
        "result": "delivered",
    }
    assert step.entries[3].data == {"automatic": True, "child": G1}
    assert kinds(store, P1)[-3:] == [
        ("child_ended", "flowctl", "deliver"), ("result", "flowctl", "deliver"),
        ("completed", "flowctl", "won"),
    ]
    # one transaction: the child's completion and the parent's move share the journal tail
    seqs = [e.seq or 0 for e in step.entries]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    parent = runtime.get(P1, **kw(store, folder, "alice"))
    assert (parent.status, parent.last_stage) == ("completed", "won")


def test_another_end_maps_to_another_stage(store: SqliteStore, folder: str) -> None:
    start_order(store, folder)
    deliver(store, folder, "returned")
    parent = runtime.get(P1, **kw(store, folder, "alice"))
    assert (parent.status, parent.stage, parent.assignees) == (
        "active", "review-return", ("user:alice",),
    )


def test_cancelling_the_child_hands_the_stage_to_the_initiator(
    store: SqliteStore, folder: str
) -> None:
    start_order(store, folder)
    step = runtime.cancel(G1, reason="wrong order", **kw(store, folder, "grace"))
    assert step.entries[-1].data == {
        "child": G1, "status": "cancelled", "end": "prepare-documents", "outcome": "cancelled",
        "mapped": False,
    }
    parent = runtime.get(P1, **kw(store, folder, "alice"))
    assert (parent.status, parent.stage, parent.assignees) == (
        "active", "deliver", ("user:alice",),
    )
    assert store.notifications("alice")[0].message == (
        f"{P1}: child {G1} ended cancelled at 'prepare-documents', which 'deliver' has no result"
        f" for; choose one (delivered, returned) with flowctl advance {P1} -r RESULT"
    )
    done = runtime.advance(P1, result="delivered", **kw(store, folder, "alice"))
    assert done.instance.outcome == "completed"


def test_cancelling_the_parent_cancels_the_child_it_waits_for(
    store: SqliteStore, folder: str
) -> None:
    start_order(store, folder)
    step = runtime.cancel(P1, reason="customer withdrew", **kw(store, folder, "alice"))
    assert [(e.instance_id, e.kind) for e in step.entries] == [
        (P1, "cancelled"), (G1, "cancelled"),
    ]
    assert step.entries[0].data == {"reason": "customer withdrew", "children_cancelled": [G1]}
    assert step.entries[1].data == {"reason": f"parent {P1} was cancelled", "parent": P1}
    assert step.entries[1].actor == "flowctl"
    from flowctl.cli.views import step_lines

    assert step_lines(step) == [
        f"{P1}: children it waited for are cancelled with it: {G1}",
        f"{G1}: cancelled at 'prepare-documents': parent {P1} was cancelled",
        f"{P1}: cancelled at 'deliver' (outcome: cancelled)",
    ]
    assert runtime.get(G1, **kw(store, folder, "oleg")).status == "cancelled"


def test_a_fire_and_forget_child_keeps_running(store: SqliteStore, folder: str) -> None:
    lcr = "lost-customer-recovery-1"
    runtime.start("lost-customer-recovery", values={"owner": "bob", "customer": "Acme"},
                  **kw(store, folder, "alice"))
    for result, values in (("reached", {}), ("done", {"reason": "price"})):
        runtime.advance(lcr, result=result, values=values, **kw(store, folder, "bob"))
    runtime.task_done(lcr, "check-prices", **kw(store, folder, "bob"))
    runtime.advance(lcr, result="accepted", values={"offer_amount": 9},
                    **kw(store, folder, "bob"))
    step = runtime.advance(lcr, result="paid", values={
        "order_ref": "O-1", "delivery_address": "Omsk", "ship_date": "2026-12-01",
    }, **kw(store, folder, "frank"))
    assert step.instance.outcome == "completed"  # won at once: the child runs on its own
    assert runtime.get(G1, **kw(store, folder, "oleg")).status == "active"
    # the child ending later leaves the finished parent alone
    deliver(store, folder, "delivered")
    assert [k for k, _, _ in kinds(store, lcr)][-4:] == [
        "result", "stage_entered", "child_started", "completed",
    ]

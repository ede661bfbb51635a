"""Outcomes reach the people who asked: the initiator is notified when an
instance completes (with its outcome), is rejected (with the reason) or is
cancelled (with the reason), unless they did it themselves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
ORG = str(ROOT / "processes" / "org.yaml")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
K1 = "key-account-filing-approval-1"
P1 = "purchase-1"

PURCHASE = """\
kind: process
id: purchase
name: Purchase
fields:
  amount:
    type: integer
    label: Amount
  rejection_reason:
    type: text
    label: Why it was refused
stages:
  - id: ask
    kind: task
    start: true
    name: Ask
    assignee: initiator
    fields:
      required: [amount]
    results:
      submit: review
  - id: review
    kind: approval
    name: Review
    approvers:
      - user: carol
    results:
      approve: bought
      reject:
        to: refused
        fields:
          required: [rejection_reason]
  - id: bought
    kind: end
    name: Bought
    outcome: approved
  - id: refused
    kind: end
    name: Refused
    outcome: rejected
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


@pytest.fixture
def processes(tmp_path: Path) -> str:
    folder = tmp_path / "processes"
    folder.mkdir()
    (folder / "purchase.yaml").write_text(PURCHASE, encoding="utf-8")
    return str(folder)


def kw(store: SqliteStore, user: str, processes: str = str(ROOT / "processes")
       ) -> dict[str, Any]:
    return {"store": store, "processes_dir": processes, "org": ORG, "now": T0, "as_user": user}


def outcome_notices(store: SqliteStore, user: str) -> list[tuple[str, str, str | None, str]]:
    return [
        (n.instance_id, n.kind, n.stage, n.message)
        for n in reversed(timework.notifications(include_read=True, **kw(store, user)))
        if n.kind in ("completed", "rejected", "cancelled")
    ]


def submitted(store: SqliteStore, processes: str) -> None:
    runtime.start("purchase", values={"amount": 900}, **kw(store, "alice", processes))
    runtime.advance(P1, result="submit", **kw(store, "alice", processes))


def test_the_initiator_hears_the_outcome_of_a_completed_instance(
    store: SqliteStore, processes: str
) -> None:
    submitted(store, processes)
    runtime.advance(P1, result="approve", **kw(store, "carol", processes))
    assert outcome_notices(store, "alice") == [
        (P1, "completed", "bought", f"{P1}: completed at 'bought' (outcome: approved)"),
    ]
    assert outcome_notices(store, "carol") == []  # the actor is not told of their own act


def test_the_initiator_hears_a_rejection_with_the_reason(
    store: SqliteStore, processes: str
) -> None:
    submitted(store, processes)
    runtime.advance(P1, result="reject", values={"rejection_reason": "over budget"},
                    **kw(store, "carol", processes))
    assert outcome_notices(store, "alice") == [
        (P1, "rejected", "refused",
         f"{P1}: rejected at 'refused' (outcome: rejected); reason: rejection_reason=over budget"),
    ]


def test_a_rejection_comment_is_the_reason(store: SqliteStore, processes: str) -> None:
    submitted(store, processes)
    runtime.advance(P1, result="reject", values={"rejection_reason": "budget"},
                    comment="ask again in January", **kw(store, "carol", processes))
    [(_, kind, _, message)] = outcome_notices(store, "alice")
    assert (kind, message) == (
        "rejected",
        f"{P1}: rejected at 'refused' (outcome: rejected); reason: ask again in January",
    )


def test_the_initiator_hears_a_cancellation_with_the_reason(store: SqliteStore) -> None:
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, "alice"))
    runtime.cancel(K1, reason="duplicate of K-7", **kw(store, "grace"))
    assert outcome_notices(store, "alice") == [
        (K1, "cancelled", "edit-customer",
         f"{K1}: cancelled at 'edit-customer' by grace; reason: duplicate of K-7"),
    ]


def test_the_initiator_is_not_told_of_their_own_act(store: SqliteStore) -> None:
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, "alice"))
    runtime.cancel(K1, reason="changed my mind", **kw(store, "alice"))
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, "alice"))
    # level=normal: the decision ends it at once, by alice's own advance
    runtime.advance(f"{K1[:-1]}2", result="done", values={"level": "normal"},
                    **kw(store, "alice"))
    assert runtime.get(f"{K1[:-1]}2", **kw(store, "alice")).status == "completed"
    assert outcome_notices(store, "alice") == []


def test_a_key_account_completed_by_the_head_tells_the_initiator(store: SqliteStore) -> None:
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, "alice"))
    runtime.advance(K1, result="done", values={"level": "key"}, **kw(store, "alice"))
    runtime.advance(K1, result="approve", **kw(store, "carol"))
    runtime.advance(K1, result="done", values={"owner": "bob"}, **kw(store, "carol"))
    assert outcome_notices(store, "alice") == [
        (K1, "completed", "end", f"{K1}: completed at 'end' (outcome: completed)"),
    ]

"""Notifications: produced on entering a stage and by SLA firings, listed and
marked read, delivered through FLOWCTL_NOTIFY_COMMAND (JSON on stdin), only
marked delivered after exit 0, failures retried with backoff and journalled."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.engine import NotPermitted
from flowctl.errors import UsageError
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
K1 = "key-account-filing-approval-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


def kw(store: SqliteStore, user: str, when: datetime = T0) -> dict[str, Any]:
    return {"store": store, "processes_dir": PROCESSES, "now": when, "as_user": user}


def key_at_approval(store: SqliteStore) -> None:
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, "alice"))
    runtime.advance(K1, result="done", values={"level": "key"}, **kw(store, "alice"))


def command(tmp_path: Path, body: str) -> str:
    script = tmp_path / "notify.py"
    script.write_text(body, encoding="utf-8")
    return f"{sys.executable} {script}"


SAVE = """\
import json, sys
data = json.load(sys.stdin)
with open(sys.argv[0] + ".out", "a", encoding="utf-8") as fh:
    fh.write(json.dumps(data, ensure_ascii=False) + "\\n")
"""
FAIL = "import sys\nsys.stdin.read()\nprint('smtp down', file=sys.stderr)\nsys.exit(3)\n"


def test_entering_a_stage_notifies_its_assignee(store: SqliteStore) -> None:
    key_at_approval(store)
    [n] = timework.notifications(**kw(store, "carol"))
    assert (n.instance_id, n.user, n.kind, n.stage, n.message, n.delivered_at) == (
        K1, "carol", "assigned", "level-approval",
        f"{K1}: 'Level approval' waits for you, due 2026-11-24T09:00:00Z", None,
    )
    assert timework.notifications(**kw(store, "alice")) == []  # the actor is not told
    assert timework.mark_read(**kw(store, "carol")) == 1
    assert timework.notifications(**kw(store, "carol")) == []
    assert len(timework.notifications(include_read=True, **kw(store, "carol"))) == 1
    with pytest.raises(NotPermitted):
        timework.notifications(everyone=True, **kw(store, "carol"))
    assert len(timework.notifications(everyone=True, include_read=True,
                                      **kw(store, "grace"))) == 1


def test_delivery_runs_the_command_with_json_and_marks_delivered(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCTL_NOTIFY_COMMAND", command(tmp_path, SAVE))
    key_at_approval(store)
    report = timework.tick(store=store, processes_dir=PROCESSES, now=T0)
    assert [(d.user, d.delivered) for d in report.deliveries] == [("carol", True)]
    assert report.undelivered == 0
    [line] = (tmp_path / "notify.py.out").read_text("utf-8").splitlines()
    assert json.loads(line) == {
        "id": 1, "instance": K1, "user": "carol", "email": None, "name": "Carol Chen",
        "kind": "assigned", "stage": "level-approval",
        "message": f"{K1}: 'Level approval' waits for you, due 2026-11-24T09:00:00Z",
        "subject": f"{K1}: 'Level approval' waits for you, due 2026-11-24T09:00:00Z",
        "link": f"flowctl show {K1}",
        "created_at": "2026-11-23T09:00:00Z", "attempt": 1,
    }
    [n] = store.notifications("carol")
    assert (n.delivered_at, n.attempts) == ("2026-11-23T09:00:00Z", 1)
    again = timework.tick(store=store, processes_dir=PROCESSES, now=T0)
    assert again.deliveries == ()  # delivered once
    [sent] = [e for e in runtime.journal(K1, store=store) if e.kind == "notification_sent"]
    assert sent.data == {"notification": 1, "user": "carol", "kind": "assigned", "attempt": 1,
                         "sent": ["FLOWCTL_NOTIFY_COMMAND"]}


def test_failures_are_retried_with_backoff_journalled_and_never_lost(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCTL_NOTIFY_COMMAND", command(tmp_path, FAIL))
    key_at_approval(store)
    when = T0
    waits = []
    for _ in range(5):
        report = timework.deliver_notifications(store=store, processes_dir=PROCESSES, now=when)
        [d] = report.deliveries
        assert (d.delivered, d.error) == (False, "FLOWCTL_NOTIFY_COMMAND: exit 3: smtp down")
        [n] = store.notifications("carol")
        if n.next_attempt_at and not d.gave_up:
            retry = datetime.fromisoformat(n.next_attempt_at.replace("Z", "+00:00"))
            waits.append(int((retry - when).total_seconds()))
            # nothing is tried again before its time
            early = timework.deliver_notifications(store=store, processes_dir=PROCESSES,
                                                   now=retry - timedelta(seconds=1))
            assert early.deliveries == ()
            when = retry
    assert waits == [60, 120, 240, 480]
    assert d.gave_up
    [n] = store.notifications("carol")
    assert (n.attempts, n.delivered_at, n.last_error) == (
        5, None, "FLOWCTL_NOTIFY_COMMAND: exit 3: smtp down")
    failed = [e for e in runtime.journal(K1, store=store) if e.kind == "notification_failed"]
    assert [e.data.get("attempt") for e in failed] == [1, 2, 3, 4, 5]
    assert failed[-1].data == {
        "notification": 1, "user": "carol", "kind": "assigned", "attempt": 5, "sent": [],
        "failed": {"FLOWCTL_NOTIFY_COMMAND": "exit 3: smtp down"},
        "error": "FLOWCTL_NOTIFY_COMMAND: exit 3: smtp down", "gave_up": True,
    }
    assert failed[0].data["next_attempt_at"] == "2026-11-23T09:01:00Z"
    assert timework.deliver_notifications(store=store, processes_dir=PROCESSES,
                                          now=when + timedelta(days=1)).deliveries == ()
    assert store.undelivered_count() == 1


def test_a_command_that_hangs_times_out(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCTL_NOTIFY_COMMAND",
                       command(tmp_path, "import time\ntime.sleep(30)\n"))
    monkeypatch.setenv("FLOWCTL_NOTIFY_TIMEOUT", "0.5")
    key_at_approval(store)
    report = timework.deliver_notifications(store=store, processes_dir=PROCESSES, now=T0)
    assert [d.error for d in report.deliveries] == ["FLOWCTL_NOTIFY_COMMAND: timed out after 0.5 s"]


def test_deliver_without_a_command_says_how_to_configure_it(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    with pytest.raises(UsageError, match="nowhere to deliver to: no user of the org directory"
                       " has `channels` and FLOWCTL_NOTIFY_COMMAND is not set"):
        timework.deliver_notifications(store=store, processes_dir=PROCESSES, now=T0)

"""``notify:`` in a definition: which events tell whom, with subject and
message templates over the instance's fields; one message per event and
person (a reminder at the due moment is folded into the overdue notice)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.definition.templates import problems, render
from flowctl.store.base import NotificationRow
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

def _doc_example() -> str:
    """The example of docs/format.md's "Notifications (notify)" section."""
    text = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    section = text.split("## Notifications (notify)", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return block


PROCESS = _doc_example()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    procs = tmp_path / "processes"
    procs.mkdir()
    (procs / "callback.yaml").write_text(PROCESS, encoding="utf-8")
    shutil.copy(ROOT / "processes" / "org.yaml", procs / "org.yaml")
    return procs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


def kw(store: SqliteStore, folder: Path, user: str | None = None,
       when: datetime = T0) -> dict[str, Any]:
    out: dict[str, Any] = {"store": store, "processes_dir": str(folder), "now": when}
    if user is not None:
        out["as_user"] = user
    return out


def everyone(store: SqliteStore) -> list[NotificationRow]:
    return sorted(store.notifications(None, unread_only=False), key=lambda n: n.id or 0)


def test_the_process_templates_write_the_entered_notification(
    store: SqliteStore, folder: Path,
) -> None:
    runtime.start("callback", values={"customer": "Acme", "owner": "bob"},
                  **kw(store, folder, "alice"))
    [n] = everyone(store)  # the task notification is switched off (task: false)
    assert (n.user, n.kind, n.subject, n.message) == (
        "bob", "assigned", "Call Acme back (callback-1)",
        "Call the customer for Acme waits for Bob Li, due 2026-11-25T09:00:00Z.",
    )


def test_a_reminder_at_the_due_moment_is_one_message_with_the_overdue_notice(
    store: SqliteStore, folder: Path,
) -> None:
    runtime.start("callback", values={"customer": "Acme", "owner": "bob"},
                  **kw(store, folder, "alice"))
    timework.tick(**kw(store, folder, when=T0 + timedelta(days=2)))
    later = [n for n in everyone(store) if n.created_at != "2026-11-23T09:00:00Z"]
    assert [(n.user, n.kind) for n in later] == [("bob", "overdue")]
    journal = list(runtime.journal("callback-1", **kw(store, folder, "grace")))
    [esc] = [e for e in journal if e.kind == "escalation"]
    assert esc.data["told_by"] == "overdue"
    assert [e.kind for e in journal if e.kind == "overdue"] == ["overdue"]


def test_escalation_and_outcome_go_where_the_definition_says(
    store: SqliteStore, folder: Path,
) -> None:
    runtime.start("callback", values={"customer": "Acme", "owner": "bob"},
                  **kw(store, folder, "alice"))
    timework.tick(**kw(store, folder, when=T0 + timedelta(days=3)))
    runtime.advance("callback-1", result="done", **kw(store, folder, "bob", T0 + timedelta(days=3)))
    outcome = [n for n in everyone(store) if n.kind == "completed"]
    assert [(n.user, n.subject, n.message) for n in outcome] == [
        ("alice", "Acme: called back", "Acme was called back (completed)."),
        ("carol", "Acme: called back", "Acme was called back (completed)."),
    ]
    escalated = [n for n in everyone(store) if n.kind == "escalation"]
    assert [(n.user, n.subject) for n in escalated] == [("carol", None)]


def test_an_end_without_notify_keeps_the_default_outcome_notice(
    store: SqliteStore, folder: Path,
) -> None:
    runtime.start("callback", values={"customer": "Acme", "owner": "bob"},
                  **kw(store, folder, "alice"))
    runtime.advance("callback-1", result="gave-up", **kw(store, folder, "bob"))
    [n] = [n for n in everyone(store) if n.kind == "rejected"]
    assert (n.user, n.subject, n.message) == (
        "alice", None, "callback-1: rejected at 'dropped' (outcome: rejected); reason: none given")


def test_the_documented_example_lints_clean(folder: Path) -> None:
    from flowctl import api

    result = api.lint_paths([str(folder / "callback.yaml")], org=str(folder / "org.yaml"))
    assert [d.code for d in result.diagnostics] == []


def test_templates_render_text_and_run_no_code() -> None:
    values = {"instance": "x-1", "assignees": ["Bob Li", "Carol Chen"]}
    record = {"customer": "{{ instance }}", "amount": 12.5, "vip": True}
    assert render("{{instance}}: {{ record.customer }} {{ record.amount }} {{ record.vip }}"
                  " {{ assignees }} [{{ record.missing }}]", values, record) == (
        "x-1: {{ instance }} 12.5 yes Bob Li, Carol Chen []")
    assert problems("{{ record.customer.__class__ }} {{ 1 + 1 }}", {"customer"}) == [
        "`{{ record.customer.__class__ }}` is not a placeholder: write {{ record.FIELD }} or one"
        " of instance, process, stage, stage_id, initiator, assignees, due_at, outcome, event",
        "`{{ 1 + 1 }}` is not a placeholder: write {{ record.FIELD }} or one of instance,"
        " process, stage, stage_id, initiator, assignees, due_at, outcome, event",
    ]

"""The runtime api: one transaction per command, over an in-memory store that
keeps the store contract (fast), and over the real SQLite store where the
database itself matters (default path, concurrency, the hash chain)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from flowctl.api import instances as runtime
from flowctl.api.identity import UnknownUser, resolve_user
from flowctl.engine import Refused
from flowctl.errors import UsageError
from flowctl.store.base import (
    ConflictError,
    Definition,
    InstanceFilter,
    InstanceRow,
    JournalEntry,
    JournalFilter,
    NotificationRow,
    StoreError,
    TimerRow,
    VerifyReport,
)

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = "key-account-filing-approval"


class FakeTx:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        return self.s.instances.get(instance_id)

    def insert_instance(self, row: InstanceRow) -> None:
        assert row.id not in self.s.instances
        self.s.instances[row.id] = row

    def update_instance(self, row: InstanceRow, *, expected_version: int) -> None:
        assert row.version == expected_version + 1
        if self.s.instances[row.id].version != expected_version:
            raise ConflictError(f"instance {row.id} changed")
        self.s.instances[row.id] = row

    def append_journal(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        out = []
        for e in entries:
            filled = replace(e, seq=len(self.s.entries) + 1, prev_hash="", hash="h")
            self.s.entries.append(filled)
            out.append(filled)
        return out

    def put_definition(self, definition: Definition) -> None:
        self.s.definitions.setdefault(definition.digest, definition)

    def new_instance_id(self, process_id: str) -> str:
        self.s.counters[process_id] = self.s.counters.get(process_id, 0) + 1
        return f"{process_id}-{self.s.counters[process_id]}"

    def get_timer(self, instance_id: str, key: str) -> TimerRow | None:
        row = self.s.instances.get(instance_id)
        found = [t for t in row.timers if t.key == key] if row else []
        return found[0] if found else None

    def mark_timer(self, instance_id: str, key: str, *, status: str, at: str) -> None:
        pass  # the fake keeps only pending timers (those in the instance rows)

    def add_notifications(self, rows: list[NotificationRow]) -> None:
        for n in rows:
            self.s.notices.append(replace(n, id=len(self.s.notices) + 1))

    def claim_notifications(
        self, *, now: str, lease_until: str, max_attempts: int, limit: int
    ) -> list[NotificationRow]:
        return []

    def finish_notification(
        self, notification_id: int, *, delivered_at: str | None, error: str | None,
        next_attempt_at: str | None, channels_done: tuple[str, ...] = (),
    ) -> NotificationRow:
        raise AssertionError("the fake store delivers nothing")

    def mark_read(self, user: str, ids: tuple[int, ...], *, at: str) -> int:
        return 0

    def open_load(self, users: Sequence[str], *,
                  excluding: str | None = None) -> dict[str, int]:
        load: dict[str, int] = {}
        for row in self.s.instances.values():
            for p in row.assignees if row.id != excluding else ():
                if p.startswith("user:") and p[5:] in users:
                    load[p[5:]] = load.get(p[5:], 0) + 1
        return load

    def pick_turns(self) -> dict[str, str]:
        return dict(self.s.turns)

    def set_pick_turn(self, pool: str, user: str, *, at: str) -> None:
        self.s.turns[pool] = user


class FakeStore:
    """The Store protocol in memory; a transaction rolls back on an exception."""

    def __init__(self) -> None:
        self.instances: dict[str, InstanceRow] = {}
        self.definitions: dict[str, Definition] = {}
        self.entries: list[JournalEntry] = []
        self.counters: dict[str, int] = {}
        self.notices: list[NotificationRow] = []
        self.turns: dict[str, str] = {}
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[FakeTx]:
        saved = (dict(self.instances), dict(self.definitions), list(self.entries),
                 dict(self.counters), list(self.notices))
        self.transactions += 1
        try:
            yield FakeTx(self)
        except BaseException:
            (self.instances, self.definitions, self.entries, self.counters,
             self.notices) = saved
            raise

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        return self.instances.get(instance_id)

    def login(self) -> str | None:
        return None  # as a file: the operating-system login counts

    def get_definition(self, digest: str) -> Definition | None:
        return self.definitions.get(digest)

    def list_instances(self, flt: InstanceFilter) -> Iterator[InstanceRow]:
        rows = [
            r for r in self.instances.values()
            if (not flt.status or r.status in flt.status)
            and (flt.process_id is None or r.process_id == flt.process_id)
            and (not flt.principals or set(flt.principals) & set(r.assignees))
            and (flt.started_since is None or r.started_at >= flt.started_since)
            and (flt.parent_id is None or r.parent_id == flt.parent_id)
            and (flt.due_before is None or (r.due_at or "~") < flt.due_before)
        ]
        rows.sort(key=lambda r: (r.started_at, int(r.id.rsplit("-", 1)[1])),
                  reverse=not flt.oldest_first)
        return iter(rows[: flt.limit] if flt.limit is not None else rows)

    def journal(self, flt: JournalFilter) -> Iterator[JournalEntry]:
        for e in self.entries:
            if flt.instance_id is not None and e.instance_id != flt.instance_id:
                continue
            if flt.actor is not None and e.actor != flt.actor:
                continue
            if flt.since is not None and e.at < flt.since:
                continue
            if flt.until is not None and e.at >= flt.until:
                continue
            if flt.process_id is not None and not e.instance_id.startswith(flt.process_id):
                continue
            yield e

    def verify_journal(self) -> VerifyReport:
        return VerifyReport(ok=True, entries=len(self.entries))

    def undelivered_count(self) -> int:
        return sum(1 for n in self.notices if n.delivered_at is None)

    def due_timers(self, now: str, *, limit: int | None = None) -> list[TimerRow]:
        due = sorted(
            (t for r in self.instances.values() for t in r.timers if t.due_at <= now),
            key=lambda t: (t.due_at, t.instance_id, t.key),
        )
        return due[:limit] if limit is not None else due

    def notifications(
        self, user: str | None, *, unread_only: bool = True, limit: int | None = None
    ) -> list[NotificationRow]:
        return [n for n in reversed(self.notices) if user is None or n.user == user][:limit]

    def close(self) -> None:
        pass


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def at(hour: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def kw(store: FakeStore, user: str, when: datetime = NOW) -> dict[str, Any]:
    return {"store": store, "as_user": user, "processes_dir": PROCESSES, "now": when}


def key_at_approval(store: FakeStore, when: datetime = NOW) -> str:
    step = runtime.start(KEY, values={"owner": "alice"}, **kw(store, "alice", when))
    runtime.advance(step.instance.id, result="done", values={"level": "key"},
                    **kw(store, "alice", when))
    return step.instance.id


# ------------------------------------------------------------- writes


def test_start_stores_definition_instance_and_journal_in_one_transaction(
    store: FakeStore,
) -> None:
    step = runtime.start(KEY, values={"owner": "alice"}, note="hello", **kw(store, "alice"))
    v = step.instance
    assert v.id == "key-account-filing-approval-1"
    assert (v.status, v.stage, v.stage_state, v.version) == ("active", "edit-customer",
                                                             "not started", 1)
    assert v.where == "at 'edit-customer', waiting for alice (initiator)"
    assert store.transactions == 1
    text = (Path(PROCESSES) / f"{KEY}.yaml").read_text("utf-8")
    (definition,) = store.definitions.values()
    assert definition.source == text
    assert definition.digest == runtime.digest_of(text) == v.definition
    assert (definition.process_id, definition.stored_at) == (KEY, "2026-11-23T09:00:00Z")
    row = store.instances[v.id]
    assert (row.assignees, row.initiator, row.due_at) == (("user:alice",), "alice", None)
    assert row.state["record"] == {"owner": "alice"}
    assert [(e.kind, e.version, e.seq) for e in step.entries] == [
        ("started", 1, 1), ("stage_entered", 1, 2),
    ]


def test_advance_writes_the_row_and_entries_of_one_version(store: FakeStore) -> None:
    iid = key_at_approval(store)
    row = store.instances[iid]
    assert (row.version, row.stage, row.assignees, row.due_at) == (
        2, "level-approval", ("user:carol",), "2026-11-24T09:00:00Z",
    )
    assert [(e.kind, e.version) for e in store.entries[2:]] == [
        ("field_changed", 2), ("result", 2), ("decision", 2), ("stage_entered", 2),
    ]
    step = runtime.advance(iid, result="approve", **kw(store, "carol"))
    assert step.instance.where == "at 'change-owner', waiting for carol (head of sales)"


def test_a_refused_command_writes_nothing(store: FakeStore) -> None:
    iid = key_at_approval(store)
    before = (dict(store.instances), list(store.entries))
    with pytest.raises(Refused) as exc:
        runtime.advance(iid, result="approve", values={"note": "x"}, **kw(store, "bob"))
    assert exc.value.message == "only carol (head of sales) can approve 'level-approval'"
    assert (store.instances, store.entries) == before


def test_unknown_instance_is_a_usage_error(store: FakeStore) -> None:
    with pytest.raises(runtime.UnknownInstance) as exc:
        runtime.advance("nope-1", result="done", **kw(store, "alice"))
    assert exc.value.message == (
        "no instance 'nope-1': no instance was started in this store yet"
    )
    assert exc.value.hint == "start one with `flowctl start PROCESS`"
    assert exc.value.exit_code == 2


def test_expect_version_refuses_a_stale_intent(store: FakeStore) -> None:
    iid = key_at_approval(store)
    entries = len(store.entries)
    with pytest.raises(ConflictError) as exc:
        runtime.advance(iid, result="approve", expect_version=1, **kw(store, "carol"))
    assert exc.value.message == (
        f"instance {iid} is at version 2, not 1 (--expect-version); nothing was written"
    )
    assert exc.value.exit_code == 5
    assert len(store.entries) == entries
    step = runtime.advance(iid, result="approve", expect_version=2, **kw(store, "carol"))
    assert step.instance.version == 3


def test_instances_keep_the_definition_they_started_on(
    store: FakeStore, tmp_path: Path
) -> None:
    procs = tmp_path / "processes"
    shutil.copytree(PROCESSES, procs)
    args: dict[str, Any] = {"store": store, "processes_dir": str(procs), "now": NOW}
    old = runtime.start(KEY, as_user="alice", **args).instance
    path = procs / f"{KEY}.yaml"
    path.write_text(
        path.read_text("utf-8").replace("      done: check-level", "      finished: check-level"),
        "utf-8",
    )
    new = runtime.start(KEY, as_user="alice", **args).instance
    assert new.definition != old.definition
    assert len(store.definitions) == 2
    step = runtime.advance(old.id, result="done", values={"level": "normal"}, as_user="alice",
                           **args)
    assert step.instance.status == "completed"
    with pytest.raises(Refused) as exc:
        runtime.advance(new.id, result="done", values={"level": "normal"}, as_user="alice",
                        **args)
    assert exc.value.message == (
        "result 'done' is not allowed at stage 'edit-customer'; allowed: finished"
    )


def test_begin_reassign_note_link_cancel(store: FakeStore) -> None:
    iid = runtime.start("goods-delivery", **kw(store, "oleg")).instance.id
    assert runtime.begin(iid, **kw(store, "dmitry")).instance.stage_state == "in progress"
    step = runtime.reassign(iid, user="dmitry", comment="mine", **kw(store, "oleg"))
    assert step.instance.waiting_for == "dmitry (reassigned by oleg)"
    assert runtime.note(iid, text="a", **kw(store, "dmitry")).instance.note == "a"
    assert runtime.note(iid, text="b", append=True, **kw(store, "oleg")).instance.note == "a\nb"
    links = runtime.link(iid, kind="order", ref="O-1", **kw(store, "oleg")).instance.links
    assert [(lk.kind, lk.ref, lk.by) for lk in links] == [("order", "O-1", "oleg")]
    step = runtime.cancel(iid, reason="dup", **kw(store, "oleg"))
    assert step.instance.where == "cancelled at 'prepare-documents' (outcome: cancelled)"
    assert [e.kind for e in runtime.journal(iid, store=store)] == [
        "started", "stage_entered", "event", "began", "reassigned", "note", "note", "link",
        "cancelled",
    ]
    assert [e.version for e in runtime.journal(iid, store=store)] == [1, 1, 1, 2, 3, 4, 5, 6, 7]


# -------------------------------------------------------------- reads


def test_show_has_fields_and_history(store: FakeStore) -> None:
    iid = key_at_approval(store)
    card = runtime.show(iid, **kw(store, "carol"))  # who holds its approval sees it
    assert card.instance.process_name == "大客户备案审批流程 (Key Account Filing Approval)"
    assert [(f.name, f.label, f.value) for f in card.fields] == [
        ("level", "Customer level", "key"), ("type", "Customer type", None),
        ("note", "Note", None), ("owner", "Owner", "alice"),
        ("previous_owner", "Previous owner", None), ("approved_by", "Level approved by", None),
    ]
    assert [e.kind for e in card.history] == [
        "started", "stage_entered", "field_changed", "result", "decision", "stage_entered",
    ]
    assert runtime.get(iid, **kw(store, "carol")) == card.instance


def test_inbox_direct_and_through_a_role_oldest_first(store: FakeStore) -> None:
    first = key_at_approval(store, at(8))
    c = runtime.start("contract-approval", values={
        "customer": "Acme", "amount": 10, "credit_score": 90, "term_months": 3,
    }, **kw(store, "alice", at(9)))
    runtime.advance(c.instance.id, result="submit", **kw(store, "alice", at(9)))
    inbox = runtime.inbox(**kw(store, "carol", at(10, day=24)))
    assert [(v.id, v.stage, v.due_at, v.overdue) for v in inbox] == [
        (first, "level-approval", "2026-11-24T08:00:00Z", True),  # carol herself
        ("contract-approval-1", "manager-review", "2026-11-30T12:00:00Z", False),  # her role
    ]
    assert runtime.inbox(**kw(store, "bob")) == []
    assert [v.id for v in runtime.inbox(**kw(store, "alice"))] == []


def test_list_filters(store: FakeStore) -> None:
    a = key_at_approval(store, at(8))
    b = runtime.start(KEY, **kw(store, "bob", at(9))).instance.id
    runtime.advance(b, result="done", values={"level": "normal"}, **kw(store, "bob", at(9)))
    c = runtime.start(KEY, **kw(store, "bob", at(10))).instance.id

    def ids(user: str = "grace", **f: Any) -> list[str]:  # an admin sees all
        return [v.id for v in runtime.list_instances(**f, **kw(store, user))]

    assert ids() == [c, b, a]
    assert ids("alice") == [a]  # bob's instances are not hers to see
    assert ids("bob", limit=1) == [c]
    assert ids(status=["completed"]) == [b]
    assert ids(status=["active"], limit=1) == [c]
    assert ids(assignee="carol") == [a]
    assert ids(since="2026-11-23T09:00:00Z") == [c, b]
    assert ids(process="contract-approval") == []
    with pytest.raises(UsageError) as exc:
        ids(status=["open"])
    assert exc.value.message == (
        "unknown status 'open'; statuses: active, waiting, paused, completed, cancelled"
    )
    with pytest.raises(UsageError) as exc:
        ids(since="yesterday")
    assert exc.value.message == "--since 'yesterday' is not a date or time"


def test_journal_filters(store: FakeStore) -> None:
    a = key_at_approval(store, at(8))
    runtime.advance(a, result="approve", **kw(store, "carol", at(12)))
    assert [e.kind for e in runtime.journal(actor="carol", store=store)] == [
        "field_changed", "result", "field_changed", "stage_entered",  # set: on approve, on entering
    ]
    assert [e.at for e in runtime.journal(a, since="2026-11-23T10:00", store=store)] == [
        "2026-11-23T12:00:00Z"] * 4
    assert len(list(runtime.journal(until="2026-11-23T12:00:00Z", store=store))) == 6
    with pytest.raises(runtime.UnknownInstance):
        list(runtime.journal("missing-1", store=store))


# ---------------------------------------------------------- settings


def test_flowctl_now_sets_the_clock(store: FakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCTL_NOW", "2027-01-02T03:04:05+03:00")
    step = runtime.start(KEY, as_user="alice", processes_dir=PROCESSES, store=store)
    assert step.instance.started_at == "2027-01-02T00:04:05Z"
    monkeypatch.setenv("FLOWCTL_NOW", "soon")
    with pytest.raises(UsageError) as exc:
        runtime.start(KEY, as_user="alice", processes_dir=PROCESSES, store=store)
    assert exc.value.message == "FLOWCTL_NOW='soon' is not an ISO-8601 time"


def test_identity_order_as_then_env_then_login(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowctl.api.definitions import load_org

    org = load_org(processes_dir=PROCESSES)
    monkeypatch.setattr("getpass.getuser", lambda: "bob")
    assert resolve_user(None, org, environ={}) == "bob"
    assert resolve_user(None, org, environ={"FLOWCTL_USER": "carol"}) == "carol"
    assert resolve_user("frank", org, environ={"FLOWCTL_USER": "carol"}) == "frank"
    with pytest.raises(UnknownUser) as exc:
        resolve_user(None, org, environ={"FLOWCTL_USER": "zed"})
    assert exc.value.message == (
        "unknown user 'zed' (from FLOWCTL_USER): not in the org directory"
        f" {PROCESSES}/org.yaml; known users: grace, carol, alice, bob, frank, linda, oleg,"
        " dmitry"
    )
    assert exc.value.hint == "say who you are with --as USER or FLOWCTL_USER=USER"
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    with pytest.raises(UnknownUser) as exc:
        resolve_user(None, org, environ={})
    assert exc.value.message.startswith("unknown user 'root' (from login name)")


def test_known_users_are_truncated() -> None:
    from flowctl.model import OrgDirectory, User

    org = OrgDirectory(users=tuple(User(f"u{i}", f"U{i}", ()) for i in range(12)))
    with pytest.raises(UnknownUser) as exc:
        resolve_user("x", org, environ={})
    assert exc.value.message == (
        "unknown user 'x' (from --as): not in the org directory;"
        " known users: u0, u1, u2, u3, u4, u5, u6, u7 and 4 more"
    )


# ------------------------------------------------------ the real store


def test_default_database_is_created_under_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowctl.toml").write_text('identity = "trust"\n')
    monkeypatch.delenv("FLOWCTL_DB", raising=False)
    runtime.start(KEY, as_user="alice", processes_dir=PROCESSES, now=NOW)
    assert (tmp_path / ".flowctl" / "flowctl.db").is_file()
    monkeypatch.setenv("FLOWCTL_DB", str(tmp_path / "other.db"))
    runtime.start(KEY, as_user="alice", processes_dir=PROCESSES, now=NOW)
    assert (tmp_path / "other.db").is_file()
    assert runtime.verify_journal().entries == 2
    assert runtime.verify_journal(db=".flowctl/flowctl.db").ok


def test_two_writers_with_the_same_expected_version_exactly_one_wins(tmp_path: Path) -> None:
    db = str(tmp_path / "f.db")
    iid = runtime.start(KEY, values={"owner": "alice"}, as_user="alice", db=db,
                        processes_dir=PROCESSES, now=NOW).instance.id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write(text: str) -> None:
        barrier.wait()
        try:
            runtime.note(iid, text=text, expect_version=1, as_user="alice", db=db,
                         processes_dir=PROCESSES, now=NOW)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    notes = [e for e in runtime.journal(iid, db=db) if e.kind == "note"]
    assert len(notes) == 1
    assert runtime.get(iid, as_user="alice", db=db, processes_dir=PROCESSES).version == 2


def test_the_python_example_in_the_operators_guide_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    text = (ROOT / "docs" / "operators.md").read_text("utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(PROCESSES, tmp_path / "processes")
    shutil.copy(ROOT / "flowctl.toml", tmp_path)  # the bundled demo workspace: trust
    exec(compile(code, "docs/operators.md", "exec"), {})
    assert capsys.readouterr().out.splitlines() == [
        "at 'change-owner', waiting for carol (head of sales)",
        "key-account-filing-approval-1 change-owner None False",
        "['started', 'stage_entered', 'field_changed', 'result', 'decision', 'stage_entered',"
        " 'field_changed', 'result', 'field_changed', 'stage_entered']",
        "True",
    ]


def test_a_misspelt_context_keyword_is_refused_not_ignored(store: FakeStore) -> None:
    iid = key_at_approval(store)
    before = (dict(store.instances), list(store.entries))
    typo: dict[str, Any] = {"as_usr": "carol", "store": store, "processes_dir": PROCESSES}
    with pytest.raises(TypeError, match="unexpected keyword argument 'as_usr'"):
        runtime.advance(iid, result="approve", **typo)
    with pytest.raises(TypeError, match="unexpected keyword argument 'as_usr'"):
        runtime.show(iid, **typo)
    assert (store.instances, store.entries) == before


# ------------------------------------------------------ sessions


def demo_path(user_ctx: Any) -> list[tuple[str, str | None, str | None]]:
    """scripts/demo.sh's path through the approval; the steps' journal entries."""
    step = runtime.start(KEY, values={"owner": "alice"}, **user_ctx("alice"))
    iid = step.instance.id
    steps = [
        step,
        runtime.advance(iid, result="done", values={"level": "key"}, **user_ctx("alice")),
        runtime.advance(iid, result="approve", **user_ctx("carol")),
        runtime.advance(iid, result="done", values={"owner": "bob"}, **user_ctx("carol")),
    ]
    assert steps[-1].instance.status == "completed"
    return [(e.kind, e.stage, e.hash) for s in steps for e in s.entries]


def test_a_session_writes_the_same_journal_as_separate_calls(tmp_path: Path) -> None:
    plain_db = str(tmp_path / "plain.db")
    plain = demo_path(lambda user: {"as_user": user, "db": plain_db,
                                    "processes_dir": PROCESSES, "now": NOW})
    with runtime.session(db=str(tmp_path / "session.db"), processes_dir=PROCESSES) as ctx:
        assert sorted(ctx) == ["loaded", "store"]
        in_session = demo_path(lambda user: {**ctx, "as_user": user, "now": NOW})
    assert in_session == plain
    assert len(plain) == 13
    assert runtime.verify_journal(db=str(tmp_path / "session.db")).ok


def test_a_session_reads_definitions_once(tmp_path: Path) -> None:
    procs = tmp_path / "processes"
    shutil.copytree(PROCESSES, procs)
    path = procs / f"{KEY}.yaml"
    text = path.read_text("utf-8")
    store = FakeStore()
    with runtime.session(store=store, processes_dir=str(procs)) as ctx:
        first = runtime.start(KEY, as_user="alice", now=NOW, **ctx).instance
        path.write_text(text.replace("      done: check-level", "      finished: check-level"),
                        "utf-8")
        (procs / "org.yaml").unlink()
        second = runtime.start(KEY, as_user="alice", now=NOW, **ctx).instance
    assert first.definition == second.definition == runtime.digest_of(text)
    assert len(store.definitions) == 1
    (procs / "org.yaml").write_text((Path(PROCESSES) / "org.yaml").read_text("utf-8"), "utf-8")
    with runtime.session(store=store, processes_dir=str(procs)) as ctx:
        third = runtime.start(KEY, as_user="alice", now=NOW, **ctx).instance
    assert third.definition == runtime.digest_of(path.read_text("utf-8")) != first.definition
    assert len(store.definitions) == 2


def test_a_session_starts_child_processes_from_its_folder(tmp_path: Path) -> None:
    with runtime.session(db=str(tmp_path / "f.db"), processes_dir=PROCESSES) as ctx:
        lcr = runtime.start("lost-customer-recovery", values={"owner": "bob", "customer": "Acme"},
                            as_user="alice", now=NOW, **ctx).instance.id
        for result, values in (("reached", {}), ("done", {"reason": "price"})):
            runtime.advance(lcr, result=result, values=values, as_user="bob", now=NOW, **ctx)
        runtime.task_done(lcr, "check-prices", as_user="bob", now=NOW, **ctx)
        runtime.advance(lcr, result="accepted", values={"offer_amount": 9}, as_user="bob",
                        now=NOW, **ctx)
        step = runtime.advance(lcr, result="paid", values={
            "order_ref": "O-1", "delivery_address": "Omsk", "ship_date": "2026-12-01",
        }, as_user="frank", now=NOW, **ctx)
        assert step.instance.outcome == "completed"
        child = runtime.get("goods-delivery-1", as_user="oleg", **ctx)
    assert (child.status, child.parent_id) == ("active", lcr)


def test_a_session_context_with_a_folder_too_is_refused(store: FakeStore) -> None:
    with runtime.session(store=store, processes_dir=PROCESSES) as ctx:
        with pytest.raises(TypeError, match="either 'loaded' or 'org'/'processes_dir'"):
            runtime.advance("x-1", result="done", as_user="alice", processes_dir=PROCESSES,
                            **ctx)
        with pytest.raises(TypeError, match="either 'loaded' or 'org'/'processes_dir'"):
            runtime.start(KEY, as_user="alice", org=str(Path(PROCESSES) / "org.yaml"), **ctx)
    assert store.transactions == 0


# ------------------------------------------------------ stored definitions


def stored_instance(tmp_path: Path, source: str) -> tuple[str, str]:
    """A database with one instance whose stored definition is ``source``."""
    import sqlite3

    db = str(tmp_path / "f.db")
    iid = runtime.start(KEY, as_user="alice", db=db, processes_dir=PROCESSES,
                        now=NOW).instance.id
    conn = sqlite3.connect(db, isolation_level=None)
    digest = runtime.digest_of(source)
    conn.execute("INSERT OR IGNORE INTO definitions (digest, process_id, source, stored_at) "
                 "VALUES (?, ?, ?, 't')",
                 (digest, KEY, source))
    conn.execute("UPDATE instances SET definition_digest = ? WHERE id = ?", (digest, iid))
    conn.close()
    return db, iid


def test_a_stored_definition_is_parsed_once_then_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowctl.definition.files


    text = (Path(PROCESSES) / f"{KEY}.yaml").read_text("utf-8").replace("Edit customer info",
                                                                       "Edit the customer")
    db, iid = stored_instance(tmp_path, text)
    monkeypatch.setenv("FLOWCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "_PROCESSES", {})
    first = runtime.show(iid, as_user="alice", db=db, processes_dir=PROCESSES)
    monkeypatch.setattr(runtime, "_PROCESSES", {})  # as in the next command

    def not_again(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(flowctl.definition.files, "validate", not_again)
    monkeypatch.setattr(flowctl.definition.files, "load_bytes", not_again)
    second = runtime.show(iid, as_user="alice", db=db, processes_dir=PROCESSES)
    assert first.instance.stage_name == second.instance.stage_name == "Edit the customer"


def test_a_stored_definition_that_does_not_build_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, iid = stored_instance(tmp_path, f"kind: process\nid: {KEY}\nstages: []\n")
    monkeypatch.setattr(runtime, "_PROCESSES", {})
    with pytest.raises(StoreError) as exc:
        runtime.show(iid, as_user="alice", db=db, processes_dir=PROCESSES)
    assert exc.value.message.startswith(
        f"the stored definition {KEY}@"
    )
    assert "cannot be read: " in exc.value.message
    assert "missing required key 'name'" in exc.value.message


def test_a_stored_definition_changed_in_the_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    db, iid = stored_instance(tmp_path, (Path(PROCESSES) / f"{KEY}.yaml").read_text("utf-8"))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE definitions SET source = source || '# changed' ")
    conn.close()
    monkeypatch.setattr(runtime, "_PROCESSES", {})
    with pytest.raises(StoreError) as exc:
        runtime.show(iid, as_user="alice", db=db, processes_dir=PROCESSES)
    assert exc.value.message.endswith(
        "was changed after it was stored (its text no longer matches its digest)"
    )

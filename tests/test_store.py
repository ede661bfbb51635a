"""The store in one process: opening, schema, reads, writes, the journal.

The contract tests (those taking ``store``) run against both backends: a
SQLite file and a real PostgreSQL server (tests/pgserver.py); the tests of
opening a file, its pragmas and its triggers' SQL are SQLite's own."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from flowctl.store import migrations as schema
from flowctl.store.base import (
    ConflictError,
    Definition,
    InstanceFilter,
    InstanceRow,
    JournalEntry,
    JournalFilter,
    Store,
    StoreError,
)
from flowctl.store.chain import canonical_json, entry_hash
from flowctl.store.postgres import PostgresStore
from flowctl.store.sqlite import SqliteStore

DIGEST = "d" * 64


def as_store(store: SqliteStore) -> Store:
    """mypy checks here that SqliteStore satisfies the Store protocol."""
    return store


def instance(iid: str, **changes: object) -> InstanceRow:
    row = InstanceRow(
        id=iid,
        process_id="expense",
        definition_digest=DIGEST,
        status="active",
        stage="review",
        initiator="user:alice",
        started_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        version=1,
        assignees=("role:finance",),
        state={"amount": 120},
    )
    return replace(row, **changes)


def entry(iid: str, version: int, kind: str = "note", **changes: object) -> JournalEntry:
    base = JournalEntry(
        instance_id=iid, at="2026-01-01T00:00:00Z", actor="user:alice", kind=kind, version=version
    )
    return replace(base, **changes)


def definition(process_id: str = "expense", digest: str = DIGEST) -> Definition:
    return Definition(digest=digest, process_id=process_id, source="id: x\n", stored_at="t")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "flowctl.db"


def as_pg_store(store: PostgresStore) -> Store:
    """mypy checks here that PostgresStore satisfies the Store protocol."""
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[SqliteStore]:
    if backend == "postgres":
        opened: Any = PostgresStore.open(request.getfixturevalue("pg_url"))
    else:
        opened = SqliteStore.open(request.getfixturevalue("db"))
    with opened.transaction() as tx:
        tx.put_definition(definition())
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(db: Path) -> Iterator[SqliteStore]:
    """For the tests of SQLite's own file, pragmas and triggers (PostgreSQL's:
    tests/test_store_postgres.py)."""
    opened = SqliteStore.open(db)
    with opened.transaction() as tx:
        tx.put_definition(definition())
    yield opened
    opened.close()


def rows_of(store: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows read beside the store, on a connection of their own (SQL with ``?``)."""
    if isinstance(store, PostgresStore):
        with psycopg.connect(store.url, options="-c search_path=flowctl") as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    with raw(store.path) as conn:
        return conn.execute(sql, params).fetchall()


def start(store: SqliteStore, iid: str, **changes: object) -> InstanceRow:
    row = instance(iid, **changes)
    with store.transaction() as tx:
        tx.insert_instance(row)
        tx.append_journal([entry(iid, 1, "started")])
    return row


def advance(store: SqliteStore, iid: str, **changes: object) -> InstanceRow:
    with store.transaction() as tx:
        current = tx.get_instance(iid)
        assert current is not None
        new = replace(current, version=current.version + 1, **changes)
        tx.update_instance(new, expected_version=current.version)
        tx.append_journal([entry(iid, new.version)])
    return new


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


# -- opening ----------------------------------------------------------------------


def test_open_creates_parent_folders_and_sets_every_pragma(db: Path) -> None:
    first = SqliteStore.open(db)
    assert db.is_file()
    second = SqliteStore.open(db)  # an existing database at the current version
    for opened in (first, second):
        assert opened.settings() == {
            "journal_mode": "wal",
            "synchronous": 2,
            "busy_timeout": 5000,
            "foreign_keys": 1,
            "user_version": schema.SCHEMA_VERSION,
        }
        opened.close()


def test_a_store_opened_for_bulk_loading_does_not_wait_for_the_disk(db: Path) -> None:
    bulk = SqliteStore.open(db, durable=False)
    assert bulk.settings()["synchronous"] == 0  # OFF, for this connection only
    bulk.close()
    again = SqliteStore.open(db)
    assert again.settings()["synchronous"] == 2  # FULL
    again.close()


def test_migrations_run_from_an_empty_file(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    opened = SqliteStore.open(db)
    with raw(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert {"definitions", "instances", "instance_principals", "journal", "journal_tail",
            "id_counters"} <= tables
    assert version == schema.SCHEMA_VERSION
    assert opened.check_integrity() == ("ok",)


def test_pending_migrations_apply_in_order_once(db: Path) -> None:
    calls: list[str] = []

    def second(conn: sqlite3.Connection) -> None:
        calls.append("second")
        conn.execute("ALTER TABLE instances ADD COLUMN priority INTEGER")

    def first(conn: sqlite3.Connection) -> None:
        calls.append("first")
        for migration in schema.MIGRATIONS:  # today's schema, as one step
            migration(conn)

    SqliteStore.open(db, migrations=(first,)).close()
    old = SqliteStore.open(db, migrations=(first,))
    with old.transaction() as tx:
        tx.put_definition(definition())
        tx.insert_instance(instance("expense-1"))
    old.close()
    upgraded = SqliteStore.open(db, migrations=(first, second))
    SqliteStore.open(db, migrations=(first, second)).close()
    assert calls == ["first", "second"]
    assert upgraded.settings()["user_version"] == 2
    assert upgraded.get_instance("expense-1") == instance("expense-1")
    with raw(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(instances)")]
    assert columns[-1] == "priority"


def test_a_failing_migration_leaves_the_database_as_it_was(db: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE extra (x)")
        conn.execute("THIS IS NOT SQL")

    SqliteStore.open(db).close()
    with pytest.raises(StoreError, match="syntax error"):
        SqliteStore.open(db, migrations=(*schema.MIGRATIONS, broken))
    again = SqliteStore.open(db)
    assert again.settings()["user_version"] == schema.SCHEMA_VERSION
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name='extra'").fetchone() == (
            0,
        )


def test_a_database_from_a_newer_flowctl_is_refused(db: Path) -> None:
    SqliteStore.open(db).close()
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(db)
    assert caught.value.message == (
        f"database {db} was written by a newer flowctl (schema 99; this flowctl knows up to "
        f"{schema.SCHEMA_VERSION}); upgrade flowctl"
    )
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    "content", [b"id: expense\nstages: []\n", b"x", b"\x00" * 4096], ids=["yaml", "byte", "zeros"]
)
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(db)
    assert caught.value.message == f"{db} is not a flowctl database: it is not a SQLite file"
    assert db.read_bytes() == content


def test_a_corrupt_sqlite_file_is_refused_with_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    SqliteStore.open(db).close()
    data = bytearray(db.read_bytes())
    data[16:100] = b"\xff" * 84  # page size and the rest of the header: garbage
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"is not a usable flowctl database: "):
        SqliteStore.open(db)


def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with raw(db) as conn:
        conn.execute("CREATE TABLE instances (anything)")
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(db)
    assert caught.value.message == (
        f"{db} is a SQLite database but not a flowctl one (it has tables and no flowctl "
        "schema version); refusing to change it"
    )


def test_a_file_in_place_of_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(tmp_path / "state" / "x" / "flowctl.db")
    assert caught.value.message == (
        f"cannot create database {tmp_path}/state/x/flowctl.db: {tmp_path}/state is a file, "
        "not a folder"
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(tmp_path)
    assert caught.value.message == f"{tmp_path} is a directory, not a database file"


# -- instances --------------------------------------------------------------------


def test_an_instance_round_trips(store: SqliteStore) -> None:
    row = instance("expense-1", due_at="2026-01-02T00:00:00Z", parent_id=None,
                   assignees=("user:bob", "role:finance"), state={"a": [1, {"b": None}]})
    with store.transaction() as tx:
        tx.insert_instance(row)
        assert tx.get_instance("expense-1") == row
    assert store.get_instance("expense-1") == row
    assert store.get_instance("expense-2") is None


def test_new_instance_ids_count_per_process_and_skip_taken_ids(store: SqliteStore) -> None:
    with store.transaction() as tx:
        tx.put_definition(definition("travel", "e" * 64))
        tx.insert_instance(instance("expense-2"))
        ids = [tx.new_instance_id("expense") for _ in range(3)]
        ids.append(tx.new_instance_id("travel"))
    assert ids == ["expense-1", "expense-3", "expense-4", "travel-1"]


def test_an_id_allocated_in_a_rolled_back_transaction_is_given_again(store: SqliteStore) -> None:
    def allocate_then_fail() -> None:
        with store.transaction() as tx:
            assert tx.new_instance_id("expense") == "expense-1"
            raise RuntimeError

    with pytest.raises(RuntimeError):
        allocate_then_fail()
    with store.transaction() as tx:
        assert tx.new_instance_id("expense") == "expense-1"


def test_inserting_an_existing_instance_is_a_conflict(store: SqliteStore) -> None:
    start(store, "expense-1")
    with pytest.raises(ConflictError) as caught, store.transaction() as tx:
        tx.insert_instance(instance("expense-1", stage="other"))
    assert caught.value.message == "instance expense-1 already exists; nothing was written"
    assert store.get_instance("expense-1") == instance("expense-1")


def test_an_instance_needs_a_stored_definition(store: SqliteStore) -> None:
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.insert_instance(instance("expense-1", definition_digest="f" * 64))
    why = ("FOREIGN KEY constraint failed" if isinstance(store, SqliteStore) else
           'insert or update on table "instances" violates foreign key constraint '
           '"instances_definition_digest_fkey"')
    assert caught.value.message == (
        f"database {store.path}: nothing was written: an instance refers to a definition or a "
        f"parent instance that is not stored ({why})"
    )
    assert store.get_instance("expense-1") is None
    start(store, "expense-1")  # the store is usable afterwards


def test_the_definition_may_be_stored_after_the_instance_in_one_transaction(
    store: SqliteStore,
) -> None:
    with store.transaction() as tx:
        tx.insert_instance(instance("expense-1", definition_digest="f" * 64))
        tx.put_definition(definition(digest="f" * 64))
    assert store.get_definition("f" * 64) == definition(digest="f" * 64)


def test_put_definition_is_idempotent(store: SqliteStore) -> None:
    with store.transaction() as tx:
        tx.put_definition(replace(definition(), source="changed"))
    assert store.get_definition(DIGEST) == definition()
    assert store.get_definition("0" * 64) is None


def test_update_with_the_expected_version_writes(store: SqliteStore) -> None:
    start(store, "expense-1")
    new = advance(store, "expense-1", stage="approve", state={"amount": 130})
    assert store.get_instance("expense-1") == new
    assert new.version == 2


def test_update_with_a_stale_version_is_refused_and_says_what_it_found(
    store: SqliteStore,
) -> None:
    start(store, "expense-1")
    advance(store, "expense-1")
    def stale_advance() -> None:
        with store.transaction() as tx:
            tx.update_instance(instance("expense-1", version=2, stage="x"), expected_version=1)
            tx.append_journal([entry("expense-1", 2)])

    with pytest.raises(ConflictError) as caught:
        stale_advance()
    assert caught.value.message == (
        "instance expense-1 changed: expected version 1, found 2; nothing was written"
    )
    assert caught.value.exit_code == 5
    assert store.get_instance("expense-1").version == 2  # type: ignore[union-attr]
    assert [e.version for e in store.journal(JournalFilter(instance_id="expense-1"))] == [1, 2]


def test_update_of_a_missing_instance_is_refused(store: SqliteStore) -> None:
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.update_instance(instance("expense-9", version=2), expected_version=1)
    assert caught.value.message == "instance expense-9 does not exist; nothing was written"


def test_update_must_carry_the_next_version(store: SqliteStore) -> None:
    start(store, "expense-1")
    with pytest.raises(ValueError, match="must carry version 2"), store.transaction() as tx:
        tx.update_instance(instance("expense-1", version=3), expected_version=1)


def principals_of(store: SqliteStore, iid: str) -> list[str]:
    rows = rows_of(
        store, "SELECT principal FROM instance_principals WHERE instance_id = ? ORDER BY principal",
        (iid,),
    )
    return [r[0] for r in rows]


def test_updates_keep_the_principals_equal_to_the_assignees(store: SqliteStore) -> None:
    start(store, "expense-1", assignees=("role:finance", "user:bob"))
    assert principals_of(store, "expense-1") == ["role:finance", "user:bob"]
    advance(store, "expense-1", assignees=("user:bob", "user:carol"))  # one gone, one new
    assert principals_of(store, "expense-1") == ["user:bob", "user:carol"]
    advance(store, "expense-1", assignees=("user:bob", "user:carol"))  # unchanged
    assert principals_of(store, "expense-1") == ["user:bob", "user:carol"]
    advance(store, "expense-1", status="completed", stage=None, assignees=())
    assert principals_of(store, "expense-1") == []


def test_two_updates_in_one_transaction_and_a_blind_update(store: SqliteStore) -> None:
    start(store, "expense-1")
    with store.transaction() as tx:
        first = replace(instance("expense-1"), version=2, assignees=("user:dave",))
        tx.update_instance(first, expected_version=1)  # not read in this transaction
        second = replace(first, version=3, assignees=("user:erin",), stage="pay")
        tx.update_instance(second, expected_version=2)  # after this transaction's own write
    assert store.get_instance("expense-1") == second
    assert principals_of(store, "expense-1") == ["user:erin"]


def test_an_update_that_changes_every_column_stores_every_column(
    store: SqliteStore,
) -> None:
    start(store, "expense-1")
    start(store, "expense-2")
    with store.transaction() as tx:
        tx.put_definition(definition("travel", "e" * 64))
        current = tx.get_instance("expense-2")
        assert current is not None
        new = replace(
            current, version=2, process_id="travel", definition_digest="e" * 64,
            initiator="user:bob", started_at="2026-02-02T00:00:00Z", parent_id="expense-1",
            status="waiting", stage="wait", updated_at="2026-02-03T00:00:00Z",
            due_at="2026-02-04T00:00:00Z", assignees=(), state={"amount": 1},
        )
        tx.update_instance(new, expected_version=1)
    assert store.get_instance("expense-2") == new
    assert ids(store, process_id="travel") == ["expense-2"]
    assert ids(store, initiator="user:bob") == ["expense-2"]
    assert ids(store, parent_id="expense-1") == ["expense-2"]
    assert ids(store, started_since="2026-02-01") == ["expense-2"]


# -- transactions -----------------------------------------------------------------


def test_an_exception_rolls_everything_back(store: SqliteStore) -> None:
    def start_then_fail() -> None:
        with store.transaction() as tx:
            tx.insert_instance(instance("expense-1"))
            tx.append_journal([entry("expense-1", 1)])
            raise KeyError("engine refused")

    with pytest.raises(KeyError):
        start_then_fail()
    assert store.get_instance("expense-1") is None
    assert list(store.journal(JournalFilter())) == []
    start(store, "expense-1")  # the store is usable afterwards
    assert store.verify_journal().ok


def test_transactions_do_not_nest_and_end_with_their_block(store: SqliteStore) -> None:
    with store.transaction() as tx:
        with pytest.raises(StoreError, match="transactions do not nest"), store.transaction():
            pass
    with pytest.raises(StoreError, match="this transaction has ended"):
        tx.get_instance("expense-1")


def test_a_held_lock_becomes_a_conflict_after_the_deadline(db: Path) -> None:
    opened = SqliteStore.open(db, lock_deadline_s=0.3, busy_timeout_ms=50)
    holder = raw(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConflictError) as caught, opened.transaction():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.message == (
        f"database {db} stayed locked by other writers for 0.3 s while starting a write; "
        "nothing was written"
    )
    with opened.transaction() as tx:  # free again
        tx.put_definition(definition())


def test_a_lock_released_before_the_deadline_is_waited_for(db: Path) -> None:
    opened = SqliteStore.open(db, lock_deadline_s=10, busy_timeout_ms=10)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.2, lambda: holder.execute("ROLLBACK"))
    timer.start()
    began = time.monotonic()
    with opened.transaction() as tx:
        tx.put_definition(definition())
    waited = time.monotonic() - began
    timer.join()
    holder.close()
    assert 0.15 < waited < 5
    assert opened.get_definition(DIGEST) == definition()


# -- listing ----------------------------------------------------------------------


@pytest.fixture
def populated(store: SqliteStore) -> SqliteStore:
    with store.transaction() as tx:
        tx.put_definition(definition("travel", "e" * 64))
    start(store, "expense-1", started_at="2026-01-01", assignees=("user:bob",))
    start(store, "expense-2", started_at="2026-01-03", assignees=("role:finance", "user:carol"))
    start(store, "travel-1", process_id="travel", definition_digest="e" * 64,
          started_at="2026-01-02", initiator="user:bob", assignees=("role:finance",))
    start(store, "expense-3", started_at="2026-01-04", status="completed", stage=None,
          assignees=())
    return store


def ids(store: SqliteStore, **fields: object) -> list[str]:
    return [r.id for r in store.list_instances(InstanceFilter(**fields))]  # type: ignore[arg-type]


def test_list_orders_newest_first_by_default_and_oldest_first_on_request(
    populated: SqliteStore,
) -> None:
    assert ids(populated) == ["expense-3", "expense-2", "travel-1", "expense-1"]
    assert ids(populated, oldest_first=True) == ["expense-1", "travel-1", "expense-2", "expense-3"]
    assert ids(populated, limit=2) == ["expense-3", "expense-2"]


def test_list_filters(populated: SqliteStore) -> None:
    assert ids(populated, status=("active",)) == ["expense-2", "travel-1", "expense-1"]
    assert ids(populated, status=("completed", "cancelled")) == ["expense-3"]
    assert ids(populated, process_id="travel") == ["travel-1"]
    assert ids(populated, initiator="user:bob") == ["travel-1"]
    assert ids(populated, started_since="2026-01-03") == ["expense-3", "expense-2"]
    assert ids(populated, status=("active",), process_id="expense", limit=1) == ["expense-2"]


def test_several_statuses_merge_in_order_and_stop_at_the_limit(
    populated: SqliteStore,
) -> None:
    start(populated, "expense-4", started_at="2026-01-05", status="waiting")
    start(populated, "expense-5", started_at="2026-01-02", status="cancelled")
    every = ("active", "waiting", "completed", "cancelled")
    assert ids(populated, status=every) == [
        "expense-4", "expense-3", "expense-2", "travel-1", "expense-5", "expense-1"]
    assert ids(populated, status=("active", "cancelled", "active"), oldest_first=True) == [
        "expense-1", "expense-5", "travel-1", "expense-2"]  # a tie in time: by id
    assert ids(populated, status=every, limit=3) == ["expense-4", "expense-3", "expense-2"]
    assert ids(populated, status=every, limit=2, oldest_first=True) == [
        "expense-1", "expense-5"]
    assert ids(populated, status=("waiting", "active"), process_id="expense",
               started_since="2026-01-02") == ["expense-4", "expense-2"]
    advance(populated, "expense-1", updated_at="2026-02-01")
    assert ids(populated, status=("active", "waiting"), order_by="updated_at", limit=3) == [
        "expense-1", "travel-1", "expense-4"]  # the others were all updated at one time
    assert ids(populated, status=("active", "completed"), principals=("role:finance",)) == [
        "expense-2", "travel-1"]


def test_inbox_finds_instances_by_any_of_the_principals(populated: SqliteStore) -> None:
    assert ids(populated, principals=("user:carol",)) == ["expense-2"]
    assert ids(populated, principals=("user:bob", "role:finance"), oldest_first=True) == [
        "expense-1", "travel-1", "expense-2"
    ]
    assert ids(populated, principals=("user:nobody",)) == []


def test_the_inbox_follows_the_current_assignees(populated: SqliteStore) -> None:
    advance(populated, "expense-2", assignees=("user:dave",))
    assert ids(populated, principals=("user:carol",)) == []
    assert ids(populated, principals=("role:finance",)) == ["travel-1"]
    assert ids(populated, principals=("user:dave",)) == ["expense-2"]
    rows = rows_of(populated, "SELECT * FROM instance_principals WHERE instance_id='expense-2'")
    assert rows == [("user:dave", "expense-2")]


# -- journal ----------------------------------------------------------------------


def test_journal_data_reads_back_as_written(store: SqliteStore) -> None:
    start(store, "expense-1")
    data = {"big": 10**30, "e": 1e16, "empty": {}, "f": 0.1,  # keys as stored: sorted
            "list": [1, 2.5, None, True, {}], "neg": -(2**64), "text": "é 😀 \u2028",
            "tiny": 5e-324}
    with store.transaction() as tx:
        tx.append_journal([entry("expense-1", 1, "note", data=data), entry("expense-1", 1)])
    first, second = list(store.journal(JournalFilter(instance_id="expense-1")))[1:]
    assert first.data == data
    assert repr(first.data) == repr(data)  # ints stay ints, floats floats
    assert second.data == {}


def test_journal_data_the_store_did_not_write_still_reads(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    start(store, "expense-1")
    with raw(store.path) as conn:  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO journal (seq, instance_id, process_id, at, actor, kind, version, "
            "data, prev_hash, hash) VALUES (2, 'expense-1', 'expense', 't', 'a', 'note', 1, "
            "?, '', '')",
            ('{"s": "\\ud800", "n": 1.50}',),
        )
    (_, odd) = store.journal(JournalFilter(instance_id="expense-1"))
    assert odd.data == {"s": "\ud800", "n": 1.5}


def test_append_fills_seq_and_the_hash_chain(store: SqliteStore) -> None:
    start(store, "expense-1")
    with store.transaction() as tx:
        written = tx.append_journal(
            [entry("expense-1", 1, "result", result="ok", data={"b": 1, "a": "é"}),
             entry("expense-1", 1, "stage_entered", stage="approve")]
        )
    first, second = written
    assert (first.seq, second.seq) == (2, 3)
    stored = list(store.journal(JournalFilter()))
    assert stored[1:] == written
    assert first.prev_hash == stored[0].hash
    assert second.prev_hash == first.hash
    assert stored[0].prev_hash == ""
    assert stored[0].hash is not None
    assert first.hash == entry_hash(seq=2, instance_id="expense-1", at="2026-01-01T00:00:00Z",
                                    actor="user:alice", kind="result", version=1, stage=None,
                                    result="ok", data={"a": "é", "b": 1},
                                    prev_hash=stored[0].hash)


def test_the_hash_is_sha256_of_the_documented_serialisation() -> None:
    text = (
        '{"actor":"user:a","at":"t","data":{"x":1,"y":[true,null]},"instance_id":"p-1",'
        '"kind":"note","prev_hash":"","result":null,"seq":1,"stage":"s","version":2}'
    )
    assert entry_hash(seq=1, instance_id="p-1", at="t", actor="user:a", kind="note", version=2,
                      stage="s", result=None, data={"y": [True, None], "x": 1},
                      prev_hash="") == hashlib.sha256(text.encode()).hexdigest()


_texts = st.one_of(st.none(), st.text())
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(1, 2**62), text=st.text(), stage=_texts, result=_texts, data=_json,
       version=st.integers(1, 2**31))
def test_the_fast_hash_equals_the_canonical_serialisation(
    seq: int, text: str, stage: str | None, result: str | None, data: object, version: int
) -> None:
    payload = {"seq": seq, "instance_id": text, "at": text + "t", "actor": "ü" + text,
               "kind": text[:3], "version": version, "stage": stage, "result": result,
               "data": data, "prev_hash": text[::-1]}
    expected = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    assert entry_hash(**payload) == expected  # type: ignore[arg-type]


def test_journal_data_must_be_plain_json(store: SqliteStore) -> None:
    start(store, "expense-1")
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.append_journal([entry("expense-1", 1, data={"when": object()})])
    assert caught.value.message.startswith(
        "journal data for instance expense-1 cannot be stored: it is not plain JSON data"
    )


def test_a_journal_entry_needs_its_instance(store: SqliteStore) -> None:
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.append_journal([entry("expense-7", 1)])
    assert caught.value.message == (
        "journal entry for instance expense-7, which does not exist: insert the instance "
        "before its journal entries"
    )


def test_journal_filters_stream_oldest_first(populated: SqliteStore) -> None:
    with populated.transaction() as tx:
        tx.append_journal([
            entry("travel-1", 1, actor="user:bob", at="2026-01-05"),
            entry("expense-1", 1, actor="user:bob", at="2026-01-06"),
        ])

    def seqs(**fields: object) -> list[int | None]:
        flt = JournalFilter(**fields)  # type: ignore[arg-type]
        return [e.seq for e in populated.journal(flt)]

    assert seqs() == [1, 2, 3, 4, 5, 6]
    assert seqs(instance_id="expense-1") == [1, 6]
    assert seqs(process_id="travel") == [3, 5]
    assert seqs(actor="user:bob") == [5, 6]
    assert seqs(since="2026-01-05") == [5, 6]
    assert seqs(until="2026-01-06") == [1, 2, 3, 4, 5]
    assert seqs(actor="user:bob", since="2026-01-06", process_id="expense") == [6]


def test_journal_streams_more_rows_than_one_fetch(store: SqliteStore) -> None:
    start(store, "expense-1")
    with store.transaction() as tx:
        tx.append_journal([entry("expense-1", 1, data={"i": i}) for i in range(1200)])
    stream = store.journal(JournalFilter(instance_id="expense-1"))
    assert next(stream).kind == "started"
    assert [e.data["i"] for e in stream] == list(range(1200))
    assert store.verify_journal().entries == 1201


# -- append-only ------------------------------------------------------------------

ATTACKS = {
    "update": "UPDATE journal SET actor = 'user:mallory' WHERE seq = 2",
    "update-or-replace": "UPDATE OR REPLACE journal SET seq = 1 WHERE seq = 2",
    "delete": "DELETE FROM journal WHERE seq = 2",
    "delete-all": "DELETE FROM journal",
    "insert-or-replace": (
        "INSERT OR REPLACE INTO journal SELECT seq, instance_id, process_id, at, 'user:mallory', "
        "kind, version, stage, result, data, prev_hash, hash FROM journal WHERE seq = 2"
    ),
    "replace-into": (
        "REPLACE INTO journal (seq, instance_id, process_id, at, actor, kind, version, data, "
        "prev_hash, hash) VALUES (2, 'expense-1', 'expense', 't', 'user:mallory', 'note', 1, "
        "'{}', '', '')"
    ),
    "upsert": (
        "INSERT INTO journal (seq, instance_id, process_id, at, actor, kind, version, data, "
        "prev_hash, hash) VALUES (2, 'expense-1', 'expense', 't', 'x', 'note', 1, '{}', '', '') "
        "ON CONFLICT (seq) DO UPDATE SET actor = 'user:mallory'"
    ),
    "insert-into-the-past": (
        "INSERT INTO journal (seq, instance_id, process_id, at, actor, kind, version, data, "
        "prev_hash, hash) VALUES (0, 'expense-1', 'expense', 't', 'x', 'note', 1, '{}', '', '')"
    ),
    "insert-without-seq": (
        "INSERT INTO journal (instance_id, process_id, at, actor, kind, version, data, "
        "prev_hash, hash) VALUES ('expense-1', 'expense', 't', 'x', 'note', 1, '{}', '', '')"
    ),
    "tail-back": "UPDATE journal_tail SET seq = 1",
    "tail-delete": "DELETE FROM journal_tail",
}


@pytest.mark.parametrize("recursive", ["ON", "OFF"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_journal_refuses_every_change(
    sqlite_store: SqliteStore, db: Path, attack: str, recursive: str
) -> None:
    store = sqlite_store
    start(store, "expense-1")
    advance(store, "expense-1")
    before = list(store.journal(JournalFilter()))
    conn = raw(db)
    conn.execute(f"PRAGMA recursive_triggers = {recursive}")
    with pytest.raises(sqlite3.IntegrityError, match="append-only|tail"):
        conn.execute(ATTACKS[attack])
    conn.close()
    assert list(store.journal(JournalFilter())) == before
    assert store.verify_journal().ok


# -- tampering detection ----------------------------------------------------------


@pytest.fixture
def tampered(sqlite_store: SqliteStore, db: Path) -> tuple[SqliteStore, sqlite3.Connection]:
    store = sqlite_store
    for n in (1, 2, 3):
        start(store, f"expense-{n}")
    advance(store, "expense-1")
    advance(store, "expense-2")
    advance(store, "expense-3")  # seq 1..6: e1 e2 e3 e1 e2 e3
    assert store.verify_journal().ok
    conn = raw(db)
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    return store, conn


TRIGGERS = ("journal_no_update", "journal_no_delete", "journal_append_only",
            "journal_tail_forward", "journal_tail_no_delete")
TRIGGERS_MISSING = tuple(
    f"the append-only trigger {t} is missing: the journal is not protected against changes "
    "(restore it with `flowctl db repair`)" for t in TRIGGERS
)


def problems(store: SqliteStore) -> tuple[str, ...]:
    """The problems verify reports after the triggers they dropped (reported first)."""
    report = store.verify_journal()
    assert report.ok is (not report.problems)
    assert report.problems[:len(TRIGGERS)] == TRIGGERS_MISSING
    return report.problems[len(TRIGGERS):]


def test_verify_names_an_edited_entry(tampered: tuple[SqliteStore, sqlite3.Connection]) -> None:
    store, conn = tampered
    conn.execute("UPDATE journal SET actor = 'user:mallory' WHERE seq = 4")
    assert problems(store) == (
        "entry 4 (instance expense-1): hash does not match its content "
        "(changed after it was written)",
    )


def test_verify_names_an_edit_whose_hash_was_recomputed(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    row = conn.execute("SELECT instance_id, at, kind, version, prev_hash FROM journal "
                       "WHERE seq = 4").fetchone()
    forged = entry_hash(seq=4, instance_id=row[0], at=row[1], actor="user:mallory", kind=row[2],
                        version=row[3], stage=None, result=None, data={}, prev_hash=row[4])
    conn.execute("UPDATE journal SET actor = 'user:mallory', hash = ? WHERE seq = 4", (forged,))
    assert problems(store) == (
        "entry 5 (instance expense-2): its link to entry 4 does not match (an entry was "
        "removed, replaced or reordered)",
    )


def test_verify_names_a_removed_entry(tampered: tuple[SqliteStore, sqlite3.Connection]) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal WHERE seq = 3")
    assert problems(store) == (
        "entry 3 missing: the journal jumps from entry 2 (instance expense-2) to entry 4 "
        "(instance expense-1)",
        "instance expense-3: its first journal entry is 'note', not 'started' (its first "
        "entries were removed)",
    )
    assert store.verify_journal().entries == 5


def test_verify_names_entries_removed_at_the_start(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal WHERE seq <= 2")
    assert problems(store) == (
        "entries 1..2 missing: the journal jumps from the start to entry 3 (instance expense-3)",
        "instance expense-1: its first journal entry is 'note', not 'started' (its first "
        "entries were removed)",
        "instance expense-2: its first journal entry is 'note', not 'started' (its first "
        "entries were removed)",
    )


def test_verify_names_entries_removed_at_the_end(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal WHERE seq >= 5")
    assert problems(store) == (
        "entries 5..6 missing at the end of the journal after entry 4 (instance expense-1): "
        "the journal was written up to entry 6",
        "instance expense-2 is at version 2, but its journal ends at version 1 (entries "
        "removed, or the instance changed outside flowctl)",
        "instance expense-3 is at version 2, but its journal ends at version 1 (entries "
        "removed, or the instance changed outside flowctl)",
    )


def test_verify_names_a_whole_journal_removed(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal")
    assert problems(store) == (
        "entries 1..6 missing at the end of the journal: the journal was written up to entry 6",
        *(f"instance expense-{n} is at version 2 (active), but the journal holds no entry for "
          "it (its entries were removed)" for n in (1, 2, 3)),
    )


def test_verify_names_reordered_entries(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("UPDATE journal SET seq = -seq WHERE seq IN (2, 3)")
    conn.execute("UPDATE journal SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0")
    assert problems(store) == (
        "entry 2 (instance expense-3): its link to entry 1 does not match (an entry was "
        "removed, replaced or reordered)",
        "entry 2 (instance expense-3): hash does not match its content "
        "(changed after it was written)",
        "entry 3 (instance expense-2): its link to entry 2 does not match (an entry was "
        "removed, replaced or reordered)",
        "entry 3 (instance expense-2): hash does not match its content "
        "(changed after it was written)",
        "entry 4 (instance expense-1): its link to entry 3 does not match (an entry was "
        "removed, replaced or reordered)",
    )


def test_verify_names_entries_added_behind_the_stores_back(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("INSERT INTO journal SELECT 7, instance_id, process_id, at, actor, kind, "
                 "version, stage, result, data, hash, hash FROM journal WHERE seq = 6")
    assert problems(store) == (
        "entry 7 (instance expense-3): hash does not match its content "
        "(changed after it was written)",
        "entry 7 (instance expense-3): the journal was recorded to end at entry 6; entries "
        "after it were not written by flowctl",
    )


def test_verify_names_a_missing_tail_record(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal_tail")
    assert problems(store) == (
        "the record of the journal's last entry is missing, but the journal holds entries "
        "up to 6",
    )


def test_appends_after_a_tail_truncation_keep_it_visible(
    tampered: tuple[SqliteStore, sqlite3.Connection],
) -> None:
    store, conn = tampered
    conn.execute("DELETE FROM journal WHERE seq = 6")
    for sql in schema.JOURNAL_TRIGGERS.values():  # put back: writes are refused without them
        conn.execute(sql)
    advance(store, "expense-1")
    assert store.verify_journal().problems == (
        "entry 6 missing: the journal jumps from entry 5 (instance expense-2) to entry 7 "
        "(instance expense-1)",
        "instance expense-3 is at version 2, but its journal ends at version 1 (entries "
        "removed, or the instance changed outside flowctl)",
    )


def test_an_empty_journal_verifies(store: SqliteStore) -> None:
    report = store.verify_journal()
    assert (report.ok, report.entries, report.problems) == (True, 0, ())


def test_as_store_protocol(store: SqliteStore) -> None:
    assert as_store(store) is store


def test_opening_a_store_imports_no_pathlib_random_or_hashlib(db: Path) -> None:
    """Every command that reads the database pays for what the store imports;
    these three (~15 ms) are needed only to hash, back off or lint."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "before = set(sys.modules)  # an editable install's finder brings pathlib\n"
        "from flowctl.store.sqlite import SqliteStore\n"
        "from flowctl.store.base import JournalFilter\n"
        f"store = SqliteStore.open({str(db)!r})\n"
        "list(store.journal(JournalFilter()))\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in ('pathlib', 'random', 'hashlib') if m in new))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_unread_notifications_are_found_by_their_own_index(db: Path) -> None:
    SqliteStore.open(db).close()
    with raw(db) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM notifications"
            " WHERE user = ? AND read_at IS NULL ORDER BY id DESC", ("carol",)
        ).fetchall()
    assert any("notifications_unread" in str(row[-1]) for row in plan), plan


def test_open_load_and_round_robin_turns(store: SqliteStore) -> None:
    start(store, "expense-1", assignees=("user:bob", "role:finance"))
    start(store, "expense-2", assignees=("user:bob",))
    start(store, "expense-3", assignees=("user:carol",))
    with store.transaction() as tx:
        assert tx.open_load(["bob", "carol", "dave"]) == {"bob": 2, "carol": 1}
        assert tx.open_load(["bob"], excluding="expense-1") == {"bob": 1}
        assert tx.open_load([]) == {}
        assert tx.pick_turns() == {}
        tx.set_pick_turn("role:finance", "bob", at="t1")
        tx.set_pick_turn("role:finance", "carol", at="t2")
    with store.transaction() as tx:
        assert tx.pick_turns() == {"role:finance": "carol"}

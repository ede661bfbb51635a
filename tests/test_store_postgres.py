"""The PostgreSQL store against a real server: many client processes at once,
a client killed mid-transaction, the journal append-only by trigger and by
privilege, schema versions, and what a user sees when the server is away.

The contract tests shared with SQLite are in test_store.py (parametrized over
both backends) and test_tick_concurrency.py. 32 client processes x 100
advances each: ~40 s on a 2-core machine.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import store_worker
from pgserver import PgServer, query

from flowctl.store import pg_schema
from flowctl.store.base import ConflictError, JournalFilter, StoreError, StoreMissing
from flowctl.store.postgres import PostgresStore

CTX = multiprocessing.get_context("spawn")
CLIENTS = 32
ADVANCES = 100


def run(target: Any, args_of: list[tuple[Any, ...]], *, timeout: float = 600) -> list[Any]:
    results = CTX.Queue()
    processes = [CTX.Process(target=target, args=(*args, results)) for args in args_of]
    for process in processes:
        process.start()
    reports = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=timeout)
        assert process.exitcode == 0
    return reports


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    store_worker.seed(pg_url)
    opened = PostgresStore.open(pg_url)
    yield opened
    opened.close()


@pytest.mark.parametrize("instances", [CLIENTS, 1])
def test_many_clients_advancing_at_once_lose_nothing(pg_url: str, instances: int) -> None:
    store_worker.seed(pg_url, instances)
    barrier = CTX.Barrier(CLIENTS)
    reports = run(store_worker.advances_over,
                  [(pg_url, n, ADVANCES, instances, barrier) for n in range(CLIENTS)])
    assert [e for r in reports for e in r["errors"]] == []
    # every read happens under the instance's row lock: nobody reads a stale version
    assert [c for r in reports for c in r["conflicts"]] == []
    commits = [c for r in reports for c in r["commits"]]
    assert len(commits) == CLIENTS * ADVANCES
    with PostgresStore.open(pg_url) as store:
        for n in range(1, instances + 1):
            iid = f"expense-{n}"
            mine = sorted(v for i, v in commits if i == iid)
            assert mine == list(range(2, len(mine) + 2)), iid  # consecutive, none twice
            row = store.get_instance(iid)
            assert row is not None
            assert (row.version, row.state["count"]) == (len(mine) + 1, len(mine))
            versions = [e.version for e in store.journal(JournalFilter(instance_id=iid))]
            assert versions == list(range(1, row.version + 1))
        report = store.verify_journal()
        assert (report.ok, report.entries) == (True, instances + CLIENTS * ADVANCES)
        assert [e.seq for e in store.journal(JournalFilter())] == list(
            range(1, report.entries + 1))


def test_stale_intent_exactly_one_writer_wins(store: PostgresStore, pg_url: str) -> None:
    barrier = CTX.Barrier(2)
    reports = run(store_worker.stale_intent, [(pg_url, n, barrier) for n in (1, 2)])
    outcomes = Counter(r["outcome"] for r in reports)
    assert outcomes == Counter({
        "won": 1,
        "conflict: instance expense-1 changed: expected version 1, found 2; nothing was written":
            1,
    })


def test_a_client_killed_mid_transaction_leaves_nothing_half_written(
    store: PostgresStore, pg_url: str
) -> None:
    row_before = store.get_instance(store_worker.INSTANCE)
    journal_before = list(store.journal(JournalFilter()))
    updated = CTX.Event()
    process = CTX.Process(target=store_worker.killed_mid_transaction, args=(pg_url, updated))
    process.start()
    try:
        assert updated.wait(timeout=60), "the worker never updated the instance"
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL
    # the server ends the dead client's session and rolls its transaction back
    # (and so releases the row lock): the next client waits for that at most
    assert store.get_instance(store_worker.INSTANCE) == row_before
    assert list(store.journal(JournalFilter())) == journal_before
    with PostgresStore.open(pg_url, lock_deadline_s=30) as again:
        assert store_worker.advance(again, "user:after") == 2
        assert again.verify_journal().ok


def test_a_held_row_lock_becomes_a_conflict_after_the_deadline(
    store: PostgresStore, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT 1 FROM flowctl.instances WHERE id = 'expense-1' FOR UPDATE")
        waiting = PostgresStore.open(pg_url, lock_deadline_s=0.3)
        try:
            with pytest.raises(ConflictError) as caught:
                store_worker.advance(waiting, "user:late")
        finally:
            waiting.close()
    assert caught.value.message == (
        f"database {store.path}: another writer held the lock past the deadline; "
        "nothing was written"
    )
    assert caught.value.exit_code == 5
    assert store_worker.advance(store, "user:later") == 2  # free again


# -- append-only: triggers for the owner, privileges for operators -----------------

OWNER_ATTACKS = {
    "update": "UPDATE flowctl.journal SET actor = 'user:mallory' WHERE seq = 1",
    "delete": "DELETE FROM flowctl.journal WHERE seq = 1",
    "truncate": "TRUNCATE flowctl.journal",
    "upsert": (
        "INSERT INTO flowctl.journal (seq, instance_id, process_id, at, actor, kind, version, "
        "data, prev_hash, hash) VALUES (1, 'expense-1', 'expense', 't', 'x', 'note', 1, '{}', "
        "'', '') ON CONFLICT (seq) DO UPDATE SET actor = 'user:mallory'"
    ),
    "insert-into-the-past": (
        "INSERT INTO flowctl.journal (seq, instance_id, process_id, at, actor, kind, version, "
        "data, prev_hash, hash) VALUES (0, 'expense-1', 'expense', 't', 'x', 'note', 1, '{}', "
        "'', '')"
    ),
    "tail-back": "UPDATE flowctl.journal_tail SET seq = 0",
    "tail-delete": "DELETE FROM flowctl.journal_tail",
    "tail-truncate": "TRUNCATE flowctl.journal_tail",
    "attachments-truncate": "TRUNCATE flowctl.attachments CASCADE",
}


@pytest.mark.parametrize("attack", sorted(OWNER_ATTACKS))
def test_the_journal_refuses_every_change_even_from_its_owner(
    store: PostgresStore, pg_url: str, attack: str
) -> None:
    before = list(store.journal(JournalFilter()))
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(
            psycopg.errors.RestrictViolation, match="append-only|tail"):
        conn.execute(OWNER_ATTACKS[attack])  # type: ignore[arg-type]
    assert list(store.journal(JournalFilter())) == before
    assert store.verify_journal().ok


def test_db_grant_lets_an_operator_append_but_never_change_the_journal(
    store: PostgresStore, pg_server: PgServer, pg_url: str
) -> None:
    created, _ = store.grant("olga")
    assert created
    assert store.grant("olga")[0] is False  # again: the role is kept, the grants re-applied
    olga = pg_url.replace(f"{pg_server.url().split('@')[0]}@", "postgresql://olga@")
    with PostgresStore.open(olga) as mine:
        assert mine.login() == "olga"
        assert store_worker.advance(mine, "user:olga") == 2  # insert into the journal: yes
        assert mine.verify_journal().ok
    for attack in ("UPDATE flowctl.journal SET actor = 'x'", "DELETE FROM flowctl.journal",
                   "TRUNCATE flowctl.journal", "DROP TRIGGER journal_no_update ON "
                   "flowctl.journal", "UPDATE flowctl.attachments SET name = 'x'",
                   "DELETE FROM flowctl.definitions"):
        with psycopg.connect(olga, autocommit=True) as conn, pytest.raises(
                (psycopg.errors.InsufficientPrivilege, psycopg.errors.RestrictViolation)):
            conn.execute(attack)  # type: ignore[arg-type]
    assert store.verify_journal().ok


def test_an_operator_cannot_repair_or_migrate(
    store: PostgresStore, pg_server: PgServer, pg_url: str
) -> None:
    store.grant("olga")
    olga = pg_url.replace(f"{pg_server.url().split('@')[0]}@", "postgresql://olga@")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER journal_no_update ON flowctl.journal")
    with PostgresStore.open(olga) as mine:
        with pytest.raises(StoreError) as caught:
            mine.repair_journal(actor="olga", at="t")
        assert caught.value.message == (
            f"database {mine.path}: only the schema's owner can restore the journal's "
            "triggers; nothing was written")
        with pytest.raises(StoreError, match="journal_no_update is missing"):
            store_worker.advance(mine, "user:olga")  # no write without its triggers
    report = store.repair_journal(actor="grace", at="t")
    assert report.problems == ("the append-only trigger journal_no_update is missing",)
    assert store.verify_journal().ok


def test_verify_names_an_entry_edited_behind_the_triggers(store: PostgresStore,
                                                           pg_url: str) -> None:
    store_worker.advance(store, "user:bob")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE flowctl.journal DISABLE TRIGGER journal_no_update")
        conn.execute("UPDATE flowctl.journal SET actor = 'user:mallory' WHERE seq = 2")
    assert store.verify_journal().problems == (
        "the append-only trigger journal_no_update is disabled: the journal is not protected "
        "against changes (restore it with `flowctl db repair`)",
        "entry 2 (instance expense-1): hash does not match its content "
        "(changed after it was written)",
    )


# -- opening: schema versions, missing stores, unreachable servers ---------------


def test_a_store_from_a_newer_flowctl_is_refused(store: PostgresStore, pg_url: str) -> None:
    query(pg_url, "UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError) as caught:
        PostgresStore.open(pg_url)
    assert caught.value.message == (
        f"database {store.path} was written by a newer flowctl (schema 99; this flowctl knows "
        f"up to {pg_schema.SCHEMA_VERSION}); upgrade flowctl")
    assert caught.value.exit_code == 4


def test_pending_migrations_apply_in_order_once(pg_url: str) -> None:
    first = PostgresStore.open(pg_url, migrations=pg_schema.MIGRATIONS[:2])
    assert first.schema_version() == 2
    first.close()
    with PostgresStore.open(pg_url, create=False, migrate=False,
                            migrations=pg_schema.MIGRATIONS[:2]) as same:
        assert same.schema_version() == 2
    with pytest.raises(StoreError,
                       match=f"has schema 2; this flowctl needs {pg_schema.SCHEMA_VERSION}"):
        PostgresStore.open(pg_url, migrate=False)
    with PostgresStore.open(pg_url) as upgraded:
        assert upgraded.schema_version() == pg_schema.SCHEMA_VERSION
        assert upgraded.migrate() == (pg_schema.SCHEMA_VERSION, pg_schema.SCHEMA_VERSION)


def test_the_migrations_follow_sqlites_numbering() -> None:
    from flowctl.store import migrations

    assert pg_schema.SCHEMA_VERSION == migrations.SCHEMA_VERSION


def test_a_database_without_the_schema_is_no_store_unless_creating(pg_url: str) -> None:
    with pytest.raises(StoreMissing):
        PostgresStore.open(pg_url, create=False)
    assert query(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'flowctl'") == [(0,)]


def test_an_unreachable_server_is_named_and_the_password_never_shown() -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore.open("postgresql://olga:s3cret@127.0.0.1:1/team", connect_timeout_s=2)
    assert caught.value.exit_code == 4
    assert caught.value.message.startswith(
        "cannot reach the PostgreSQL server at 127.0.0.1:1/team "
        "(postgresql://olga:***@127.0.0.1:1/team): ")
    assert "s3cret" not in caught.value.message + str(caught.value.hint)

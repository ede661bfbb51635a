"""The SQLite store under several OS processes at once, and under SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import store_worker

from flowctl.store.base import InstanceFilter, JournalFilter
from flowctl.store.sqlite import SqliteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")

CTX = multiprocessing.get_context("spawn")
WORKERS = 8
ATTEMPTS = 500
EXPECTED_SETTINGS = {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000,
                     "foreign_keys": 1}


def run(target: Any, args_of: list[tuple[Any, ...]], *, timeout: float = 120) -> list[Any]:
    """Start one process per argument tuple; each appends (results queue) to its args."""
    results = CTX.Queue()
    processes = [CTX.Process(target=target, args=(*args, results)) for args in args_of]
    for process in processes:
        process.start()
    reports = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=timeout)
        assert process.exitcode == 0
    return reports


def integrity(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


def test_concurrent_read_modify_write_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "flowctl.db"
    store_worker.seed(db)
    barrier = CTX.Barrier(WORKERS)
    reports = run(store_worker.read_modify_write,
                  [(db, n, ATTEMPTS, barrier) for n in range(WORKERS)])

    errors = [e for r in reports for e in r["errors"]]
    conflicts = [c for r in reports for c in r["conflicts"]]
    commits = [v for r in reports for v in r["commits"]]
    assert errors == []
    assert conflicts == []  # the read happens under BEGIN IMMEDIATE: nobody reads stale
    assert len(commits) + len(conflicts) == WORKERS * ATTEMPTS
    assert sorted(commits) == list(range(2, len(commits) + 2))
    assert all(r["settings"] | EXPECTED_SETTINGS == r["settings"] for r in reports)

    with SqliteStore.open(db) as store:
        row = store.get_instance(store_worker.INSTANCE)
        assert row is not None
        assert row.version == len(commits) + 1
        assert row.state["count"] == len(commits)
        versions = [e.version for e in store.journal(JournalFilter(
            instance_id=store_worker.INSTANCE)) if e.kind == "note"]
        assert versions == list(range(2, row.version + 1))  # in order, no gap, no duplicate
        report = store.verify_journal()
        assert (report.ok, report.entries) == (True, len(commits) + 1)
        assert store.check_integrity() == ("ok",)


def test_many_processes_create_and_first_write_a_new_database(tmp_path: Path) -> None:
    rounds = 100
    barrier = CTX.Barrier(WORKERS)
    reports = run(store_worker.first_writes,
                  [(tmp_path, n, rounds, barrier) for n in range(WORKERS)])
    assert [f for r in reports for f in r["failures"]] == []
    expected_ids = [f"expense-{n}" for n in range(1, WORKERS + 1)]
    for number in range(rounds):
        with SqliteStore.open(tmp_path / f"round-{number}.db") as store:
            found = sorted((r.id for r in store.list_instances(InstanceFilter())),
                           key=lambda i: int(i.rsplit("-", 1)[1]))
            assert found == expected_ids, number
            assert store.verify_journal().entries == WORKERS
            assert store.settings()["journal_mode"] == "wal"
            assert store.check_integrity() == ("ok",)


def test_stale_intent_exactly_one_writer_wins(tmp_path: Path) -> None:
    db = tmp_path / "flowctl.db"
    store_worker.seed(db)
    barrier = CTX.Barrier(2)
    reports = run(store_worker.stale_intent, [(db, n, barrier) for n in (1, 2)])
    outcomes = Counter(r["outcome"] for r in reports)
    assert outcomes == Counter({
        "won": 1,
        "conflict: instance expense-1 changed: expected version 1, found 2; nothing was written":
            1,
    })
    winner = next(r["worker"] for r in reports if r["outcome"] == "won")
    with SqliteStore.open(db) as store:
        row = store.get_instance(store_worker.INSTANCE)
        assert row is not None
        assert (row.version, row.state) == (2, {"by": winner})
        notes = [e for e in store.journal(JournalFilter()) if e.kind == "note"]
        assert [(e.version, e.actor) for e in notes] == [(2, f"user:worker-{winner}")]


def test_sigkill_inside_a_transaction_leaves_the_database_as_before(tmp_path: Path) -> None:
    db = tmp_path / "flowctl.db"
    store_worker.seed(db)
    with SqliteStore.open(db) as store:
        row_before = store.get_instance(store_worker.INSTANCE)
        journal_before = list(store.journal(JournalFilter()))

    updated = CTX.Event()
    process = CTX.Process(target=store_worker.killed_mid_transaction, args=(db, updated))
    process.start()
    try:
        assert updated.wait(timeout=60), "the worker never updated the instance"
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL

    assert integrity(db) == [("ok",)]
    with SqliteStore.open(db, lock_deadline_s=5) as store:
        assert store.get_instance(store_worker.INSTANCE) == row_before
        assert list(store.journal(JournalFilter())) == journal_before
        assert store.check_integrity() == ("ok",)
        store_worker.advance(store, "user:after")  # the lock died with the process
        row = store.get_instance(store_worker.INSTANCE)
        assert row is not None
        assert row.version == 2
        assert store.verify_journal().ok

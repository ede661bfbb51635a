"""Worker processes for the store's multiprocess tests (run by test_store_concurrency.py).

Each function runs in its own OS process (multiprocessing, spawn) against the
same store (a SQLite file, or a PostgreSQL URL: ``open_store`` takes either),
and reports what happened through a queue: it never lets an exception escape,
so the parent sees every failure as data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from flowctl.store.backends import open_store
from flowctl.store.base import (
    ConflictError,
    Definition,
    InstanceRow,
    JournalEntry,
)
from flowctl.store.sqlite import SqliteStore

INSTANCE = "expense-1"
DEFINITION = Definition(digest="d" * 64, process_id="expense", source="id: expense\n",
                        stored_at="2026-01-01T00:00:00Z")


def first_row(iid: str = INSTANCE) -> InstanceRow:
    return InstanceRow(
        id=iid, process_id="expense", definition_digest=DEFINITION.digest, status="active",
        stage="review", initiator="user:alice", started_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z", version=1, assignees=("role:finance",),
        state={"count": 0},
    )


def seed(db: Path | str, count: int = 1) -> None:
    """A store holding ``count`` instances (expense-1...) at version 1 with their
    ``started`` entries."""
    with open_store(str(db), create=True) as store, store.transaction() as tx:
        tx.put_definition(DEFINITION)
        for n in range(1, count + 1):
            tx.insert_instance(first_row(f"expense-{n}"))
            tx.append_journal([JournalEntry(instance_id=f"expense-{n}", at="t",
                                            actor="user:alice", kind="started", version=1)])


def advance(store: Any, actor: str, iid: str = INSTANCE) -> int:
    """One read-modify-write advance inside one transaction; the version written."""
    with store.transaction() as tx:
        row = tx.get_instance(iid)
        assert row is not None
        new = replace(row, version=row.version + 1,
                      state={"count": row.state["count"] + 1, "by": actor})
        tx.update_instance(new, expected_version=row.version)
        tx.append_journal([JournalEntry(instance_id=iid, at="t", actor=actor,
                                        kind="note", version=new.version)])
    return new.version


def advances_over(target: str, worker: int, attempts: int, instances: int, barrier: Any,
                  results: Any) -> None:
    """``attempts`` advances, the k-th of instance expense-((worker + k) % instances + 1),
    each opening the store like a CLI call."""
    commits: list[tuple[str, int]] = []
    conflicts: list[str] = []
    errors: list[str] = []
    try:
        barrier.wait(timeout=120)
        for k in range(attempts):
            iid = f"expense-{(worker + k) % instances + 1}"
            try:
                with open_store(target) as store:
                    commits.append((iid, advance(store, f"user:worker-{worker}", iid)))
            except ConflictError as exc:
                conflicts.append(exc.message)
            except Exception as exc:  # noqa: BLE001 - reported to the parent as data
                errors.append(repr(exc))
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc))
    results.put({"worker": worker, "commits": commits, "conflicts": conflicts,
                 "errors": errors})


def read_modify_write(db: Path, worker: int, attempts: int, barrier: Any, results: Any) -> None:
    """``attempts`` advances of the one instance, each opening the store like a CLI call."""
    commits: list[int] = []
    conflicts: list[str] = []
    errors: list[str] = []
    settings: dict[str, Any] = {}
    try:
        barrier.wait(timeout=60)
        for _ in range(attempts):
            try:
                with SqliteStore.open(db) as store:
                    settings = store.settings()
                    commits.append(advance(store, f"user:worker-{worker}"))
            except ConflictError as exc:
                conflicts.append(exc.message)
            except Exception as exc:  # noqa: BLE001 - reported to the parent as data
                errors.append(repr(exc))
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc))
    results.put({"worker": worker, "commits": commits, "conflicts": conflicts,
                 "errors": errors, "settings": settings})


def first_writes(folder: Path, worker: int, rounds: int, barrier: Any, results: Any) -> None:
    """Each round, all workers open the same brand-new file at once and write to it."""
    failures: list[str] = []
    for number in range(rounds):
        try:
            barrier.wait(timeout=60)
            with SqliteStore.open(folder / f"round-{number}.db") as store, \
                    store.transaction() as tx:
                tx.put_definition(DEFINITION)
                iid = tx.new_instance_id("expense")
                tx.insert_instance(first_row(iid))
                tx.append_journal([JournalEntry(instance_id=iid, at="t",
                                                actor=f"user:worker-{worker}",
                                                kind="started", version=1)])
        except Exception as exc:  # noqa: BLE001
            failures.append(f"round {number}: {exc!r}")
    results.put({"worker": worker, "failures": failures})


def stale_intent(db: Path | str, worker: int, barrier: Any, results: Any) -> None:
    """Read the version, wait until the other worker has read it too, then write."""
    try:
        with open_store(str(db)) as store:
            seen = store.get_instance(INSTANCE)
            assert seen is not None
            barrier.wait(timeout=60)
            time.sleep(0.05 * worker)  # both have read; they write one after the other
            with store.transaction() as tx:
                new = replace(seen, version=seen.version + 1, state={"by": worker})
                tx.update_instance(new, expected_version=seen.version)
                tx.append_journal([JournalEntry(instance_id=INSTANCE, at="t",
                                                actor=f"user:worker-{worker}", kind="note",
                                                version=new.version)])
        results.put({"worker": worker, "outcome": "won"})
    except ConflictError as exc:
        results.put({"worker": worker, "outcome": f"conflict: {exc.message}"})
    except Exception as exc:  # noqa: BLE001
        results.put({"worker": worker, "outcome": f"error: {exc!r}"})


def killed_mid_transaction(db: Path | str, updated: Any) -> None:
    """Update the instance, tell the parent, then wait inside the transaction to be killed."""
    with open_store(str(db)) as store, store.transaction() as tx:
        row = tx.get_instance(INSTANCE)
        assert row is not None
        tx.update_instance(replace(row, version=row.version + 1, stage="approve"),
                           expected_version=row.version)
        updated.set()
        time.sleep(60)
        tx.append_journal([JournalEntry(instance_id=INSTANCE, at="t", actor="user:x",
                                        kind="note", version=row.version + 1)])

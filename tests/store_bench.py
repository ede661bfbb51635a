"""Benchmark of the SQLite store's reads on a large database (not a test).

    python tests/store_bench.py [DB]   (default: $TMPDIR/flowctl-bench/bench.db)

Builds, once, a database of 50,000 instances and 1,000,000 journal rows (20 per
instance, interleaved as they would be in time) through the store's own write
path, then times the queries the CLI runs: the inbox, ``list --status active
--limit 50``, one instance's journal, ``show``, a CLI-shaped write, and
``journal verify``. Each is printed beside a peer measured in the same run: a
full scan of the journal (``count(*)`` over a column without an index).
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from msgspec.structs import replace

from flowctl.store.base import (
    Definition,
    InstanceFilter,
    InstanceRow,
    JournalEntry,
    JournalFilter,
)
from flowctl.store.sqlite import SqliteStore

INSTANCES = 50_000
PER_INSTANCE = 20
PROCESSES = [f"process-{n}" for n in range(10)]
USERS = [f"user:u{n}" for n in range(200)]
ROLES = [f"role:r{n}" for n in range(20)]


def _when(minute: int) -> str:
    day, rest = divmod(minute, 24 * 60)
    return f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{rest // 60:02d}:{rest % 60:02d}:00Z"


def _instance(n: int, rng: random.Random) -> InstanceRow:
    process = PROCESSES[n % len(PROCESSES)]
    status = rng.choices(["active", "completed", "cancelled", "paused"], [30, 55, 10, 5])[0]
    assignees = (rng.choice(USERS), rng.choice(ROLES)) if status == "active" else ()
    return InstanceRow(
        id=f"{process}-{n}", process_id=process, definition_digest=f"{n % 10:064d}",
        status=status, stage="review" if status == "active" else None,
        initiator=rng.choice(USERS), started_at=_when(n * 4), updated_at=_when(n * 4 + 60),
        version=PER_INSTANCE, assignees=assignees, state={"amount": n, "notes": "x" * 40},
    )


def build(path: Path) -> None:
    rng = random.Random(7)
    started = time.perf_counter()
    rows = [_instance(n, rng) for n in range(INSTANCES)]
    with SqliteStore.open(path) as store:
        with store.transaction() as tx:
            for n, process in enumerate(PROCESSES):
                tx.put_definition(Definition(f"{n:064d}", process, "id: x\n", _when(0)))
            for row in rows:
                tx.insert_instance(row)
        batch = 1000
        for version in range(1, PER_INSTANCE + 1):
            for first in range(0, INSTANCES, batch):
                with store.transaction() as tx:
                    tx.append_journal([
                        JournalEntry(instance_id=row.id, at=_when(n * 4 + version),
                                     actor=rng.choice(USERS), kind="note", version=version,
                                     stage="review", data={"comment": "looks fine", "n": n})
                        for n, row in enumerate(rows[first:first + batch], start=first)
                    ])
    print(f"built {path} in {time.perf_counter() - started:.0f} s "
          f"({path.stat().st_size / 1e6:.0f} MB)")


def timed(label: str, work: Callable[[], object], repeat: int = 20) -> float:
    work()  # warm the page cache
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    best = sorted(times)[len(times) // 2] * 1000
    print(f"{label:<58} {best:9.2f} ms (median of {repeat})")
    return best


def main() -> None:
    default = Path(tempfile.gettempdir()) / "flowctl-bench" / "bench.db"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not path.exists():
        build(path)
    store = SqliteStore.open(path)
    target = "process-3-12343"
    with sqlite3.connect(path) as conn:
        def peer() -> object:
            return conn.execute("SELECT count(*) FROM journal WHERE kind = 'x'").fetchone()

        peer_ms = timed("peer: full scan of the journal (count where kind = 'x')", peer, 5)

    checks: list[tuple[str, Callable[[], object], int]] = [
        ("inbox: user:u7 + role:r3, active, oldest first (all)", lambda: list(
            store.list_instances(InstanceFilter(status=("active",),
                                                principals=("user:u7", "role:r3"),
                                                oldest_first=True))), 20),
        ("inbox: user:u7 + role:r3, active, oldest first, limit 50", lambda: list(
            store.list_instances(InstanceFilter(status=("active",),
                                                principals=("user:u7", "role:r3"),
                                                oldest_first=True, limit=50))), 20),
        ("list --status active --limit 50", lambda: list(
            store.list_instances(InstanceFilter(status=("active",), limit=50))), 20),
        ("list --process process-3 --status completed --limit 50", lambda: list(
            store.list_instances(InstanceFilter(status=("completed",),
                                                process_id="process-3", limit=50))), 20),
        ("show: get_instance", lambda: store.get_instance(target), 20),
        ("one instance's journal (20 rows)", lambda: list(
            store.journal(JournalFilter(instance_id=target))), 20),
        ("journal --actor user:u7 (first 100 rows)", lambda: _first(
            store.journal(JournalFilter(actor="user:u7")), 100), 20),
        ("CLI-shaped advance: open + transaction + journal + close", lambda: _advance(
            path, target), 20),
        ("journal verify (whole journal)", store.verify_journal, 1),
    ]
    for label, work, repeat in checks:
        ms = timed(label, work, repeat)
        print(f"{'':<58} {ms / peer_ms:9.4f} x peer")
    store.close()


def _first(stream: object, n: int) -> list[object]:
    items = []
    for item in stream:  # type: ignore[attr-defined]
        items.append(item)
        if len(items) == n:
            break
    return items


def _advance(path: Path, iid: str) -> None:
    with SqliteStore.open(path) as store, store.transaction() as tx:
        row = tx.get_instance(iid)
        assert row is not None
        tx.update_instance(replace(row, version=row.version + 1), expected_version=row.version)
        tx.append_journal([JournalEntry(instance_id=iid, at=_when(0), actor="user:u1",
                                        kind="note", version=row.version + 1)])


if __name__ == "__main__":
    main()

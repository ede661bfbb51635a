"""Benchmark row 6, flowctl's side: key-account-filing-approval through the Python API.

    bench/.venv-flowctl/bin/python bench/api_flowctl.py PROCESSES_DIR COUNT

In a new database in a temporary folder on disk, for each of ``COUNT``
instances (plus one warm-up), the path of scripts/demo.sh through the
approval: alice starts it for a customer she owns, grades the customer a key
account, carol (head of sales) approves, carol hands it to bob, and the
instance completes. Every step is its own durable transaction (WAL,
synchronous=FULL) with its journal entries; the store is opened and the
definitions read once (``runtime.session``). Prints one JSON line:
``{"per_instance": [seconds, ...], "commit_floor": seconds}``, where
``commit_floor`` is the median time of four durable one-row SQLite commits
(the least any four durable steps can cost on this disk).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

from flowctl.api import instances as runtime

PROCESS = "key-account-filing-approval"


def run_one(ctx: Any) -> None:
    step = runtime.start(PROCESS, values={"owner": "alice"}, as_user="alice", **ctx)
    iid = step.instance.id
    runtime.advance(iid, result="done", values={"level": "key"}, as_user="alice", **ctx)
    runtime.advance(iid, result="approve", as_user="carol", **ctx)
    done = runtime.advance(iid, result="done", values={"owner": "bob"}, as_user="carol", **ctx)
    if done.instance.status != "completed":
        raise SystemExit(f"api_flowctl: {iid} is {done.instance.status}, not completed")


def commit_floor(folder: str, count: int) -> float:
    """Median time of four durable one-row commits (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (n INTEGER)")
    times = []
    for i in range(count):
        start = time.perf_counter()
        for _ in range(4):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(times)


def main() -> None:
    processes, count = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as folder:
        db = os.path.join(folder, "flowctl.db")
        times = []
        with runtime.session(db=db, processes_dir=processes) as ctx:
            run_one(ctx)  # warm-up
            for _ in range(count):
                start = time.perf_counter()
                run_one(ctx)
                times.append(time.perf_counter() - start)
        floor = commit_floor(folder, max(10, count // 4))
    print(json.dumps({"per_instance": times, "commit_floor": floor}))


if __name__ == "__main__":
    main()

"""Benchmark row 12: throughput of `advance` with N concurrent clients, and the
ceiling of small durable transactions on the same store.

    python bench/throughput.py flowctl DB --clients N --seconds S
    python bench/throughput.py sqlite-ceiling DB --clients N --seconds S

``flowctl``: N client processes, each with its own instance of a looping
process and its own ``api.session`` (one connection, as a long-lived client
keeps), call ``api.advance`` as fast as they can for S seconds; each advance
is one durable transaction (the instance's row locked, its journal entries
appended to the one hash chain). ``DB`` is a SQLite file or a PostgreSQL URL.

``sqlite-ceiling``: N processes doing ``BEGIN IMMEDIATE; INSERT; COMMIT`` on
one SQLite file with flowctl's settings (WAL, synchronous=FULL,
busy_timeout=5000, retried when busy): the most small durable transactions
one file takes. (PostgreSQL's ceiling is pgbench's simple-update script,
run by bench/run.py.)

Prints one JSON object: {"transactions": n, "seconds": s, "per_s": n / s}.
Run with the flowctl to be measured (bench/run.py uses bench/.venv-flowctl).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import tempfile
import time
from typing import Any

LOOP = """\
kind: process
id: loop
name: Loop
stages:
  - id: work
    kind: task
    start: true
    name: Work
    assignee: initiator
    results:
      again: work
      done: finish
  - id: finish
    kind: end
    name: Finished
"""
ORG = """\
kind: org
users:
  - id: alice
    name: Alice
"""


def workspace() -> str:
    folder = tempfile.mkdtemp(prefix="flowctl-throughput-")
    os.makedirs(os.path.join(folder, "processes"))
    with open(os.path.join(folder, "processes", "loop.yaml"), "w", encoding="utf-8") as fh:
        fh.write(LOOP)
    with open(os.path.join(folder, "processes", "org.yaml"), "w", encoding="utf-8") as fh:
        fh.write(ORG)
    with open(os.path.join(folder, "flowctl.toml"), "w", encoding="utf-8") as fh:
        fh.write('identity = "trust"\n')
    return folder


def advancer(folder: str, db: str, iid: str, seconds: float, barrier: Any,
             results: Any) -> None:
    os.chdir(folder)
    from flowctl import api

    done = 0
    with api.session(db=db) as ctx:
        barrier.wait(timeout=120)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            api.advance(iid, result="again", as_user="alice", **ctx)
            done += 1
    results.put(done)


def flowctl_run(db: str, clients: int, seconds: float) -> dict[str, Any]:
    folder = workspace()
    os.chdir(folder)
    from flowctl import api

    with api.session(db=db) as ctx:
        ids = [api.start("loop", as_user="alice", **ctx).instance.id for _ in range(clients)]
    return spawn(advancer, [(folder, db, iid, seconds) for iid in ids], seconds)


def inserter(path: str, seconds: float, barrier: Any, results: Any) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 5000")
    done = 0
    barrier.wait(timeout=120)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            time.sleep(0.001)
            continue
        conn.execute("INSERT INTO t (x) VALUES (?)", ("x" * 180,))
        conn.execute("COMMIT")
        done += 1
    results.put(done)


def sqlite_ceiling(path: str, clients: int, seconds: float) -> dict[str, Any]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, x TEXT)")
    conn.close()
    return spawn(inserter, [(path, seconds) for _ in range(clients)], seconds)


def spawn(target: Any, args_of: list[tuple[Any, ...]], seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_of))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_of]
    for p in procs:
        p.start()
    total = sum(results.get(timeout=seconds + 300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise SystemExit(f"a client exited {p.exitcode}")
    return {"transactions": total, "seconds": seconds, "per_s": total / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("flowctl", "sqlite-ceiling"))
    ap.add_argument("db")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    if args.what == "flowctl":
        out = flowctl_run(args.db, args.clients, args.seconds)
    else:
        out = sqlite_ceiling(args.db, args.clients, args.seconds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

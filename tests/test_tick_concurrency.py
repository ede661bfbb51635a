"""tick from several OS processes at once fires each timer exactly once; a
tick killed with SIGKILL half-way leaves nothing half-fired, and the next
tick finishes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgserver import query as query_rows

from flowctl import engine
from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.api.definitions import load_org
from flowctl.store.backends import open_store
from flowctl.store.base import Definition

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LATER = "2026-11-23T11:00:00Z"
N = 1000
# Due timers per backend: 5,000 on PostgreSQL (~20-75 s on a 2-core machine,
# as loaded), 1,000 on SQLite, whose ticks take turns on the one file.
COUNTS = {"sqlite": N, "postgres": 5000}


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store: a SQLite file, or a database of the tests' PostgreSQL server."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "flowctl.db")


def count_for(target: str) -> int:
    return COUNTS["postgres" if target.startswith("postgresql://") else "sqlite"]

SLEEPER = """\
kind: process
id: sleeper
name: Sleeper
stages:
  - id: nap
    kind: wait
    start: true
    for: 1h
    next: done
  - id: done
    kind: end
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    processes = tmp_path / "processes"
    processes.mkdir()
    (processes / "sleeper.yaml").write_text(SLEEPER, encoding="utf-8")
    (processes / "org.yaml").write_bytes((ROOT / "processes" / "org.yaml").read_bytes())
    return processes


def populate(db: str, folder: Path, count: int = N) -> None:
    """``count`` instances waiting at 'nap', each with one wake timer due at 10:00."""
    process = runtime.process_from_source(SLEEPER, "sleeper")
    digest = runtime.digest_of(SLEEPER)
    ctx = engine.Context("alice", load_org(processes_dir=str(folder)), T0)
    with open_store(db, create=True) as store, store.transaction() as tx:
        tx.put_definition(Definition(digest, "sleeper", SLEEPER, engine.iso(T0)))
        for _ in range(count):
            iid = tx.new_instance_id("sleeper")
            step = engine.start(process, engine.Start(), ctx, instance_id=iid, digest=digest)
            tx.insert_instance(runtime._to_row(step.instance))
            tx.append_journal(runtime._entries(step.instance, step.events))


def tick_command(db: str, folder: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "FLOWCTL_DB": str(db), "FLOWCTL_PROCESSES": str(folder)}
    env.pop("FLOWCTL_NOTIFY_COMMAND", None)
    return [sys.executable, "-m", "flowctl", "tick", "--now", LATER, "--json"], env


def query(db: str, sql: str) -> list[tuple[object, ...]]:
    return query_rows(db, sql)


def woke_per_timer(db: str) -> Counter[tuple[str, str]]:
    rows = query(db, "SELECT instance_id, data FROM journal WHERE kind = 'woke'")
    return Counter((str(iid), json.loads(str(data))["timer"]) for iid, data in rows)


def test_four_ticks_at_once_fire_each_timer_exactly_once(
    tmp_path: Path, folder: Path, target: str
) -> None:
    db = target
    N = count_for(target)  # noqa: N806 - the module's N, per backend
    populate(db, folder, N)
    cmd, env = tick_command(db, folder)
    procs = [
        subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    fired = [f["instance_id"] for r in reports for f in r["fired"] if f["status"] == "fired"]
    assert len(fired) == N
    assert len(set(fired)) == N
    woke = woke_per_timer(db)
    assert len(woke) == N
    assert set(woke.values()) == {1}
    assert query(db, "SELECT status, count(*) FROM timers GROUP BY status") == [("fired", N)]
    assert query(db, "SELECT status, count(*) FROM instances GROUP BY status") == [
        ("completed", N),
    ]
    with open_store(db) as store:
        assert store.verify_journal().ok


def test_a_tick_killed_half_way_leaves_nothing_half_fired(
    tmp_path: Path, folder: Path, target: str
) -> None:
    db = target
    populate(db, folder)
    cmd, env = tick_command(db, folder)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = query(db, "SELECT count(*) FROM timers WHERE status = 'fired'")[0][0]
        if int(str(done)) >= 50:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    fired_before = int(str(query(db, "SELECT count(*) FROM timers WHERE status = 'fired'")[0][0]))
    assert 50 <= fired_before < N, "the tick was not killed half-way; make N larger"
    # every timer is either fired with its instance moved on and one journal entry,
    # or pending with its instance untouched
    rows = query(db, "SELECT t.status, i.status, i.version FROM timers t "
                     "JOIN instances i ON i.id = t.instance_id")
    assert {(str(a), str(b), int(str(c))) for a, b, c in rows} <= {
        ("fired", "completed", 2), ("pending", "waiting", 1),
    }
    woke = woke_per_timer(db)
    assert len(woke) == fired_before
    assert set(woke.values()) == {1}
    with open_store(db) as store:
        if hasattr(store, "check_integrity"):
            assert store.check_integrity() == ("ok",)
        report = timework.tick(store=store, processes_dir=str(folder),
                               now=T0 + timedelta(hours=2))
        assert len([f for f in report.fired if f.status == "fired"]) == N - fired_before
        assert store.verify_journal().ok
    woke = woke_per_timer(db)
    assert len(woke) == N
    assert set(woke.values()) == {1}
    assert query(db, "SELECT status, count(*) FROM timers GROUP BY status") == [("fired", N)]

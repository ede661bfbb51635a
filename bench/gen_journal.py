"""The database of benchmark rows 7 and 8: a year of operators' work, ~1M journal entries.

    python bench/gen_journal.py DB [--instances 50000] [--seed 7] [--notes-per-step 1.85]

Run with the flowctl to be measured (bench/run.py uses bench/.venv-flowctl).
Everything is written by flowctl's own Python API, so the rows are exactly
the ones operators' commands write: each start, advance, note, link and task
through ``runtime`` (one transaction per step, with the engine's journal
entries and the hash chain), and ``timework.tick`` every hour of the year as
cron would run it (reminders, escalations, wake-ups, delayed tasks). The only
difference from a production database is durability while it is built: the
store is opened with ``durable=False`` (``synchronous=OFF``), which changes
no row, only how long a commit waits for the disk.

The people and processes are those in processes/: sales reps (alice, bob)
start key-account filings, contracts and lost-customer recoveries; carol
(head of sales, sales manager) approves; frank (finance), linda (legal) and
grace (general manager) review and sign; logistics (oleg, dmitry) deliver.
Each instance follows a path chosen at random (key or normal customers,
rejections sent back, credit and legal reviews by amount, score and term,
offers accepted, declined or postponed), with notes and links on the way.
Steps of all instances run in time order over the year; steps planned after
its end do not happen, so the instances in flight at the end stay active,
as do the few that were abandoned half-way.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flowctl.api import instances as runtime
from flowctl.api import timers as timework
from flowctl.store.sqlite import SqliteStore

HERE = os.path.dirname(os.path.abspath(__file__))
PROCESSES = os.path.join(os.path.dirname(HERE), "processes")
START = datetime(2025, 11, 23, 0, 0, tzinfo=UTC)
DAYS = 365
END = START + timedelta(days=DAYS)
ABANDONED = 0.02  # instances that stop half-way and stay open for good

KA = "key-account-filing-approval"
CA = "contract-approval"
LCR = "lost-customer-recovery"
GD = "goods-delivery"
REPS = ("alice", "bob")
LOGISTICS = ("oleg", "dmitry")
READERS = ("alice", "bob", "carol", "frank", "linda", "grace", "oleg", "dmitry")
CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark",
             "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Wonka", "Оазис", "Север", "华联")


@dataclass
class Instance:
    """One planned instance: its id once started, and for a parent whose
    payment starts a delivery, the child's record."""

    id: str | None = None
    child: Instance | None = None


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    act: Callable[[], None] = field(compare=False)


class Planner:
    """Plans every instance's steps (deterministic for a seed) and runs them in time order."""

    def __init__(self, seed: int, ctx: Any, notes_per_step: float) -> None:
        self.rng = random.Random(seed)
        self.ctx = ctx
        self.notes_per_step = notes_per_step
        self.queue: list[Step] = []
        self.order = 0
        self.instances = 0

    # -- planning helpers ------------------------------------------------------

    def later(self, at: datetime, low_min: int = 10, high_min: int = 18 * 60) -> datetime:
        return at + timedelta(minutes=self.rng.randint(low_min, high_min))

    def put(self, at: datetime, act: Callable[[], None]) -> None:
        if at < END:
            self.order += 1
            heapq.heappush(self.queue, Step(at, self.order, act))

    def start(self, at: datetime, inst: Instance, process: str, user: str,
              values: dict[str, Any], note: str | None = None) -> None:
        def act() -> None:
            step = runtime.start(process, values=values, note=note, as_user=user, now=at,
                                 **self.ctx)
            inst.id = step.instance.id

        self.instances += at < END
        self.put(at, act)

    def advance(self, at: datetime, inst: Instance, user: str, result: str,
                values: dict[str, Any] | None = None, comment: str | None = None,
                stage: str | None = None) -> datetime:
        def act() -> None:
            step = runtime.advance(_id(inst), result=result, values=values or {},
                                   comment=comment, as_user=user, now=at, stage=stage,
                                   **self.ctx)
            if inst.child is not None and step.instance.children:
                inst.child.id = step.instance.children[-1].instance_id

        self.put(at, act)
        return self.extras(at, inst, user)

    def task_done(self, at: datetime, inst: Instance, user: str, task: str) -> datetime:
        def act() -> None:
            runtime.task_done(_id(inst), task, as_user=user, now=at, **self.ctx)

        self.put(at, act)
        return at

    def extras(self, at: datetime, inst: Instance, user: str) -> datetime:
        """Notes and links people add between steps (on average ``notes_per_step``)."""
        count = int(self.notes_per_step) + (self.rng.random() < self.notes_per_step % 1)
        for _ in range(count):
            at = self.later(at, 1, 90)
            if self.rng.random() < 0.25:
                kind = self.rng.choice(("invoice", "order", "contract", "email"))
                ref = f"{kind[:3].upper()}-{self.rng.randint(1000, 99999)}"
                self.put(at, _bound(runtime.link, inst, user, at, self.ctx, kind=kind, ref=ref))
            else:
                text = self.rng.choice(NOTES)
                self.put(at, _bound(runtime.note, inst, user, at, self.ctx, text=text,
                                    append=True))
        return at

    def abandon_at(self, steps: int) -> int:
        """The step after which an abandoned instance stops (``steps``: never)."""
        return self.rng.randint(1, steps - 1) if self.rng.random() < ABANDONED else steps

    # -- the processes ---------------------------------------------------------

    def key_account(self, at: datetime) -> None:
        inst, rep = Instance(), self.rng.choice(REPS)
        stop = self.abandon_at(4)
        self.start(at, inst, KA, rep, {"owner": rep}, note=self._maybe_note())
        at = self.later(at)
        key = self.rng.random() < 0.6
        values = {"level": "key" if key else "normal",
                  "type": self.rng.choice(("retail", "wholesale", "online"))}
        at = self.advance(at, inst, rep, "done", values)
        if not key or stop <= 1:
            return
        if self.rng.random() < 0.15:  # sent back once
            at = self.advance(self.later(at), inst, "carol", "reject",
                              comment="Attach the customer's turnover")
            at = self.advance(self.later(at), inst, rep, "done", {"level": "key"})
        if stop <= 2:
            return
        at = self.advance(self.later(at), inst, "carol", "approve",
                          comment=self.rng.choice(("Strategic account", "OK", None)))
        if stop <= 3:
            return
        other = "bob" if rep == "alice" else "alice"
        self.advance(self.later(at), inst, "carol", "done", {"owner": other})

    def contract(self, at: datetime) -> None:
        inst, rep = Instance(), self.rng.choice(REPS)
        stop = self.abandon_at(6)
        amount = self.rng.choice((8000, 25000, 60000, 95000, 150000, 420000))
        score = self.rng.randint(40, 100)
        term = self.rng.choice((6, 12, 24, 36))
        values = {"customer": self.rng.choice(CUSTOMERS), "amount": amount,
                  "credit_score": score, "term_months": term}
        self.start(at, inst, CA, rep, {})
        at = self.later(at)
        if self.rng.random() < 0.04:
            self.advance(at, inst, rep, "withdraw", values)
            return
        at = self.advance(at, inst, rep, "submit", values)
        if stop <= 1:
            return
        if self.rng.random() < 0.2:
            at = self.advance(self.later(at), inst, "carol", "reject",
                              {"rejection_reason": "Payment terms too long"})
            at = self.advance(self.later(at), inst, rep, "submit", {"term_months": term})
        at = self.advance(self.later(at), inst, "carol", "approve")
        # the reviews run in parallel: frank may hold finance and the countersignature
        # at once, so each approval names its stage
        reviews = [(u, s) for u, s, needed in (("frank", "finance-review", score < 70),
                                                ("linda", "legal-review", term > 12)) if needed]
        for i, (reviewer, stage) in enumerate(reviews):
            if stop <= 2 + i:
                return
            at = self.advance(self.later(at), inst, reviewer, "approve", stage=stage)
        if amount > 100000 and stop > 4:
            at = self.advance(self.later(at), inst, "grace", "approve",
                              stage="executive-signature")
            self.advance(self.later(at), inst, "frank", "approve", stage="executive-signature")

    def recovery(self, at: datetime) -> None:
        child = Instance()
        inst, rep = Instance(child=child), self.rng.choice(REPS)
        stop = self.abandon_at(5)
        self.start(at, inst, LCR, rep, {"owner": rep, "customer": self.rng.choice(CUSTOMERS)})
        for round_ in range(2):
            at = self.later(at, 30, 2 * 24 * 60)
            if self.rng.random() < 0.15:
                self.advance(at, inst, rep, "unreachable")
                return
            at = self.advance(at, inst, rep, "reached")
            if stop <= 1:
                return
            reason = self.rng.choice(("price", "service", "competitor", "moved", "other"))
            at = self.advance(self.later(at), inst, rep, "done", {"reason": reason})
            entered = at
            at = self.task_done(self.later(at), inst, rep, "check-prices")
            if self.rng.random() < 0.7:  # the delayed task appears at the next hourly tick
                at = self.task_done(max(at, entered + timedelta(hours=2)) + timedelta(
                    minutes=self.rng.randint(5, 240)), inst, "carol", "ask-manager")
            if stop <= 2:
                return
            choice = self.rng.random()
            offer = {"offer_amount": self.rng.randint(5, 200) * 100}
            if choice < 0.12 and round_ == 0:
                at = self.advance(self.later(at), inst, rep, "wants-time", offer)
                at = at + timedelta(days=30, hours=2)  # woken by tick after 30 days
                continue
            if choice < 0.35:
                self.advance(self.later(at), inst, rep, "declined", offer)
                return
            at = self.advance(self.later(at), inst, rep, "accepted", offer)
            break
        else:
            return
        if stop <= 3:
            return
        at = self.later(at)
        if self.rng.random() < 0.1:
            self.advance(at, inst, "frank", "unpaid")
            return
        ship = (at + timedelta(days=self.rng.randint(1, 5))).date()
        self.advance(at, inst, "frank", "paid", {
            "order_ref": f"SO-{self.rng.randint(10000, 99999)}",
            "delivery_address": self.rng.choice(("Omsk", "Tver", "Kazan", "Shanghai")),
            "ship_date": ship.isoformat(),
        })
        self.instances += at < END  # the child, started by that step
        if stop > 4:
            self.delivery(at, child, ship_day=ship)

    def delivery(self, at: datetime, inst: Instance, ship_day: Any) -> None:
        clerk = self.rng.choice(LOGISTICS)
        at = self.advance(self.later(at, 30, 8 * 60), inst, clerk, "done",
                          {"carrier": self.rng.choice(("own-fleet", "courier", "post"))})
        woken = datetime(ship_day.year, ship_day.month, ship_day.day, tzinfo=UTC)
        at = self.advance(max(at, woken) + timedelta(hours=1, minutes=self.rng.randint(5, 600)),
                          inst, clerk, "shipped",
                          {"tracking_number": f"TRK{self.rng.randint(10**8, 10**9)}"})
        self.advance(self.later(at, 60, 3 * 24 * 60), inst, clerk, "delivered")

    def own_delivery(self, at: datetime) -> None:
        inst = Instance()
        ship = (at + timedelta(days=self.rng.randint(1, 4))).date()
        self.start(at, inst, GD, self.rng.choice(LOGISTICS), {
            "order_ref": f"SO-{self.rng.randint(10000, 99999)}", "address": "Tver",
            "ship_date": ship.isoformat(),
        })
        self.delivery(at, inst, ship_day=ship)

    def _maybe_note(self) -> str | None:
        return self.rng.choice(NOTES) if self.rng.random() < 0.3 else None

    # -- the year --------------------------------------------------------------

    def plan(self, instances: int) -> None:
        kinds = (self.key_account, self.contract, self.recovery, self.own_delivery)
        weights = (0.4, 0.35, 0.2, 0.05)
        spacing = DAYS * 24 * 3600 / instances
        moment = START
        while self.instances < instances:
            moment += timedelta(seconds=self.rng.expovariate(1 / spacing))
            self.rng.choices(kinds, weights)[0](moment)
        hour = START
        while hour < END:
            hour += timedelta(hours=1)
            self.put(hour, _tick(hour, self.ctx))
        for day in range(DAYS):  # people read their notifications once a day
            for user in READERS:
                at = START + timedelta(days=day, hours=self.rng.randint(8, 18))
                self.put(at, _bound_read(user, at, self.ctx))

    def run(self, progress: Callable[[int, int], None]) -> None:
        total = len(self.queue)
        done = 0
        while self.queue:
            heapq.heappop(self.queue).act()
            done += 1
            if done % 20000 == 0:
                progress(done, total)


NOTES = (
    "Called the customer, waiting for their documents",
    "Customer asked for a discount",
    "Sent the draft by email",
    "Meeting scheduled for next week",
    "Клиент просит перезвонить",
    "客户要求提供发票",
    "Checked with finance",
)


def _id(inst: Instance) -> str:
    if inst.id is None:
        raise RuntimeError("a step came before its instance was started")
    return inst.id


def _bound(fn: Callable[..., Any], inst: Instance, user: str, at: datetime, ctx: Any,
           **kwargs: Any) -> Callable[[], None]:
    def act() -> None:
        fn(_id(inst), as_user=user, now=at, **kwargs, **ctx)

    return act


def _bound_read(user: str, at: datetime, ctx: Any) -> Callable[[], None]:
    def act() -> None:
        timework.mark_read(as_user=user, now=at, **ctx)

    return act


def _tick(hour: datetime, ctx: Any) -> Callable[[], None]:
    def act() -> None:
        store: SqliteStore = ctx["store"]
        if store.due_timers(hour.isoformat().replace("+00:00", "Z"), limit=1):
            timework.tick(now=hour, deliver=False, store=store, processes_dir=PROCESSES)

    return act


def build(db: str, instances: int, seed: int, notes_per_step: float) -> dict[str, Any]:
    started = time.perf_counter()
    store = SqliteStore.open(db, durable=False)
    try:
        with runtime.session(store=store, processes_dir=PROCESSES) as ctx:
            planner = Planner(seed, ctx, notes_per_step)
            planner.plan(instances)

            def progress(done: int, total: int) -> None:
                print(f"  {done}/{total} steps, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr, flush=True)

            planner.run(progress)
        conn_stats = _counts(db)
    finally:
        store.close()
    return {**conn_stats, "seconds": round(time.perf_counter() - started, 1)}


def _counts(db: str) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        entries = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
        by_status = dict(conn.execute(
            "SELECT status, count(*) FROM instances GROUP BY status").fetchall())
        return {"entries": entries, "instances": sum(by_status.values()), "status": by_status}
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--instances", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--notes-per-step", type=float, default=1.85)
    args = ap.parse_args()
    if os.path.exists(args.db):
        raise SystemExit(f"gen_journal: {args.db} exists; remove it first")
    import json

    print(json.dumps(build(args.db, args.instances, args.seed, args.notes_per_step)))


if __name__ == "__main__":
    main()

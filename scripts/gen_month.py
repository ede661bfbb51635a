"""A month of contract approvals, for docs/analytics.md and the analytics tests.

    python scripts/gen_month.py DB [--contracts 80] [--seed 3]

Every step goes through flowctl's Python API (start, begin, advance, tick as
cron would run it every hour), on a fake clock, in time order, with the people
of processes/org.yaml: the sales reps (alice, bob) submit, carol reviews,
frank reviews credit, linda reviews terms, grace and frank countersign large
contracts. Frank is the slow one (he works on finance reviews a day or more
after they arrive), which the report should find; one contract in five is sent
back by carol and submitted again. The contracts started in the last days are
still in flight at the end. Deterministic for a seed. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flowctl.api import instances as runtime
from flowctl.api import timers as timework

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROCESSES = os.path.join(ROOT, "processes")
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Оазис", "华联")


class Month:
    def __init__(self, db: str, seed: int) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.ids: dict[int, str] = {}

    def put(self, at: datetime, act: Callable[[], None]) -> None:
        if at < END:
            heapq.heappush(self.queue, (at, next(self.order), act))

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(hours=self.rng.uniform(low, high))

    def step(self, n: int, at: datetime, user: str, result: str | None,
             values: dict[str, Any] | None = None, begin: bool = False,
             stage: str | None = None) -> None:
        """``stage``: which of the reviews running at the same time (frank holds two)."""
        def act() -> None:
            if begin:
                runtime.begin(self.ids[n], stage=stage, as_user=user, now=at, db=self.db,
                              processes_dir=PROCESSES)
                return
            runtime.advance(self.ids[n], result=result, values=values or {}, as_user=user,
                            stage=stage, now=at, db=self.db, processes_dir=PROCESSES)

        self.put(at, act)

    def contract(self, n: int, at: datetime) -> None:
        rep = self.rng.choice(("alice", "bob"))
        amount = self.rng.choice((8000, 25000, 60000, 95000, 150000, 420000))
        score = self.rng.randint(40, 100)
        term = self.rng.choice((6, 12, 24, 36))
        values = {"customer": self.rng.choice(CUSTOMERS), "amount": amount,
                  "credit_score": score, "term_months": term}

        def start(at: datetime = at) -> None:  # the time now, not the last step's
            step = runtime.start("contract-approval", as_user=rep, now=at, db=self.db,
                                 processes_dir=PROCESSES)
            self.ids[n] = step.instance.id

        self.put(at, start)
        at += self.hours(0.5, 6)
        self.step(n, at, rep, "submit", values)
        if self.rng.random() < 0.2:  # carol sends it back once
            at += self.hours(2, 10)
            self.step(n, at, "carol", "reject", {"rejection_reason": "Payment terms too long"})
            at += self.hours(4, 30)
            self.step(n, at, rep, "submit", {"term_months": term})
        at += self.hours(1, 8)
        self.step(n, at, "carol", "approve")
        if score < 70:  # frank takes a day or more before he begins
            at += self.hours(20, 70)
            self.step(n, at, "frank", None, begin=True, stage="finance-review")
            at += self.hours(1, 6)
            self.step(n, at, "frank", "approve", stage="finance-review")
        if term > 12:
            at += self.hours(2, 9)
            self.step(n, at, "linda", None, begin=True)
            at += self.hours(0.5, 3)
            self.step(n, at, "linda", "approve")
        if amount > 100000:
            at += self.hours(2, 12)
            self.step(n, at, "grace", "approve")
            at += self.hours(1, 10)
            self.step(n, at, "frank", "approve", stage="executive-signature")

    def plan(self, contracts: int) -> None:
        span = (END - START - timedelta(days=1)).total_seconds()
        for n in range(contracts):
            self.contract(n, START + timedelta(seconds=span * n / contracts))
        hour = START
        while hour < END:
            hour += timedelta(hours=1)
            self.put(hour, self.tick(hour))

    def tick(self, hour: datetime) -> Callable[[], None]:
        def act() -> None:
            timework.tick(now=hour, deliver=False, db=self.db, processes_dir=PROCESSES)

        return act

    def run(self) -> None:
        while self.queue:
            heapq.heappop(self.queue)[2]()


def build(db: str, contracts: int, seed: int) -> dict[str, Any]:
    month = Month(db, seed)
    month.plan(contracts)
    month.run()
    return {"db": db, "contracts": len(month.ids), "from": START.isoformat(),
            "until": END.isoformat()}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--contracts", type=int, default=80)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    if os.path.exists(args.db):
        raise SystemExit(f"gen_month: {args.db} exists; remove it first")
    print(json.dumps(build(args.db, args.contracts, args.seed)))


if __name__ == "__main__":
    main()

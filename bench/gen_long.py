"""The heat-map row's store: a copy of the year of work with a 30-stage process in it.

    python bench/gen_long.py YEAR_DB DB FOLDER [--instances 1000]

Writes ``FOLDER/long-approval.yaml`` (30 stages in three phases: 24 tasks and
approvals in a line, each approval able to send the work back two stages,
three decisions and three ends) beside a copy of processes/org.yaml, copies
``YEAR_DB`` to ``DB`` and runs ``--instances`` instances of the process in it
through flowctl's Python API over the same year, each as far as it gets
(most to an end, some sent back, some still in flight). Deterministic.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from datetime import UTC, datetime, timedelta

from flowctl.api import instances as runtime
from flowctl.store.sqlite import SqliteStore

HERE = os.path.dirname(os.path.abspath(__file__))
ORG = os.path.join(os.path.dirname(HERE), "processes", "org.yaml")
START = datetime(2025, 11, 23, 0, 0, tzinfo=UTC)
PEOPLE = ("alice", "bob")
APPROVERS = ("carol", "frank", "linda")
ROLES = {"carol": "sales-manager", "frank": "finance-reviewer", "linda": "legal-reviewer"}


def definition() -> tuple[str, list[tuple[str, str]]]:
    """The YAML text, and the (stage id, kind) of the line of work."""
    line: list[tuple[str, str]] = []
    out = ["kind: process", "id: long-approval", "name: Long approval",
           "starters:", "  roles: [sales-rep]",
           "phases:", "  - id: one", "    name: Preparation", "  - id: two",
           "    name: Review", "  - id: three", "    name: Signature", "stages:"]
    n = 24
    for i in range(n):
        sid = f"step-{i + 1:02d}"
        kind = "approval" if i % 3 == 2 else "task"
        line.append((sid, kind))
    ids = [s for s, _ in line]
    for i, (sid, kind) in enumerate(line):
        phase = ("one", "two", "three")[i * 3 // n]
        nxt = ids[i + 1] if i + 1 < n else "final-check"
        if i in (7, 15):
            nxt = f"check-{i + 1:02d}"
        out += [f"  - id: {sid}", f"    kind: {kind}", f"    name: Step {i + 1}",
                f"    phase: {phase}"]
        if i == 0:
            out += ["    start: true", "    fields:", "      required: [amount]"]
        if kind == "task":
            out += ["    assignee: initiator", "    results:", f"      done: {nxt}"]
            if i == 0:
                out.append("      withdraw: withdrawn")
        else:
            who = APPROVERS[i % 3]
            out += ["    approvers:", f"      - role: {ROLES[who]}", "    results:",
                    f"      approve: {nxt}", f"      reject: {ids[max(0, i - 2)]}",
                    "    sla:", "      within: 2d", "      escalations:",
                    "        - after: 1d", "          action: remind"]
    for at in (7, 15):
        check, after = f"check-{at + 1:02d}", ids[at + 1]
        out += [f"  - id: {check}", "    kind: decision", f"    name: Check {at + 1}",
                "    branches:", "      - when: record.amount > 50000", f"        to: {after}",
                "    default: " + ("declined" if at == 15 else after)]
    out += ["  - id: final-check", "    kind: decision", "    name: Final check",
            "    branches:", "      - when: record.amount > 0", "        to: done",
            "    default: declined"]
    out += ["  - id: done", "    kind: end", "    name: Done", "    outcome: approved",
            "  - id: declined", "    kind: end", "    name: Declined", "    outcome: rejected",
            "  - id: withdrawn", "    kind: end", "    name: Withdrawn", "    outcome: cancelled"]
    out += ["fields:", "  amount:", "    type: number"]
    return "\n".join(out) + "\n", line


def build(year_db: str, db: str, folder: str, instances: int) -> dict[str, int]:
    text, line = definition()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "long-approval.yaml"), "w", encoding="utf-8") as fh:
        fh.write(text)
    shutil.copyfile(ORG, os.path.join(folder, "org.yaml"))
    shutil.copyfile(year_db, db)
    rng = random.Random(11)
    store = SqliteStore.open(db, durable=False)
    steps = 0
    try:
        with runtime.session(store=store, processes_dir=folder) as ctx:
            for k in range(instances):
                at = START + timedelta(minutes=k * 500)
                rep = rng.choice(PEOPLE)
                amount = rng.choice((20000, 80000, 150000))
                step = runtime.start("long-approval", as_user=rep, now=at, **ctx)
                iid = step.instance.id
                stop = rng.randint(10, 80)
                for _ in range(stop):
                    inst = step.instance
                    if inst.stage is None:
                        break
                    kind = dict(line).get(inst.stage, "task")
                    at += timedelta(minutes=rng.randint(20, 60 * (30 if kind == "approval"
                                                                   else 8)))
                    if kind == "approval":
                        who = APPROVERS[[s for s, _ in line].index(inst.stage) % 3]
                        result = "reject" if rng.random() < 0.08 else "approve"
                        step = runtime.advance(iid, result=result, as_user=who, now=at, **ctx)
                    else:
                        values = {"amount": amount} if inst.stage == "step-01" else {}
                        step = runtime.advance(iid, result="done", values=values, as_user=rep,
                                               now=at, **ctx)
                    steps += 1
    finally:
        store.close()
    return {"instances": instances, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("year_db")
    ap.add_argument("db")
    ap.add_argument("folder")
    ap.add_argument("--instances", type=int, default=1000)
    args = ap.parse_args()
    import json

    json.dump(build(args.year_db, args.db, args.folder, args.instances), sys.stdout)
    print()


if __name__ == "__main__":
    main()

"""Realistic process definitions for the benchmarks, generated from a seed.

Each definition has 25-35 stages in phases: tasks (some with tasks and events
on entering), approvals with SLAs in business hours and escalations,
decisions with conditions over typed fields, pauses, and now and then a
subprocess stage that starts one of the first few definitions. About 500
lines each. Every generated set, with the org directory written beside it,
lints clean with ``flowctl lint`` and is valid against
``schemas/process.schema.json``.

    python bench/generate.py DEST --count 1000 [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field

CHILDREN = 3  # the first definitions are started as subprocesses by others
ENDS = ("approved", "rejected", "withdrawn")
DEPARTMENTS = ("company", "sales", "finance", "legal", "logistics", "support")
ROLES = ("sales-rep", "sales-manager", "finance-reviewer", "legal-reviewer",
         "general-manager", "logistics", "support-agent")
USERS = (("grace", "company", "general-manager"), ("carol", "sales", "sales-manager"),
         ("alice", "sales", "sales-rep"), ("bob", "sales", "sales-rep"),
         ("frank", "finance", "finance-reviewer"), ("linda", "legal", "legal-reviewer"),
         ("oleg", "logistics", "logistics"), ("dmitry", "logistics", "logistics"),
         ("mei", "support", "support-agent"), ("ivan", "support", "support-agent"))
HEADS = {"company": "grace", "sales": "carol", "finance": "frank", "legal": "linda",
         "logistics": "oleg", "support": "mei"}
SUBJECTS = ("contract", "customer", "order", "invoice", "claim", "supplier")
VERBS = ("Review", "Check", "Prepare", "Confirm", "Update", "Collect", "Verify", "Record")
NOUNS = ("documents", "pricing", "terms", "delivery plan", "credit limit", "customer data",
         "discount", "payment schedule", "warranty", "contacts")
PHASES = (("intake", "Приём заявки (Intake)"), ("assessment", "评估 Assessment"),
          ("review", "Review"), ("agreement", "Соглашение (Agreement)"),
          ("fulfilment", "Fulfilment"), ("closing", "结案 Closing"))

FIELDS = """\
fields:
  customer:
    type: string
    label: Customer
  amount:
    type: number
    label: Amount
    minimum: 0
  credit_score:
    type: integer
    label: Credit score
    minimum: 0
    maximum: 100
  term_months:
    type: integer
    label: Term (months)
    minimum: 1
  level:
    type: enum
    values: [normal, key, strategic]
    label: Customer level
  region:
    type: enum
    values: [north, south, east, west]
    label: Region
  priority:
    type: enum
    values: [low, medium, high]
    label: Priority
  vip:
    type: boolean
    label: VIP customer
  due_date:
    type: date
    label: Due date
  discount:
    type: number
    label: Discount (%)
    minimum: 0
    maximum: 50
  owner:
    type: user
    label: Owner
  reviewer:
    type: user
    label: Reviewer
  note:
    type: text
    label: Note
  rejection_reason:
    type: text
    label: Reason for sending back
"""

CONDITIONS = (
    "record.amount > {n}000",
    "record.credit_score < {m} and record.term_months > 12",
    'record.level == "key"',
    'record.level in ["key", "strategic"]',
    'record.region in ["north", "east"]',
    "record.vip or record.amount >= {n}0000",
    "0 < record.term_months <= {d}",
    'record.priority != "low" and not record.vip',
    'record.due_date >= "2026-01-31"',
    "record.amount * 1.2 > {n}5000",
    "not (record.customer == null) and record.credit_score >= {m}",
)


@dataclass
class Stage:
    id: str
    kind: str
    lines: list[str] = field(default_factory=list)


class Builder:
    """Stages of one definition, chained so that every stage is reachable."""

    def __init__(self, rng: random.Random, index: int, count: int) -> None:
        self.rng = rng
        self.index = index
        self.count = count  # stages before the three end stages
        self.kinds = self._plan()

    def _plan(self) -> list[str]:
        kinds = ["start"]
        pool = ["task"] * 5 + ["approval"] * 4 + ["decision"] * 3 + ["wait"]
        while len(kinds) < self.count - 1:
            k = self.rng.choice(pool)
            if k == "decision" and kinds[-1] == "decision":
                k = "task"
            kinds.append(k)
        kinds.append("approval")  # the final sign-off; rejection ends the process
        if self.index >= CHILDREN and self.index % 5 == 0:
            kinds[len(kinds) // 2] = "subprocess"
        return kinds

    def stage_id(self, i: int) -> str:
        if i >= len(self.kinds):
            return ENDS[0]
        return f"{self.kinds[i]}-{i + 1:02d}" if i else "submit"

    def phase(self, i: int) -> str:
        return PHASES[min(i * len(PHASES) // len(self.kinds), len(PHASES) - 1)][0]

    def assignee(self, indent: str) -> list[str]:
        r = self.rng.randrange(6)
        if r == 0:
            return [f"{indent}assignee:", f"{indent}  role: {self.rng.choice(ROLES)}"]
        if r == 1:
            return [f"{indent}assignee:", f"{indent}  field: owner"]
        if r == 2:
            return [f"{indent}assignee:", f"{indent}  user: {self.rng.choice(USERS)[0]}"]
        if r == 3:
            return [f"{indent}assignee:", f"{indent}  department: "
                    f"{self.rng.choice(DEPARTMENTS)}"]
        if r == 4:
            return [f"{indent}assignee:", f"{indent}  relation: department-head",
                    f"{indent}  of: owner"]
        return [f"{indent}assignee:", f"{indent}  field: reviewer"]

    def header(self, i: int, name: str) -> list[str]:
        kind = "task" if self.kinds[i] == "start" else self.kinds[i]
        out = [f"  - id: {self.stage_id(i)}", f"    kind: {kind}"]
        if i == 0:
            out.append("    start: true")
        out += [f"    name: {name}", f"    phase: {self.phase(i)}"]
        return out

    def sla(self, *, business: bool, reject: bool) -> list[str]:
        hours = self.rng.choice((24, 48, 72))
        out = ["    sla:", f"      within: {hours}h"]
        if business:
            out.append("      business_hours: true")
        out += ["      escalations:", f"        - after: {hours // 2}h", "          action: remind"]
        if reject:
            out += [f"        - after: {hours}h", "          action: result",
                    "          result: reject"]
        else:
            out += [f"        - after: {hours}h", "          action: reassign", "          to:",
                    "            relation: manager", "            of: assignee"]
        return out

    def build(self, i: int) -> list[str]:
        make: Callable[[int], list[str]] = getattr(self, f"_{self.kinds[i]}")
        return make(i)

    def _start(self, i: int) -> list[str]:
        return [*self.header(i, "Submit the request"), "    assignee: initiator",
                "    description: >-",
                "      The initiator fills in the request and the customer's details;",
                "      everything after this runs on the record entered here.",
                "    fields:", "      required: [customer, amount, credit_score, term_months]",
                "      optional: [level, region, priority, vip, due_date, note]",
                "    results:", f"      submit: {self.stage_id(i + 1)}",
                "      withdraw: withdrawn"]

    def _task(self, i: int) -> list[str]:
        rng = self.rng
        name = f"{rng.choice(VERBS)} {rng.choice(NOUNS)}"
        out = [*self.header(i, name), *self.assignee("    "), "    fields:",
               f"      required: [{rng.choice(('owner', 'reviewer', 'discount'))}]",
               "      optional: [note]"]
        if rng.random() < 0.25:
            first = rng.choice(("prepare", "ask"))
            out += ["    on_enter:", "      tasks:", f"        - id: {first}",
                    f"          name: {rng.choice(VERBS)} the {rng.choice(NOUNS)} first",
                    "          blocking: true", "        - id: follow-up",
                    "          name: Follow up with the customer",
                    *self.assignee("          "), "          delay: 2h",
                    "      events:", "        - type: work-started",
                    "          comment: Work on the stage started"]
        out += ["    results:", f"      done: {self.stage_id(i + 1)}"]
        if i > 1 and rng.random() < 0.5:
            out.append(f"      back: {self.stage_id(rng.randrange(1, i))}")
        if rng.random() < 0.35:
            out += self.sla(business=False, reject=False)
        return out

    def _approval(self, i: int) -> list[str]:
        rng = self.rng
        last = i == len(self.kinds) - 1
        two = rng.random() < 0.3
        approvers = ["      - role: " + rng.choice(ROLES)]
        if two:
            approvers.append("      - department: " + rng.choice(DEPARTMENTS))
        reject = ("      reject: rejected" if last else
                  "      reject:\n        to: submit\n        label: Send back\n"
                  "        fields:\n          required: [rejection_reason]")
        return [*self.header(i, f"{rng.choice(VERBS)} and approve the {rng.choice(NOUNS)}"),
                "    approvers:", *approvers, f"    policy: {'all' if two else 'any'}",
                "    results:", f"      approve: {self.stage_id(i + 1)}", *reject.split("\n"),
                *self.sla(business=True, reject=rng.random() < 0.3)]

    def _decision(self, i: int) -> list[str]:
        rng = self.rng
        out = [*self.header(i, f"{rng.choice(NOUNS).capitalize()} needed?"), "    branches:"]
        targets = [j for j in (i + 2, i + 3) if j < len(self.kinds)]
        for j in targets[: rng.randint(1, 2)] or [len(self.kinds)]:
            cond = rng.choice(CONDITIONS).format(n=rng.randint(1, 9), m=rng.randint(30, 80),
                                                 d=rng.randint(5, 30))
            out += [f"      - when: {cond}", f"        to: {self.stage_id(j)}"]
        out.append(f"    default: {self.stage_id(i + 1)}")
        return out

    def _wait(self, i: int) -> list[str]:
        return [*self.header(i, "Cooling-off period"), f"    for: {self.rng.randint(1, 14)}d",
                f"    next: {self.stage_id(i + 1)}"]

    def _subprocess(self, i: int) -> list[str]:
        child = process_id(self.index % CHILDREN)
        return [*self.header(i, "Run the child process"), f"    process: {child}",
                "    inputs:", "      customer: customer", "      amount: amount",
                "    results:", f"      approved: {self.stage_id(i + 1)}",
                "      rejected: rejected", "      withdrawn: withdrawn"]


def process_id(index: int) -> str:
    return f"process-{index + 1:04d}"


def generate_process(index: int, seed: int = 7, *, stages: int | None = None) -> str:
    """The text of definition number ``index`` (0-based); ``stages`` overrides the
    usual 25-35 (a large one has many long-range edges: "back" results)."""
    rng = random.Random(seed * 1_000_003 + index)
    count = rng.randint(22, 32)
    b = Builder(rng, index, count if stages is None else max(4, stages - len(ENDS)))
    subject = rng.choice(SUBJECTS)
    lines = [
        "# yaml-language-server: $schema=../schemas/process.schema.json",
        "kind: process",
        f"id: {process_id(index)}",
        f"name: Процесс {index + 1} — {subject} handling {index + 1}",
        "description: >-",
        f"  Generated definition {index + 1}: a {subject} goes through intake,",
        "  assessment, reviews by sales, finance and legal, a final sign-off and",
        "  fulfilment. Approvers are reminded and escalated in business hours.",
        f"subject: {subject}",
        "starters:",
        f"  roles: [{', '.join(rng.sample(ROLES, 2))}]",
        "  departments: [sales]",
        "calendar:",
        f"  timezone: {rng.choice(('Europe/Moscow', 'Asia/Shanghai', 'UTC'))}",
        "  workdays: [mon, tue, wed, thu, fri]",
        '  hours: "09:00-18:00"',
        '  holidays: ["2026-12-31", "2027-01-01", "2027-01-07"]',
        *FIELDS.splitlines(),
        "phases:",
    ]
    for pid, name in PHASES:
        lines += [f"  - id: {pid}", f"    name: {name}"]
    lines.append("stages:")
    for i in range(len(b.kinds)):
        lines += b.build(i)
    outcomes = {"approved": "approved", "rejected": "rejected", "withdrawn": "cancelled"}
    for end in ENDS:
        lines += [f"  - id: {end}", "    kind: end", f"    name: {end.capitalize()}",
                  "    phase: closing", f"    outcome: {outcomes[end]}"]
    return "\n".join(lines) + "\n"


def generate_org() -> str:
    lines = ["# yaml-language-server: $schema=../schemas/org.schema.json", "kind: org",
             "departments:"]
    for d in DEPARTMENTS:
        lines += [f"  - id: {d}", f"    name: {d.capitalize()}", f"    head: {HEADS[d]}"]
        if d != "company":
            lines.append("    parent: company")
    lines.append("users:")
    for uid, dept, role in USERS:
        lines += [f"  - id: {uid}", f"    name: {uid.capitalize()}", f"    department: {dept}",
                  f"    roles: [{role}]"]
    lines.append("roles:")
    for r in ROLES:
        lines += [f"  - id: {r}", f"    name: {r.replace('-', ' ').capitalize()}"]
    return "\n".join(lines) + "\n"


def write_set(dest: str, count: int, seed: int = 7) -> list[str]:
    """Write ``count`` definitions and ``org.yaml`` into ``dest``; the definitions' paths."""
    os.makedirs(dest, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(dest, f"{process_id(i)}.yaml")
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(generate_process(i, seed))
        paths.append(path)
    with open(os.path.join(dest, "org.yaml"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(generate_org())
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    write_set(args.dest, args.count, args.seed)


if __name__ == "__main__":
    main()

"""Benchmark row 10's inputs: scenarios of generated definitions, and the same
processes as BPMN for SpiffWorkflow.

    bench/.venv-flowctl/bin/python bench/gen_scenarios.py DEFS DEST --count 200

The definitions are those of bench/generate.py, copied into ``DEST/defs``
with one change: the start stage may also set ``owner`` and ``reviewer``
(later stages are assigned by them, and nothing else sets them before).
For each of the first of them that starts no subprocess, up to ``count``:
one instance is driven from its
start to its end through the flowctl API on a store in memory, the way
people would (each stage's first forward result, as a user who may report
it, with the fields the stage requires; blocking tasks done first; the
clock moved past each wait), and every step is written down as a scenario
(``DEST/scenarios/<process>.yaml``, with the stage expected after each
step). The same definition is written as BPMN (``DEST/bpmn/<process>.bpmn``:
a user task per person stage, one per approver of an all-must-approve
approval and one per blocking task, an exclusive gateway per decision with
its condition in Python, a user task per wait) and the path as the user
tasks SpiffWorkflow will meet with the data each reports
(``DEST/paths.json``). Prints one JSON line: ``{"scenarios": N}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from flowctl import engine
from flowctl.api import instances as runtime
from flowctl.api.instances import Loaded, from_row, org_directory
from flowctl.api.timers import tick
from flowctl.errors import FlowctlError
from flowctl.model import ApprovalPolicy, Process, Stage, StageKind
from flowctl.store.sqlite import SqliteStore

CLOCK = "2026-01-05T09:00:00Z"
START_FIELDS = {"customer": "Acme", "amount": 25000, "credit_score": 60, "term_months": 18,
                "level": "key", "region": "north", "priority": "high", "vip": False,
                "due_date": "2026-02-15", "owner": "carol", "reviewer": "frank"}
STAGE_FIELDS = {"owner": "carol", "reviewer": "frank", "discount": 10}
FORWARD = ("submit", "done", "approve")


def _users(principals: tuple[str, ...], org: Any) -> list[str]:
    return engine.users_of(principals, org)


class Driver:
    def __init__(self, process: Process, loaded: Loaded) -> None:
        self.process = process
        self.loaded = loaded
        self.store = SqliteStore.open(":memory:")
        self.now = engine.parse_time(CLOCK)
        self.steps: list[dict[str, Any]] = []
        self.path: list[tuple[str, dict[str, Any]]] = []  # (BPMN user task, data)

    def ctx(self, user: str) -> dict[str, Any]:
        return {"as_user": user, "store": self.store, "loaded": self.loaded, "now": self.now,
                "identity": "trust"}

    def instance(self, iid: str) -> engine.Instance:
        row = self.store.get_instance(iid)
        assert row is not None
        return from_row(row)

    def expect(self, iid: str) -> dict[str, Any]:
        inst = self.instance(iid)
        return {"stage": inst.stage or inst.last_stage, "status": inst.status}

    def run(self) -> bool:
        starter = "alice"
        step = runtime.start(self.process.id, values=dict(START_FIELDS), **self.ctx(starter))
        iid = step.instance.id
        self.steps.append({"start": {"as": starter, "fields": dict(START_FIELDS)},
                           "expect": self.expect(iid)})
        for _ in range(200):
            inst = self.instance(iid)
            if inst.finished:
                return inst.status == engine.COMPLETED
            stage = self.process.stage(inst.stage or "")
            assert stage is not None
            if stage.kind is StageKind.WAIT:
                wake = engine.parse_time(inst.wake_at or CLOCK)
                gap = wake - self.now + timedelta(minutes=1)
                minutes = max(1, int(gap.total_seconds() // 60) + 1)
                self.now += timedelta(minutes=minutes)
                tick(now=self.now, store=self.store, deliver=False,
                     org=self.loaded.org_path, processes_dir=self.loaded.processes_dir)
                self.steps.append({"after": f"{minutes}m", "expect": self.expect(iid)})
                self.path.append((stage.id, {}))
                continue
            for task in inst.tasks:
                if task.blocking and task.status == engine.TASK_OPEN:
                    who = _users((task.assignee,), self.loaded.org)[0]
                    runtime.task_done(iid, task.id, **self.ctx(who))
                    self.steps.append({"task_done": {"as": who, "task": task.id}})
                    self.path.append((f"{stage.id}--{task.id}", {}))
            if not self.act(iid, inst, stage):
                return False
        return False

    def act(self, iid: str, inst: engine.Instance, stage: Stage) -> bool:
        result = next(r for r in stage.results if r.name in FORWARD)
        fields = {n: STAGE_FIELDS[n] for n in (*stage.required_fields, *result.required)
                  if n in STAGE_FIELDS}
        votes = 0
        for who in _users(inst.assignees, self.loaded.org):
            try:
                runtime.advance(iid, result=result.name, values=fields, **self.ctx(who))
            except FlowctlError:
                continue  # not this one (excluded, or voted already)
            action: dict[str, Any] = {"as": who, "result": result.name}
            if fields:
                action["fields"] = dict(fields)
            self.steps.append({"act": action, "expect": self.expect(iid)})
            votes += 1
            name = stage.id if votes == 1 or not self.countersign(stage) \
                else f"{stage.id}--{votes}"
            self.path.append((name, {"result": result.name, **fields}))
            after = self.instance(iid)
            if after.stage != stage.id or after.version == inst.version:
                return True
            inst = after
            if not self.countersign(stage):
                return True
        return votes > 0

    @staticmethod
    def countersign(stage: Stage) -> bool:
        return stage.kind is StageKind.APPROVAL and stage.policy is ApprovalPolicy.ALL \
            and len(stage.approvers) > 1


# ---------------------------------------------------------------- BPMN


def _python(condition: str) -> str:
    """A condition of the language as the Python SpiffWorkflow evaluates."""
    text = condition.replace("record.", "")
    return re.sub(r"\bnull\b", "None", text)


class _Bpmn:
    """The elements and sequence flows of one process as BPMN."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.nodes: list[str] = []
        self.flows: list[str] = []

    def flow(self, source: str, target: str, condition: str | None = None) -> None:
        fid = f"f{len(self.flows) + 1}"
        body = ""
        if condition is not None:
            body = (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
                    f"{escape(condition)}</bpmn:conditionExpression>")
        self.flows.append(f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" '
                          f'targetRef="{target}">{body}</bpmn:sequenceFlow>')

    def entry(self, stage_id: str) -> str:
        """The element an arrow into a stage points at (its first blocking task)."""
        stage = self.process.stage(stage_id)
        assert stage is not None
        blocking = [t for t in stage.tasks if t.blocking]
        return f"{stage_id}--{blocking[0].id}" if blocking else stage_id

    def user_task(self, element: str, name: str) -> None:
        self.nodes.append(f'<bpmn:userTask id="{element}" name={quoteattr(name)} />')

    def results(self, source: str, stage: Stage, approve_to: str | None = None) -> None:
        gw = f"{source}--gw"
        self.nodes.append(f'<bpmn:exclusiveGateway id="{gw}" />')
        self.flow(source, gw)
        for r in stage.results:
            target = approve_to if approve_to is not None and r.name == "approve" \
                else self.entry(r.to)
            self.flow(gw, target, f'result == "{r.name}"')

    def tasks_before(self, stage: Stage) -> None:
        """A user task per blocking task, in order, before the stage's own."""
        blocking = [t for t in stage.tasks if t.blocking]
        for i, t in enumerate(blocking):
            element = f"{stage.id}--{t.id}"
            self.user_task(element, t.name)
            self.flow(element, f"{stage.id}--{blocking[i + 1].id}" if i + 1 < len(blocking)
                      else stage.id)

    def stage(self, stage: Stage) -> None:
        sid = stage.id
        self.tasks_before(stage)
        if stage.kind is StageKind.END:
            self.nodes.append(f'<bpmn:endEvent id="{sid}" />')
        elif stage.kind is StageKind.DECISION:
            self.nodes.append(f'<bpmn:exclusiveGateway id="{sid}" default="{sid}--default" />')
            for b in stage.branches:
                self.flow(sid, self.entry(b.to), _python(b.when))
            self.flows.append(f'<bpmn:sequenceFlow id="{sid}--default" sourceRef="{sid}" '
                              f'targetRef="{self.entry(stage.default or "")}" />')
        elif stage.kind is StageKind.WAIT:
            self.user_task(sid, stage.label)
            self.flow(sid, self.entry(stage.next or ""))
        elif Driver.countersign(stage):
            count = len(stage.approvers)
            for i in range(count):
                element = sid if i == 0 else f"{sid}--{i + 1}"
                self.user_task(element, f"{stage.label} ({i + 1}/{count})")
                self.results(element, stage,
                             approve_to=f"{sid}--{i + 2}" if i + 1 < count else None)
        else:
            self.user_task(sid, stage.label)
            self.results(sid, stage)


def bpmn(process: Process) -> str:
    """The process as BPMN 2.0 (see the module doc)."""
    out = _Bpmn(process)
    out.nodes.append('<bpmn:startEvent id="start" />')
    out.flow("start", out.entry(process.start_stages[0].id))
    for stage in process.stages:
        out.stage(stage)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" '
        'targetNamespace="http://flowctl.dev/bench">\n'
        f'<bpmn:process id="{process.id.replace("-", "_")}" isExecutable="true">\n'
        + "\n".join(out.nodes) + "\n" + "\n".join(out.flows)
        + "\n</bpmn:process>\n</bpmn:definitions>\n"
    )


def _yaml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON is YAML 1.2


def scenario_text(process: Process, steps: list[dict[str, Any]]) -> str:
    lines = ["kind: scenario", f"process: {process.id}", f'clock: "{CLOCK}"', "scenarios:",
             f"  - name: {process.id} from start to end", "    steps:"]
    for step in steps:
        lines.append(f"      - {_yaml(step)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("defs")
    ap.add_argument("dest")
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    defs = os.path.join(args.dest, "defs")
    os.makedirs(defs, exist_ok=True)
    for name in os.listdir(args.defs):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(args.defs, name), encoding="utf-8") as fh:
            text = fh.read()
        text = text.replace("      optional: [level, region, priority, vip, due_date, note]",
                            "      optional: [level, region, priority, vip, due_date, note, "
                            "owner, reviewer]", 1)
        with open(os.path.join(defs, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    org, org_path = org_directory(os.path.join(defs, "org.yaml"), defs)
    loaded = Loaded(org, defs, org_path)
    os.makedirs(os.path.join(args.dest, "scenarios"), exist_ok=True)
    os.makedirs(os.path.join(args.dest, "bpmn"), exist_ok=True)
    paths: dict[str, Any] = {}
    names = sorted(n for n in os.listdir(defs) if n.startswith("process-"))
    for name in names:
        if len(paths) >= args.count:
            break
        process = loaded.process(os.path.join(defs, name))[0]
        if any(s.kind is StageKind.SUBPROCESS for s in process.stages):
            continue
        driver = Driver(process, loaded)
        if not driver.run():
            print(f"gen_scenarios: {process.id} did not complete; left out", file=sys.stderr)
            continue
        with open(os.path.join(args.dest, "scenarios", f"{process.id}.yaml"), "w",
                  encoding="utf-8") as fh:
            fh.write(scenario_text(process, driver.steps))
        with open(os.path.join(args.dest, "bpmn", f"{process.id}.bpmn"), "w",
                  encoding="utf-8") as fh:
            fh.write(bpmn(process))
        paths[process.id] = {"process": process.id.replace("-", "_"),
                             "start": dict(START_FIELDS), "steps": driver.path}
    with open(os.path.join(args.dest, "paths.json"), "w", encoding="utf-8") as fh:
        json.dump(paths, fh)
    print(json.dumps({"scenarios": len(paths)}))


if __name__ == "__main__":
    main()

"""Benchmark row 6, the peer: SpiffWorkflow runs key-account-filing-approval in memory.

    bench/.venv-peers/bin/python bench/peer_spiff.py BPMN COUNT

Parses ``BPMN`` once, then for each of ``COUNT`` instances (plus one warm-up):
creates the workflow, completes its user tasks with the data flowctl's side
reports (alice grades the customer a key account, carol approves, carol hands
it to bob), checks that it completed, and serialises it to JSON. Prints one
JSON line: ``{"per_instance": [seconds, ...]}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

# It runs in bench/.venv-peers; the flowctl environment that type-checks it has no SpiffWorkflow.
from SpiffWorkflow.bpmn import BpmnWorkflow  # type: ignore[import-not-found]
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser  # type: ignore[import-not-found]
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # type: ignore[import-not-found]
from SpiffWorkflow.util.task import TaskState  # type: ignore[import-not-found]

PROCESS = "key_account_filing_approval"
STEPS = (  # (user task, the data its person reports)
    ("edit_customer", {"owner": "alice", "level": "key"}),
    ("level_approval", {"result": "approve"}),
    ("change_owner", {"owner": "bob"}),
)


def run_one(spec: Any, serializer: Any) -> str:
    workflow = BpmnWorkflow(spec)
    workflow.do_engine_steps()
    for name, data in STEPS:
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        if task is None or task.task_spec.name != name:
            raise SystemExit(f"peer_spiff: expected user task {name}, found {task}")
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
    if not workflow.completed:
        raise SystemExit("peer_spiff: the workflow did not complete")
    return str(serializer.serialize_json(workflow))


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    parser = BpmnParser()
    parser.add_bpmn_file(path)
    spec = parser.get_spec(PROCESS)
    serializer = BpmnWorkflowSerializer()
    run_one(spec, serializer)  # warm-up
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run_one(spec, serializer)
        times.append(time.perf_counter() - start)
    print(json.dumps({"per_instance": times}))


if __name__ == "__main__":
    main()

"""Benchmark row 10, the peer: SpiffWorkflow runs the generated processes in memory.

    bench/.venv-peers/bin/python bench/peer_spiff_scenarios.py DEST

Reads ``DEST/paths.json`` and ``DEST/bpmn/`` (bench/gen_scenarios.py). Parses
each BPMN once (as flowctl reads each definition once before its scenarios
run); then, after one warm-up run of the first process, for each process it
creates the workflow with the start fields, completes the user tasks of the
path in order with the data flowctl's scenario reports (a result, the
fields the stage requires), checks that the workflow completed at the same
end, and serialises it to JSON. Prints one JSON line: ``{"per_instance":
[seconds, ...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

# It runs in bench/.venv-peers; the flowctl environment that type-checks it has no SpiffWorkflow.
from SpiffWorkflow.bpmn import BpmnWorkflow  # type: ignore[import-not-found]
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser  # type: ignore[import-not-found]
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # type: ignore[import-not-found]
from SpiffWorkflow.util.task import TaskState  # type: ignore[import-not-found]


def run_one(spec: Any, path: dict[str, Any], serializer: Any) -> str:
    workflow = BpmnWorkflow(spec)
    start = workflow.get_tasks(state=TaskState.READY)[0]
    start.data.update(path["start"])
    workflow.do_engine_steps()
    for name, data in path["steps"]:
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        if task is None or task.task_spec.name != name:
            raise SystemExit(f"peer_spiff_scenarios: {path['process']}: expected user task "
                             f"{name}, found {task and task.task_spec.name}")
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
    if not workflow.completed:
        raise SystemExit(f"peer_spiff_scenarios: {path['process']} did not complete")
    return str(serializer.serialize_json(workflow))


def main() -> None:
    dest = sys.argv[1]
    with open(os.path.join(dest, "paths.json"), encoding="utf-8") as fh:
        paths: dict[str, Any] = json.load(fh)
    specs = {}
    for pid, path in paths.items():
        parser = BpmnParser()
        parser.add_bpmn_file(os.path.join(dest, "bpmn", f"{pid}.bpmn"))
        specs[pid] = parser.get_spec(path["process"])
    serializer = BpmnWorkflowSerializer()
    first = next(iter(paths))
    run_one(specs[first], paths[first], serializer)  # warm-up
    times = []
    for pid, path in paths.items():
        start = time.perf_counter()
        run_one(specs[pid], path, serializer)
        times.append(time.perf_counter() - start)
    print(json.dumps({"per_instance": times}))


if __name__ == "__main__":
    main()

"""Builds the delivery bench's workspace: a process whose stage falls due
after an hour, an org directory whose assignee gets mail through an SMTP
channel, and a store with COUNT instances at that stage (their `entered`
notification switched off by the definition, so the only mail is the one
the tick sends). Prints {"seconds": s}.

    python notify_store.py FOLDER PORT COUNT
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime

from flowctl.api import instances
from flowctl.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PROCESS = """\
kind: process
id: callback
name: Customer call-back
fields:
  customer: {type: string}
notify:
  entered: false
  overdue:
    subject: "{{ instance }}: call {{ record.customer }} back, it is overdue"
stages:
  - id: call
    kind: task
    start: true
    assignee: {user: carol}
    fields:
      required: [customer]
    sla:
      within: 1h
    results:
      done: called
  - id: called
    kind: end
"""
ORG = """\
kind: org
channels:
  mail: mailto://127.0.0.1:{port}?from=flowctl@example.com
users:
  - id: alice
  - id: carol
    email: carol@example.com
    channels: [mail]
"""


def main() -> None:
    folder, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    procs = os.path.join(folder, "processes")
    os.makedirs(procs, exist_ok=True)
    with open(os.path.join(procs, "callback.yaml"), "w", encoding="utf-8") as fh:
        fh.write(PROCESS)
    with open(os.path.join(procs, "org.yaml"), "w", encoding="utf-8") as fh:
        fh.write(ORG.replace("{port}", str(port)))
    with open(os.path.join(folder, "flowctl.toml"), "w", encoding="utf-8") as fh:
        fh.write('processes = "processes"\nidentity = "trust"\nstore = "flowctl.db"\n')
    os.chdir(folder)
    start = time.perf_counter()
    store = SqliteStore.open(os.path.join(folder, "flowctl.db"))
    try:
        for i in range(count):
            instances.start("callback", values={"customer": f"Customer {i}"}, store=store,
                            processes_dir=procs, as_user="alice", now=T0)
    finally:
        store.close()
    print(json.dumps({"seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()

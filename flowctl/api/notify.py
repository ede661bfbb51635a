"""Delivering notifications through a command the admin configures.

``FLOWCTL_NOTIFY_COMMAND`` is a shell command (``sh -c``) that receives one
notification as JSON on its standard input and exits 0 when it delivered it::

    {"id": 12, "instance": "contract-approval-4", "user": "carol",
     "email": "carol@example.com", "name": "Carol Chen", "kind": "reminder",
     "stage": "manager-review", "message": "...", "created_at": "...",
     "attempt": 1}

It runs with a timeout (``FLOWCTL_NOTIFY_TIMEOUT`` seconds, default 30). A
notification is marked delivered only after the command exited 0; a failure
(another exit code, the timeout, a command that cannot start) is retried
later with a growing delay (1, 2, 4, 8 minutes), at most ``MAX_ATTEMPTS``
times, and every failure is journalled as ``notification_failed``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

from flowctl.model import OrgDirectory
from flowctl.store.base import NotificationRow

COMMAND_ENV = "FLOWCTL_NOTIFY_COMMAND"
TIMEOUT_ENV = "FLOWCTL_NOTIFY_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
LEASE = timedelta(minutes=10)  # a claimed notification is left alone this long
ERROR_CHARS = 500


def command() -> str | None:
    text = os.environ.get(COMMAND_ENV, "").strip()
    return text or None


def timeout_s() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def payload(n: NotificationRow, org: OrgDirectory) -> dict[str, Any]:
    user = org.user(n.user)
    return {
        "id": n.id,
        "instance": n.instance_id,
        "user": n.user,
        "email": user.email if user else None,
        "name": user.name if user else None,
        "kind": n.kind,
        "stage": n.stage,
        "message": n.message,
        "created_at": n.created_at,
        "attempt": n.attempts + 1,
    }


def run(cmd: str, data: dict[str, Any], timeout: float) -> str | None:
    """Run the command with ``data`` as JSON on stdin: None when it exited 0,
    else what went wrong (one line)."""
    import subprocess

    text = json.dumps(data, ensure_ascii=False)
    try:
        done = subprocess.run(  # noqa: S602 - the admin's own configured shell command
            cmd, shell=True, input=text.encode("utf-8"), capture_output=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:g} s"
    except OSError as exc:
        return f"cannot run the command: {exc.strerror or exc}"
    if done.returncode == 0:
        return None
    err = done.stderr.decode("utf-8", "replace").strip().splitlines()
    detail = f": {err[-1]}" if err else ""
    return f"exit {done.returncode}{detail}"[:ERROR_CHARS]


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When to try again after ``attempts`` failures: 1, 2, 4, 8... minutes."""
    factor: int = 2 ** max(0, attempts - 1)
    return now + FIRST_RETRY * factor

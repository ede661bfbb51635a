"""The operator commands: run process instances and read their journal.

Writes (``run_write``): start, advance, begin, reassign, note, link, cancel.
Reads (``run_read``): show, inbox, list, journal (and ``journal verify``).
Time (``run_time``): tick, overdue, pause, resume, task, notifications.
Each is a thin wrapper over ``flowctl.api.runtime``; exit codes are listed
in docs/exit-codes.md.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from flowctl.cli import run_read, run_time, run_write

    run_write.register(app)
    run_read.register(app)
    run_time.register(app)

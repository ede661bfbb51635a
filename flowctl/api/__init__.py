"""The library facade: what the CLI calls, and what a Python user calls.

    >>> from flowctl import api
    >>> result = api.lint_paths(["processes"])
    >>> result.exit_code()
    0

The modules behind it: ``definitions`` (finding and loading definitions,
linting), ``instances`` (running processes: start, advance, read, journal)
``timers`` (tick, overdue, tasks, notifications) and ``scenarios``
(``flowctl test``: ``run_tests``). Each name is imported
from its module on first use (PEP 562), so a lint does not import the
store, the engine and the diagrams, and a command imports only its side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

HOMES: dict[str, tuple[str, ...]] = {
    "flowctl.api.definitions": (
        "DefinitionError",
        "DefinitionSet",
        "LintResult",
        "lint_paths",
        "load_org",
        "load_process",
    ),
    "flowctl.api.instances": (
        "FieldValue",
        "InstanceCard",
        "InstanceView",
        "Loaded",
        "SessionContext",
        "StepResult",
        "UnknownInstance",
        "advance",
        "attach",
        "attachment",
        "begin",
        "cancel",
        "definition",
        "get",
        "inbox",
        "journal",
        "link",
        "list_instances",
        "note",
        "pause",
        "reassign",
        "resume",
        "session",
        "show",
        "start",
        "task_done",
        "verify_journal",
    ),
    "flowctl.api.timers": (
        "deliver_notifications",
        "notifications",
        "overdue",
        "tick",
    ),
    "flowctl.api.scenarios": ("run_tests",),
}
_WHERE = {name: module for module, names in HOMES.items() for name in names}

__all__ = [
    "DefinitionError",
    "DefinitionSet",
    "FieldValue",
    "InstanceCard",
    "InstanceView",
    "LintResult",
    "Loaded",
    "SessionContext",
    "StepResult",
    "UnknownInstance",
    "advance",
    "attach",
    "attachment",
    "begin",
    "cancel",
    "definition",
    "deliver_notifications",
    "get",
    "inbox",
    "journal",
    "link",
    "lint_paths",
    "list_instances",
    "load_org",
    "load_process",
    "note",
    "notifications",
    "overdue",
    "pause",
    "reassign",
    "resume",
    "run_tests",
    "session",
    "show",
    "start",
    "task_done",
    "tick",
    "verify_journal",
]

if TYPE_CHECKING:
    from flowctl.api.definitions import (
        DefinitionError,
        DefinitionSet,
        LintResult,
        lint_paths,
        load_org,
        load_process,
    )
    from flowctl.api.instances import (
        FieldValue,
        InstanceCard,
        InstanceView,
        Loaded,
        SessionContext,
        StepResult,
        UnknownInstance,
        advance,
        attach,
        attachment,
        begin,
        cancel,
        definition,
        get,
        inbox,
        journal,
        link,
        list_instances,
        note,
        pause,
        reassign,
        resume,
        session,
        show,
        start,
        task_done,
        verify_journal,
    )
    from flowctl.api.scenarios import run_tests
    from flowctl.api.timers import deliver_notifications, notifications, overdue, tick


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flowctl.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])

"""The library facade: what the CLI calls, and what a Python user calls.

    >>> from flowctl import api
    >>> result = api.lint_paths(["processes"])
    >>> result.exit_code()
    0
"""

from flowctl.api.definitions import (
    DefinitionError,
    LintResult,
    Workspace,
    lint_paths,
    load_org,
    load_process,
)
from flowctl.api.runtime import (
    FieldValue,
    InstanceCard,
    InstanceView,
    StepResult,
    UnknownInstance,
    advance,
    begin,
    cancel,
    get,
    inbox,
    journal,
    link,
    list_instances,
    note,
    reassign,
    show,
    start,
    verify_journal,
)

__all__ = [
    "FieldValue",
    "InstanceCard",
    "InstanceView",
    "StepResult",
    "UnknownInstance",
    "advance",
    "begin",
    "cancel",
    "get",
    "inbox",
    "journal",
    "link",
    "list_instances",
    "note",
    "reassign",
    "show",
    "start",
    "verify_journal",
    "DefinitionError",
    "LintResult",
    "Workspace",
    "lint_paths",
    "load_org",
    "load_process",
]

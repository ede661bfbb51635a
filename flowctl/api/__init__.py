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

__all__ = [
    "DefinitionError",
    "LintResult",
    "Workspace",
    "lint_paths",
    "load_org",
    "load_process",
]

"""Domain errors: each says what was asked, what is allowed, and why.

Each class carries its exit code (``exit_code``); the CLI prints the message
and exits with it. Nothing below the CLI calls ``sys.exit``.
"""

from __future__ import annotations


class FlowctlError(Exception):
    """Base of every refusal flowctl reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(FlowctlError):
    """The command was called wrongly, or its input cannot be read."""

    exit_code = 2

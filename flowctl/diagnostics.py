"""Diagnostics: what the loader, the schema check and the linter report."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(Struct, frozen=True, order=True):
    """One finding at ``file:line:col`` (both 1-based).

    Ordering is (file, line, col, code, message): sort a list of them for
    stable output.
    """

    file: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = Severity.ERROR
    end_line: int | None = None
    end_col: int | None = None

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.code} {self.message}"


def has_errors(diags: list[Diagnostic], *, strict: bool = False) -> bool:
    return any(d.severity is Severity.ERROR or strict for d in diags)

"""A loaded YAML file: plain data, where each part of it sits, and problems.

The loader fills this in; the schema check, the builder and the linter read
it. ``data`` holds only plain JSON types (dict, list, str, int, float, bool,
None), never parser-specific subclasses.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from flowctl.diagnostics import Diagnostic, Severity
from flowctl.model import Path


class Positions(Struct):
    """1-based (line, col) of every node, keyed by JSON path.

    ``values[path]`` is where the value starts; ``keys[path]`` is where the
    mapping key that holds it starts (absent for list items and the root).
    ``styles[path]`` is the scalar style of a string value: ``""`` for plain,
    ``"'"``, ``'"'``, ``"|"`` or ``">"``.
    """

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path, str] = field(default_factory=dict)

    def at(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` starts, or its nearest known ancestor."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: Path) -> tuple[int, int]:
        """Where the key naming ``path`` starts (falls back to ``at``)."""
        p = tuple(path)
        if p in self.keys:
            return self.keys[p]
        return self.at(p)


class Document(Struct):
    path: str  # as shown to the user
    text: str | None = None  # decoded source, for snippets; None if unreadable
    data: Any = None  # plain data; None when the file could not be parsed
    positions: Positions = field(default_factory=Positions)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        """``process`` or ``org`` (the top-level ``kind`` key), else None."""
        if isinstance(self.data, dict):
            k = self.data.get("kind")
            return k if isinstance(k, str) else None
        return None

    @property
    def ok(self) -> bool:
        return self.data is not None and not any(
            d.severity is Severity.ERROR for d in self.diagnostics
        )

    def diag(
        self,
        path: Path,
        code: str,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        at_key: bool = False,
    ) -> Diagnostic:
        """A diagnostic located at the node ``path`` (its key with ``at_key``)."""
        line, col = self.positions.key(path) if at_key else self.positions.at(path)
        return Diagnostic(self.path, line, col, code, message, severity)

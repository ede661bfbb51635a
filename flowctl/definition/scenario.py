"""Scenario files (``flowctl test``): reading them, with where each step sits.

A scenario file is YAML read by the same hardened loader as definitions,
checked against its own JSON Schema (``scenario.schema.json``) and turned
into :class:`ScenarioFile`: the process it tests and its scenarios, each a
list of steps that remember their line. What a step names (users, results,
stages, fields) is checked against the process and the org directory by
:mod:`flowctl.lint.scenarios`; :mod:`flowctl.api.scenarios` runs them.
"""

from __future__ import annotations

from typing import Any, Final

from msgspec import Struct

from flowctl.definition.document import Document
from flowctl.definition.loader import load_bytes, load_file
from flowctl.definition.schema import validate_as
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.model import Path

KIND: Final = "scenario"
ACTIONS: Final = ("start", "act", "begin", "reassign", "cancel", "task_done", "after")
DEFAULT_CLOCK: Final = "2026-01-05T09:00:00Z"  # a Monday morning, inside business hours


class Refusal(Struct, frozen=True):
    message: str  # the refusal's message must contain this
    exit_code: int | None = None


class Step(Struct, frozen=True):
    number: int  # 1-based, within its scenario
    line: int
    path: Path
    action: str | None  # one of ACTIONS, or None for an expectation alone
    args: Any  # the action's mapping (``after``: its duration text)
    expect: dict[str, Any] | None = None
    refused: Refusal | None = None

    def describe(self) -> str:
        """``act as carol: approve``: the step, as a failure names it."""
        a = self.args
        if self.action is None:
            return "expect"
        if self.action == "after":
            return f"after {a}"
        who = f" as {a.get('as')}"
        if self.action == "act":
            return f"act{who}: {a.get('result')}"
        if self.action == "reassign":
            return f"reassign{who} to {a.get('to')}"
        if self.action == "task_done":
            return f"task_done{who}: {a.get('task')}"
        return f"{self.action}{who}"


class Scenario(Struct, frozen=True):
    name: str
    line: int
    path: Path
    clock: str
    steps: tuple[Step, ...]


class ScenarioFile(Struct, frozen=True):
    path: str  # as shown to the user
    process: str
    process_path: Path
    scenarios: tuple[Scenario, ...]
    document: Document


def load(path: str, display: str | None = None, data: bytes | None = None
         ) -> tuple[ScenarioFile | None, list[Diagnostic]]:
    """Read a scenario file: the file (None when it cannot be used) and the
    problems of its YAML and schema, located."""
    doc = load_file(path, display) if data is None else load_bytes(data, display or path)
    problems = list(doc.diagnostics)
    if doc.data is None:
        return None, problems
    if not isinstance(doc.data, dict) or doc.data.get("kind") != KIND:
        got = doc.data.get("kind") if isinstance(doc.data, dict) else None
        where = doc.diag(("kind",), "FL100",
                         f"a scenario file starts with kind: {KIND}"
                         + (f", not kind: {got}" if isinstance(got, str) else ""))
        return None, [*problems, where]
    problems += validate_as(doc, KIND)
    if any(d.severity is Severity.ERROR for d in problems):
        return None, sorted(problems)
    return build(doc), sorted(problems)


def build(doc: Document) -> ScenarioFile:
    """A schema-valid scenario document as a :class:`ScenarioFile`."""
    data = doc.data
    clock = data.get("clock") or DEFAULT_CLOCK
    scenarios = []
    for i, raw in enumerate(data["scenarios"]):
        spath: Path = ("scenarios", i)
        steps = []
        for j, step in enumerate(raw["steps"]):
            path: Path = (*spath, "steps", j)
            action = next((a for a in ACTIONS if a in step), None)
            refused = step.get("refused")
            refusal = None
            if isinstance(refused, str):
                refusal = Refusal(refused)
            elif isinstance(refused, dict):
                refusal = Refusal(refused["message"], refused.get("exit"))
            steps.append(Step(
                number=j + 1, line=doc.positions.at(path)[0], path=path, action=action,
                args=step.get(action) if action else None, expect=step.get("expect"),
                refused=refusal,
            ))
        scenarios.append(Scenario(
            name=raw["name"], line=doc.positions.at(spath)[0], path=spath,
            clock=raw.get("clock") or clock, steps=tuple(steps),
        ))
    return ScenarioFile(doc.path, data["process"], ("process",), tuple(scenarios), doc)

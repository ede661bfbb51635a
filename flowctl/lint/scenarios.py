"""The checks of a scenario file against its process and the org directory.

Run before any scenario of the file: a step that names someone the org
directory does not know, a result no stage offers, a stage or a field the
process does not declare is reported at its ``file:line:col`` and the file's
scenarios do not run. Codes (documented in docs/testing.md):

=====  ========================================================
SC001  the process is not in the processes folder, or does not lint
SC002  an unknown user (``as``, ``to``, an assignee, a notification)
SC003  an unknown role (``assignee: role:ID``)
SC004  a result that no stage of the process offers
SC005  a stage the process does not have
SC006  a field the process does not declare
SC007  a duration (``after``) or a time (``clock``, ``due``) that is not one
SC008  a task no stage of the process creates
=====  ========================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Final

from flowctl.definition.durations import DurationError, parse_duration
from flowctl.definition.scenario import ScenarioFile
from flowctl.diagnostics import Diagnostic
from flowctl.model import OrgDirectory, Path, Process

UNKNOWN_PROCESS: Final = "SC001"
UNKNOWN_USER: Final = "SC002"
UNKNOWN_ROLE: Final = "SC003"
UNKNOWN_RESULT: Final = "SC004"
UNKNOWN_STAGE: Final = "SC005"
UNKNOWN_FIELD: Final = "SC006"
BAD_TIME: Final = "SC007"
SYSTEM_ACTOR: Final = "flowctl"  # the journal's actor for what time does (engine.SYSTEM_ACTOR)
UNKNOWN_TASK: Final = "SC008"

CODES: Final = {
    UNKNOWN_PROCESS: "the process is not in the processes folder, or does not lint",
    UNKNOWN_USER: "a user the org directory does not have",
    UNKNOWN_ROLE: "a role the org directory does not have",
    UNKNOWN_RESULT: "a result that no stage of the process offers",
    UNKNOWN_STAGE: "a stage the process does not have",
    UNKNOWN_FIELD: "a field the process does not declare",
    BAD_TIME: "a duration or a time that is not one",
    UNKNOWN_TASK: "a task that no stage of the process creates",
}


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _listed(names: Iterable[str], limit: int = 12) -> str:
    items = sorted(set(names))
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class _Checker:
    def __init__(self, sf: ScenarioFile, process: Process, org: OrgDirectory) -> None:
        self.sf = sf
        self.doc = sf.document
        self.process = process
        self.org = org
        self.out: list[Diagnostic] = []
        self.stages = {s.id for s in process.stages}
        self.results = {r.name for s in process.stages for r in s.results}
        self.fields = {f.name for f in process.fields}
        self.tasks = {t.id for s in process.stages for t in s.tasks}
        self.users = {u.id for u in org.users}
        self.roles = {r.id for r in org.roles}

    def emit(self, path: Path, code: str, message: str, *, at_key: bool = False) -> None:
        self.out.append(self.doc.diag(path, code, message, at_key=at_key))

    def user(self, path: Path, name: Any) -> None:
        if isinstance(name, str) and name not in self.users:
            where = f" {self.org.source}" if self.org.source else ""
            self.emit(path, UNKNOWN_USER, f"unknown user '{name}'{_suggest(name, self.users)}: "
                      f"not in the org directory{where}")

    def principal(self, path: Path, name: Any) -> None:
        if not isinstance(name, str):
            return
        kind, sep, rest = name.partition(":")
        if not sep:
            self.user(path, name)
        elif kind == "user":
            self.user(path, rest)
        elif kind == "role":
            if rest not in self.roles:
                self.emit(path, UNKNOWN_ROLE, f"unknown role '{rest}'{_suggest(rest, self.roles)}: "
                          "not in the org directory")
        else:
            self.emit(path, UNKNOWN_USER, f"assignee '{name}' is neither a user id nor "
                      "role:ROLE")

    def stage(self, path: Path, name: Any) -> None:
        if isinstance(name, str) and name not in self.stages:
            self.emit(path, UNKNOWN_STAGE, f"process '{self.process.id}' has no stage '{name}'"
                      f"{_suggest(name, self.stages)}; its stages: {_listed(self.stages)}")

    def field_names(self, path: Path, values: Any) -> None:
        if not isinstance(values, dict):
            return
        for name in values:
            if name not in self.fields:
                self.emit((*path, name), UNKNOWN_FIELD,
                          f"process '{self.process.id}' has no field '{name}'"
                          f"{_suggest(name, self.fields)}; its fields: "
                          f"{_listed(self.fields) or '(none)'}", at_key=True)

    def time(self, path: Path, text: Any, what: str) -> None:
        from datetime import datetime

        if not isinstance(text, str):
            return
        try:
            datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            self.emit(path, BAD_TIME, f"{what} {text!r} is not an ISO-8601 time "
                      "(e.g. \"2026-01-05T09:00:00Z\")")

    def run(self) -> list[Diagnostic]:
        data = self.doc.data
        self.time(("clock",), data.get("clock"), "clock")
        for scenario in self.sf.scenarios:
            self.time((*scenario.path, "clock"), data["scenarios"][scenario.path[1]].get("clock"),
                      "clock")
            for step in scenario.steps:
                self.step(step.path, step.action, step.args, step.expect)
        return self.out

    def step(self, path: Path, action: str | None, args: Any, expect: Any) -> None:
        if action == "after":
            try:
                parse_duration(args)
            except DurationError as exc:
                self.emit((*path, "after"), BAD_TIME, f"after: {exc}")
        elif action is not None:
            apath: Path = (*path, action)
            self.user((*apath, "as"), args.get("as"))
            if "to" in args:
                self.user((*apath, "to"), args["to"])
            if "next_assignee" in args:
                self.user((*apath, "next_assignee"), args["next_assignee"])
            if "stage" in args:
                self.stage((*apath, "stage"), args["stage"])
            self.field_names((*apath, "fields"), args.get("fields"))
            result = args.get("result")
            if action == "act" and isinstance(result, str) and result not in self.results:
                self.emit((*apath, "result"), UNKNOWN_RESULT,
                          f"no stage of process '{self.process.id}' has the result '{result}'"
                          f"{_suggest(result, self.results)}; its results: "
                          f"{_listed(self.results)}")
            task = args.get("task")
            if action == "task_done" and isinstance(task, str) and task not in self.tasks:
                self.emit((*apath, "task"), UNKNOWN_TASK,
                          f"no stage of process '{self.process.id}' creates the task '{task}'"
                          f"{_suggest(task, self.tasks)}"
                          + (f"; its tasks: {_listed(self.tasks)}" if self.tasks else ""))
        if isinstance(expect, dict):
            self.expectation((*path, "expect"), expect)

    def expectation(self, path: Path, expect: dict[str, Any]) -> None:
        self.stage((*path, "stage"), expect.get("stage"))
        for i, name in enumerate(expect.get("active_stages") or ()):
            self.stage((*path, "active_stages", i), name)
        assignee = expect.get("assignee")
        for i, name in enumerate(assignee if isinstance(assignee, list) else [assignee]):
            self.principal((*path, "assignee", i) if isinstance(assignee, list)
                           else (*path, "assignee"), name)
        self.field_names((*path, "fields"), expect.get("fields"))
        self.time((*path, "due"), expect.get("due"), "due")
        for i, n in enumerate(expect.get("notifications") or ()):
            self.user((*path, "notifications", i, "to"), n.get("to"))
        for i, e in enumerate(expect.get("journal") or ()):
            self.stage((*path, "journal", i, "stage"), e.get("stage"))
            actor = e.get("actor")
            if actor != SYSTEM_ACTOR:
                self.user((*path, "journal", i, "actor"), actor)


def check(sf: ScenarioFile, process: Process, org: OrgDirectory) -> list[Diagnostic]:
    """What in ``sf`` the process or the org directory does not have, located; sorted."""
    return sorted(_Checker(sf, process, org).run())


def process_problem(sf: ScenarioFile, message: str) -> Diagnostic:
    """SC001 at the file's ``process`` key: its process cannot be used."""
    return sf.document.diag(sf.process_path, UNKNOWN_PROCESS, message)

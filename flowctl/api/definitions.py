"""Loading and linting definitions: files -> documents -> model -> diagnostics."""

from __future__ import annotations

import os
from typing import Any

from flowctl.definition.build import build_org, build_process
from flowctl.definition.files import YAML_SUFFIXES, DefinitionSet, expand_paths, org_beside
from flowctl.definition.loader import read_source
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.errors import FlowctlError, UsageError
from flowctl.lint.cache import LintCache, entry_key
from flowctl.lint.rules import lint_workspace
from flowctl.lint.run import DEFAULT_PROCESSES_DIR, LintResult, lint_paths
from flowctl.model import OrgDirectory, Process

__all__ = ["DefinitionError", "DefinitionSet", "LintResult", "expand_paths", "lint_paths",
           "load_org", "load_process", "load_stored"]


class DefinitionError(FlowctlError):
    """A definition that does not lint clean cannot be used."""

    def __init__(self, message: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(message, hint="run `flowctl lint` on it to see every problem")
        self.diagnostics = diagnostics


def _resolve_process_file(ref: str, processes_dir: str) -> str:
    if os.path.isfile(ref):
        return ref
    for suffix in YAML_SUFFIXES:
        candidate = os.path.join(processes_dir, ref + suffix)
        if os.path.isfile(candidate):
            return candidate
    # fall back to scanning ids (file names need not match ids)
    if os.path.isdir(processes_dir):
        ws = DefinitionSet.load(expand_paths([processes_dir]))
        if ref in ws.processes:
            return ws.processes[ref][0].path
        known = ", ".join(sorted(ws.processes)) or "none"
        raise UsageError(
            f"no process '{ref}' in {processes_dir}/ (known: {known})",
            hint="name a process id or a YAML file",
        )
    raise UsageError(
        f"no process '{ref}': it is not a file and there is no {processes_dir}/ folder",
        hint="name a YAML file, or run from the folder that holds processes/",
    )


def load_process(ref: str, *, processes_dir: str = DEFAULT_PROCESSES_DIR) -> Process:
    """A process by id (looked up in ``processes_dir``) or by file path.

    Raises ``DefinitionError`` if the file does not lint clean of errors
    (subprocess references are not resolved here). A file that did is
    remembered (see ``_Remembered``): the next call builds it without parsing.
    """
    path = _resolve_process_file(ref, processes_dir)
    raw = read_source(path, path)
    org_path = org_beside([path])
    org_raw = read_source(org_path, org_path) if org_path is not None else b""
    memory = _Remembered("process", raw, org_raw)
    data = memory.get()
    if data is not None:
        return build_process(data, source=path)

    ws = DefinitionSet.from_sources([(path, raw)])
    if org_path is not None:
        ws.orgs.extend(DefinitionSet.from_sources([(org_path, org_raw)]).orgs)
    diags = [
        d
        for d in lint_workspace(ws, report_files={os.path.normpath(path)}, cross_file=False)
        if d.severity is Severity.ERROR
    ]
    if diags or not ws.processes:
        first = sorted(diags)[0].format() if diags else f"{path}: not a process definition"
        raise DefinitionError(f"{path} is not a valid process definition: {first}", diags)
    doc, process = next(iter(ws.processes.values()))
    memory.keep(doc.data)
    return process


def load_org(
    path: str | None = None, *, processes_dir: str = DEFAULT_PROCESSES_DIR
) -> OrgDirectory:
    """The org directory: ``path``, else ``processes/org.yaml`` (remembered like
    ``load_process``)."""
    if path is None:
        path = org_beside([os.path.join(processes_dir, "x")])
        if path is None:
            raise UsageError(
                f"no org directory: {processes_dir}/org.yaml does not exist",
                hint="create one (see `flowctl schema org`) or pass --org PATH",
            )
    raw = read_source(path, path)
    memory = _Remembered("org", raw)
    data = memory.get()
    if data is not None:
        return build_org(data, source=path)
    ws = DefinitionSet.from_sources([(path, raw)])
    errors = [d for d in ws.documents[0].diagnostics if d.severity is Severity.ERROR]
    if errors or not ws.orgs:
        first = sorted(errors)[0].format() if errors else f"{path}: not an org directory"
        raise DefinitionError(f"{path} is not a valid org directory: {first}", errors)
    doc, directory = ws.orgs[0]
    memory.keep(doc.data)
    return directory


def load_stored(source: str, display: str) -> Process:
    """A process from the text an instance keeps, checked by the loader and the
    schema only (it linted clean when the instance started). Remembered like
    ``load_process``; ``DefinitionError`` if it cannot be read."""
    raw = source.encode("utf-8")
    memory = _Remembered("stored", raw)
    data = memory.get()
    if data is not None:
        return build_process(data, source=display)
    ws = DefinitionSet.from_sources([(display, raw)])
    doc = ws.documents[0]
    if not doc.ok or not ws.processes:
        first = sorted(doc.diagnostics)[0].format() if doc.diagnostics else display
        raise DefinitionError(f"the stored definition {display} cannot be read: {first}",
                              doc.diagnostics)
    memory.keep(doc.data)
    return next(iter(ws.processes.values()))[1]


class _Remembered:
    """The plain data of a definition that loaded clean, kept in the definition
    cache (:mod:`flowctl.lint.cache`, beside lint's results).

    Operator commands read the org directory and one or two definitions on
    every call; parsing them again costs the YAML parser and the schema
    validator (~25 ms of imports, a few ms of work). So the data of a
    document that passed is kept as JSON under ``entry_key("valid <kind>",
    ...)`` of its bytes and of what its validity depended on (``context``: the
    org directory a process was checked against), by the current code. A
    changed byte is a new key; a document with errors is never kept, so its
    problems always come from a fresh parse. The model is built from the data
    each time, as after a parse.
    """

    def __init__(self, kind: str, raw: bytes | Diagnostic, *context: bytes | Diagnostic) -> None:
        parts = [p for p in (*context, raw) if isinstance(p, bytes)]
        every_part_read = len(parts) == len(context) + 1
        self.key = entry_key(f"valid {kind}", *parts) if every_part_read else None

    def get(self) -> Any:
        entry = LintCache().get(self.key) if self.key else None
        return entry.get("valid") if entry else None

    def keep(self, data: Any) -> None:
        if self.key:
            LintCache().put(self.key, {"valid": data})



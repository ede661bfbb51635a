"""Loading and linting definitions: files -> documents -> model -> diagnostics."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any

from flowctl.api import workspace
from flowctl.definition.build import build_org, build_process
from flowctl.definition.files import DefinitionSet, expand_paths, org_beside
from flowctl.definition.loader import read_source
from flowctl.definition.schema import KINDS as SCHEMA_KINDS
from flowctl.definition.schema import OTHER_KINDS as OTHER_SCHEMA_KINDS
from flowctl.definition.schema import schema_text
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.errors import FlowctlError, UsageError
from flowctl.lint import run as lint_run
from flowctl.lint.cache import LintCache, entry_key
from flowctl.lint.rules import lint_workspace
from flowctl.lint.run import LintResult
from flowctl.model import OrgDirectory, Process

__all__ = ["OTHER_SCHEMA_KINDS", "SCHEMA_KINDS", "DefinitionError", "DefinitionSet",
           "LintResult", "expand_paths",
           "find_process", "lint_paths", "load_org", "load_org_setting", "load_process",
           "load_process_text", "load_stored", "schema_text", "checked_process"]


class DefinitionError(FlowctlError):
    """A definition that does not lint clean cannot be used."""

    def __init__(self, message: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(message, hint="run `flowctl lint` on it to see every problem")
        self.diagnostics = diagnostics


def lint_paths(
    paths: list[str] | None = None,
    *,
    org: str | None = None,
    cache: bool = True,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LintResult:
    """Lint files and folders: every problem at once (see :func:`flowctl.lint.run.lint_paths`).

    ``paths`` default to the processes folder, and the org directory is
    ``org``, else $FLOWCTL_ORG, else the workspace file's, as for every
    command (:mod:`flowctl.api.workspace`); when none of these names one, an
    org file among the linted files, else beside them, else the workspace's
    default ``<processes>/org.yaml``.
    """
    ws = workspace.resolve(org=org)
    return lint_run.lint_paths(
        paths or [ws.processes.value],
        org=ws.org.value if ws.org.explicit else None,
        default_org=ws.org.value,
        cache=cache,
        jobs=jobs,
        progress=progress,
    )


def find_process(ref: str, processes_dir: str, source: str = "") -> str:
    """The file of process ``ref``: a path to a YAML file, or a process id in
    ``processes_dir`` (``source`` says where that folder setting came from).

    Refuses an id that two files define (naming both), and an unknown one
    (with the known ids and the closest match).
    """
    if os.path.isfile(ref):
        return ref
    where = f"{processes_dir}/" + (f" (from {source})" if source else "")
    if not os.path.isdir(processes_dir):
        raise UsageError(
            f"no process '{ref}': it is not a file, and the processes folder {where} "
            "does not exist",
            hint="name a YAML file, run `flowctl init` to make a workspace, or pass "
                 "--processes DIR (`flowctl config` shows what is used)",
        )
    ids = lint_run.process_files([processes_dir])
    files = ids.get(ref, [])
    if len(files) > 1:
        raise UsageError(
            f"process id '{ref}' is defined by {len(files)} files: {', '.join(files)}",
            hint="give each process its own id (`flowctl lint` reports the copies as FL224)",
        )
    if files:
        return files[0]
    for suffix in (".yaml", ".yml"):  # by its file name: lint tells what is wrong with it
        named = os.path.join(processes_dir, ref + suffix)
        if os.path.isfile(named):
            return named
    known = sorted(ids)
    close = difflib.get_close_matches(ref, known, n=1)
    raise UsageError(
        f"no process '{ref}' in {where} (known: {', '.join(known) or 'none'})",
        hint=f"did you mean '{close[0]}'?" if close else "name a process id or a YAML file",
    )


def load_process(
    ref: str, *, processes_dir: str | None = None, org: str | None = None
) -> Process:
    """A process (see :func:`load_process_text`, which also returns its text)."""
    return load_process_text(ref, processes_dir=processes_dir, org=org)[0]


def load_process_text(
    ref: str, *, processes_dir: str | None = None, org: str | None = None
) -> tuple[Process, str]:
    """A process, by id (looked up in the processes folder) or by file path,
    checked against the org directory it will run with, and the exact text it
    was built from (read once: what is stored with an instance is what was
    checked).

    ``processes_dir`` and ``org`` are resolved like every command's settings
    (:mod:`flowctl.api.workspace`). When no org is set (flag, environment or
    workspace file), it is the one lint would use for the file: an
    ``org.yaml`` beside it, else the workspace's default one if it exists.

    Raises ``DefinitionError`` if the file does not lint clean of errors
    (subprocess references are not resolved here). A file that did is
    remembered (see ``_Remembered``): the next call builds it without parsing.
    """
    ws = workspace.resolve(processes=processes_dir, org=org)
    path = find_process(ref, ws.processes.value, ws.processes.source)
    raw = read_source(path, path)
    if not isinstance(raw, bytes):  # unreadable: the diagnostic says why
        raise DefinitionError(f"{path} is not a valid process definition: {raw.format()}", [raw])
    text = raw.decode("utf-8", errors="replace")  # a clean definition is UTF-8 (FL002)
    org_path: str | None = ws.org.value
    if not ws.org.explicit:
        default = ws.org.value if os.path.isfile(ws.org.value) else None
        org_path = org_beside([path]) or default
    return checked_process(raw, path, org_path), text


def checked_process(raw: bytes, path: str, org_path: str | None) -> Process:
    """A process from the bytes of a definition file shown as ``path`` (a file,
    or ``REV:file`` read from git), checked against the org directory at
    ``org_path``; ``DefinitionError`` if it does not lint clean of errors."""
    org_raw = read_source(org_path, org_path) if org_path is not None else b""
    memory = _Remembered("process", raw, org_raw)
    data = memory.get()
    if data is not None:
        return build_process(data, source=path)

    ws_docs = DefinitionSet.from_sources([(path, raw)])
    if org_path is not None:
        org_set = DefinitionSet.from_sources([(org_path, org_raw)])
        if not org_set.orgs:
            raise _broken_org(org_path, org_set)
        ws_docs.orgs.extend(org_set.orgs)
    diags = [
        d
        for d in lint_workspace(ws_docs, report_files={os.path.normpath(path)}, cross_file=False,
                                errors_only=True)
        if d.severity is Severity.ERROR
    ]
    if diags or not ws_docs.processes:
        first = sorted(diags)[0].format() if diags else f"{path}: not a process definition"
        raise DefinitionError(f"{path} is not a valid process definition: {first}", diags)
    doc, process = next(iter(ws_docs.processes.values()))
    memory.keep(doc.data)
    return process


def _broken_org(path: str, found: DefinitionSet) -> DefinitionError:
    errors = [d for d in found.documents[0].diagnostics if d.severity is Severity.ERROR]
    first = sorted(errors)[0].format() if errors else f"{path}: not an org directory (kind: org)"
    return DefinitionError(f"{path} is not a valid org directory: {first}", errors)


def load_org(path: str | None = None, *, processes_dir: str | None = None) -> OrgDirectory:
    """The org directory: ``path``, else the workspace's (see
    :mod:`flowctl.api.workspace`), remembered like ``load_process``."""
    if path is None:
        return load_org_setting(workspace.resolve(processes=processes_dir).org)
    return _load_org(path)


def load_org_setting(setting: workspace.Setting) -> OrgDirectory:
    """The org directory a resolved workspace setting names; a missing file is
    refused saying where the setting came from."""
    if not setting.explicit and not os.path.isfile(setting.value):
        raise UsageError(
            f"no org directory: {workspace.describe(setting)} does not exist",
            hint="run `flowctl init` to make a workspace, create it (see `flowctl schema "
                 "org`), or pass --org PATH (`flowctl config` shows what is used)",
        )
    return _load_org(setting.value)


def _load_org(path: str) -> OrgDirectory:
    raw = read_source(path, path)
    memory = _Remembered("org", raw)
    data = memory.get()
    if data is not None:
        return build_org(data, source=path)
    found = DefinitionSet.from_sources([(path, raw)])
    errors = [d for d in found.documents[0].diagnostics if d.severity is Severity.ERROR]
    if errors or not found.orgs:
        raise _broken_org(path, found)
    doc, directory = found.orgs[0]
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



"""Loading and linting definitions: files -> documents -> model -> diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from flowctl.diagnostics import Diagnostic, Severity
from flowctl.document import Document
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import OrgDirectory, Process

YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_PROCESSES_DIR = "processes"
ORG_FILE_NAMES = ("org.yaml", "org.yml")


class DefinitionError(FlowctlError):
    """A definition that does not lint clean cannot be used."""

    def __init__(self, message: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(message, hint="run `flowctl lint` on it to see every problem")
        self.diagnostics = diagnostics


@dataclass
class LintResult:
    diagnostics: list[Diagnostic]
    files: list[str]  # every file linted, as shown to the user
    sources: dict[str, str] = field(default_factory=dict)  # file -> text, for snippets

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)

    def exit_code(self, *, strict: bool = False) -> int:
        """0 clean (warnings allowed), 1 errors (or warnings with strict),
        2 when a file could not be read at all."""
        from flowctl.rules import UNREADABLE

        if any(d.code in UNREADABLE for d in self.diagnostics):
            return 2
        if self.errors or (strict and self.warnings):
            return 1
        return 0


def expand_paths(paths: list[str]) -> list[str]:
    """Files named, plus ``*.yaml``/``*.yml`` found recursively in folders.

    Sorted, de-duplicated; a path that does not exist is a usage error.
    """
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out.extend(
                    os.path.join(root, f) for f in sorted(files) if f.endswith(YAML_SUFFIXES)
                )
        elif os.path.exists(p):
            out.append(p)
        else:
            raise UsageError(
                f"no such file or folder: {p}",
                hint="pass YAML files or folders that contain them",
            )
    seen: set[str] = set()
    unique = []
    for f in out:
        key = os.path.normpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(os.path.normpath(f))
    return sorted(unique)


@dataclass
class Workspace:
    """Documents loaded and checked against their schema, grouped by kind."""

    documents: list[Document]
    processes: dict[str, tuple[Document, Process]] = field(default_factory=dict)
    all_processes: list[tuple[Document, Process]] = field(default_factory=list)
    orgs: list[tuple[Document, OrgDirectory]] = field(default_factory=list)

    @classmethod
    def load(cls, files: list[str]) -> Workspace:
        from flowctl.build import build_org, build_process
        from flowctl.loader import load_file
        from flowctl.schema import validate

        docs: list[Document] = []
        ws = cls(documents=docs)
        for f in files:
            doc = load_file(f)
            docs.append(doc)
            if doc.data is None:
                continue
            doc.diagnostics.extend(validate(doc))
            if not doc.ok:
                continue
            if doc.kind == "process":
                proc = build_process(doc.data, source=doc.path)
                ws.processes.setdefault(proc.id, (doc, proc))
                ws.all_processes.append((doc, proc))
            elif doc.kind == "org":
                ws.orgs.append((doc, build_org(doc.data, source=doc.path)))
        return ws


def _org_beside(files: list[str]) -> str | None:
    for f in files:
        for name in ORG_FILE_NAMES:
            candidate = os.path.join(os.path.dirname(f) or ".", name)
            if os.path.isfile(candidate):
                return os.path.normpath(candidate)
    return None


def lint_paths(paths: list[str] | None = None, *, org: str | None = None) -> LintResult:
    """Lint files and folders (default: ``processes/``): every problem at once.

    The org directory is ``org`` if given, else an org file among the linted
    files, else ``org.yaml`` beside the first linted file that has one.
    """
    from flowctl.linter import lint_workspace

    files = expand_paths(paths or [DEFAULT_PROCESSES_DIR])
    extra: list[str] = []
    if org is not None:
        extra = [o for o in expand_paths([org]) if o not in files]
    ws = Workspace.load(files + extra)
    if not ws.orgs and org is None:
        beside = _org_beside(files)
        if beside is not None and beside not in files:
            ws_org = Workspace.load([beside])
            ws.orgs.extend(ws_org.orgs)
    diags = lint_workspace(ws, report_files=set(files))
    diags.sort()
    return LintResult(
        diagnostics=diags,
        files=files,
        sources={d.path: d.text for d in ws.documents if d.text is not None},
    )


def _resolve_process_file(ref: str, processes_dir: str) -> str:
    if os.path.isfile(ref):
        return ref
    for suffix in YAML_SUFFIXES:
        candidate = os.path.join(processes_dir, ref + suffix)
        if os.path.isfile(candidate):
            return candidate
    # fall back to scanning ids (file names need not match ids)
    if os.path.isdir(processes_dir):
        ws = Workspace.load(expand_paths([processes_dir]))
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
    (subprocess references are not resolved here).
    """
    from flowctl.linter import lint_workspace

    path = _resolve_process_file(ref, processes_dir)
    ws = Workspace.load([path])
    org_path = _org_beside([path])
    if org_path is not None:
        ws.orgs.extend(Workspace.load([org_path]).orgs)
    diags = [
        d
        for d in lint_workspace(ws, report_files={os.path.normpath(path)}, cross_file=False)
        if d.severity is Severity.ERROR
    ]
    if diags or not ws.processes:
        first = sorted(diags)[0].format() if diags else f"{path}: not a process definition"
        raise DefinitionError(f"{path} is not a valid process definition: {first}", diags)
    return next(iter(ws.processes.values()))[1]


def load_org(
    path: str | None = None, *, processes_dir: str = DEFAULT_PROCESSES_DIR
) -> OrgDirectory:
    """The org directory: ``path``, else ``processes/org.yaml``."""
    if path is None:
        path = _org_beside([os.path.join(processes_dir, "x")])
        if path is None:
            raise UsageError(
                f"no org directory: {processes_dir}/org.yaml does not exist",
                hint="create one (see `flowctl schema org`) or pass --org PATH",
            )
    ws = Workspace.load([path])
    errors = [d for d in ws.documents[0].diagnostics if d.severity is Severity.ERROR]
    if errors or not ws.orgs:
        first = sorted(errors)[0].format() if errors else f"{path}: not an org directory"
        raise DefinitionError(f"{path} is not a valid org directory: {first}", errors)
    return ws.orgs[0][1]



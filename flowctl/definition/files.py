"""Definition files on disk: finding them, and loading them into the model.

``expand_paths`` turns files and folders into the YAML files they hold;
``DefinitionSet.load`` reads, parses and schema-checks them and builds the
model of each one that passed (processes by id, org directories).
"""

from __future__ import annotations

import os

from msgspec import Struct, field

from flowctl.definition.build import build_org, build_process
from flowctl.definition.document import Document
from flowctl.definition.loader import load_bytes, read_source
from flowctl.definition.schema import validate
from flowctl.diagnostics import Diagnostic
from flowctl.errors import UsageError
from flowctl.model import OrgDirectory, Process

YAML_SUFFIXES = (".yaml", ".yml")
ORG_FILE_NAMES = ("org.yaml", "org.yml")


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


class DefinitionSet(Struct):
    """Documents loaded and checked against their schema, grouped by kind."""

    documents: list[Document]
    processes: dict[str, tuple[Document, Process]] = field(default_factory=dict)
    all_processes: list[tuple[Document, Process]] = field(default_factory=list)
    orgs: list[tuple[Document, OrgDirectory]] = field(default_factory=list)

    @classmethod
    def load(cls, files: list[str]) -> DefinitionSet:
        return cls.from_sources([(f, read_source(f, f)) for f in files])

    @classmethod
    def from_sources(cls, sources: list[tuple[str, bytes | Diagnostic]]) -> DefinitionSet:
        """Load files already read (``loader.read_source``): ``(path, bytes or the
        diagnostic of why they could not be read)``."""
        docs: list[Document] = []
        ws = cls(documents=docs)
        for f, raw in sources:
            doc = (load_bytes(raw, f) if isinstance(raw, bytes)
                   else Document(path=f, diagnostics=[raw]))
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




def org_beside(files: list[str]) -> str | None:
    """``org.yaml`` (or ``org.yml``) beside the first of ``files`` that has one."""
    for f in files:
        for name in ORG_FILE_NAMES:
            candidate = os.path.join(os.path.dirname(f) or ".", name)
            if os.path.isfile(candidate):
                return os.path.normpath(candidate)
    return None

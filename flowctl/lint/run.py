"""A lint run: files -> documents -> model -> diagnostics, every problem at once.

``lint_paths`` reads the files, checks each one on its own (in worker
processes when there are many), then runs the rules that need the other
files (the org directory, subprocesses), with results kept in the lint cache.
"""

from __future__ import annotations

import os
from typing import Any

from msgspec import Struct, field

from flowctl.definition.build import build_org, build_process
from flowctl.definition.document import Document
from flowctl.definition.files import expand_paths, org_beside
from flowctl.definition.loader import decode_source, load_bytes, read_source
from flowctl.definition.schema import validate
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.lint.cache import LintCache, context_key, file_key
from flowctl.lint.codes import UNREADABLE
from flowctl.lint.rules import CONTEXT_RULES, SINGLE_FILE_RULES, Context, ProcessSignature, lint_org
from flowctl.model import StageKind

DEFAULT_PROCESSES_DIR = "processes"


class LintResult(Struct):
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
        if any(d.code in UNREADABLE for d in self.diagnostics):
            return 2
        if self.errors or (strict and self.warnings):
            return 1
        return 0


def lint_paths(
    paths: list[str] | None = None,
    *,
    org: str | None = None,
    cache: bool = True,
    jobs: int | None = None,
) -> LintResult:
    """Lint files and folders (default: ``processes/``): every problem at once.

    The org directory is ``org`` if given, else an org file among the linted
    files, else ``org.yaml`` beside the first linted file that has one.

    Each file's results are kept in the lint cache (:mod:`flowctl.lint.cache`)
    and reused while nothing they depend on has changed; ``cache=False``
    neither reads nor writes it. ``jobs`` is how many processes parse files (default: one per
    CPU when there are many files to parse). Neither changes the result.
    """
    files = expand_paths(paths or [DEFAULT_PROCESSES_DIR])
    extra: list[str] = []
    if org is not None:
        extra = [o for o in expand_paths([org]) if o not in files]
    beside = org_beside(files) if org is None else None
    if beside in files:
        beside = None
    run = _LintRun(files + extra, beside, cache=cache, jobs=jobs)
    diags, sources = run.execute()
    report_files = set(files)
    diags = sorted(d for d in diags if d.file in report_files)
    return LintResult(diagnostics=diags, files=files, sources=sources)


# --------------------------------------------------------------------------- lint runs
#
# ``lint_paths`` in two phases over the same files, in one process or in
# several forked ones, with or without the lint cache:
#
# 1. each file on its own: load, schema, the single-file rules (and, for an
#    org directory, its own consistency checks). The result is a plain-JSON
#    summary: the diagnostics, and what other files need to know (kind,
#    process id, fields, end stages, children). This is what the cache keeps.
# 2. with the summaries of all files: pick the org directory and the
#    catalog of processes exactly as ``DefinitionSet.load`` + ``lint_workspace``
#    do, then run the rules that read them (org references, subprocesses) on
#    each process, in the process that parsed it. FL224 and FL406 come
#    from the summaries alone.

PARALLEL_MIN = 50  # files to parse before more than one process is worth its start-up
PER_WORKER_MIN = 25

_Summary = dict[str, Any]
_Row = list[Any]
_Catalog = dict[str, tuple[list[str], list[str]]]  # process id -> (field names, end stages)


def _rows(diags: list[Diagnostic]) -> list[_Row]:
    return [[d.line, d.col, d.code, d.message, d.severity.value, d.end_line, d.end_col]
            for d in diags]


def _diags(rows: list[_Row], file: str) -> list[Diagnostic]:
    return [Diagnostic(file, r[0], r[1], r[2], r[3], Severity(r[4]), r[5], r[6]) for r in rows]


class _Source(Struct):
    display: str  # as shown to the user; also the path read
    data: bytes | None = None
    problem: Diagnostic | None = None  # FL001/FL013: the file could not be read
    key: str | None = None  # lint-cache key of the file


def _read_sources(paths: list[str]) -> list[_Source]:
    out = []
    for p in paths:
        data = read_source(p, p)
        out.append(_Source(p, problem=data) if isinstance(data, Diagnostic) else _Source(p, data))
    return out


class _Worker:
    """Parses files and runs rules; keeps what it parsed for the second phase."""

    def __init__(self, sources: list[_Source]) -> None:
        self.sources = sources
        self.docs: dict[int, tuple[Document, Any]] = {}  # index -> (doc, Process | OrgDirectory)

    def load(self, indices: list[int]) -> dict[int, _Summary]:
        return {i: self._load(i) for i in indices}

    def _load(self, i: int) -> _Summary:
        src = self.sources[i]
        assert src.data is not None
        doc = load_bytes(src.data, src.display)
        doc.diagnostics.extend(validate(doc))
        out: _Summary = {"text": doc.text is not None, "kind": None,
                         "diags": _rows(doc.diagnostics),
                         "portable": all(d.file == src.display for d in doc.diagnostics)}
        if not doc.ok:
            self.docs[i] = (doc, None)
            return out
        if doc.kind == "process":
            proc = build_process(doc.data, source=doc.path)
            ctx = Context(doc=doc, proc=proc, org=None, catalog={})
            for check in SINGLE_FILE_RULES:
                check(ctx)
            children = {s.process for s in proc.stages
                        if s.kind is StageKind.SUBPROCESS and s.process is not None}
            out.update(kind="process", id=proc.id, id_at=list(doc.positions.at(("id",))),
                       fields=[f.name for f in proc.fields],
                       ends=[s.id for s in proc.stages if s.kind is StageKind.END],
                       children=sorted(children), rules=_rows(ctx.out))
            self.docs[i] = (doc, proc)
        elif doc.kind == "org":
            org = build_org(doc.data, source=doc.path)
            out.update(kind="org", kind_at=list(doc.positions.key(("kind",))),
                       rules=_rows(lint_org(doc, org)))
            self.docs[i] = (doc, org)
        return out

    def finish(
        self, jobs: list[int], org_index: int | None, catalog: _Catalog
    ) -> dict[int, list[_Row]]:
        """Org-reference and subprocess rules for the processes at ``jobs``."""
        if not jobs:
            return {}

        sigs = {pid: ProcessSignature(pid, tuple(f), tuple(e)) for pid, (f, e) in catalog.items()}
        org = self._model(org_index) if org_index is not None else None
        out = {}
        for i in jobs:
            doc, proc = self._parsed(i)
            ctx = Context(doc=doc, proc=proc, org=org, catalog=sigs)
            for check in CONTEXT_RULES:
                check(ctx)
            out[i] = _rows(ctx.out)
        return out

    def _parsed(self, i: int) -> tuple[Document, Any]:
        if i not in self.docs:
            self._load(i)
        return self.docs[i]

    def _model(self, i: int) -> Any:
        return self._parsed(i)[1]


def _serve(conn: Any, worker: _Worker) -> None:
    """A forked worker: answer the parent's requests until told to stop."""
    while True:
        request = conn.recv()
        if request[0] == "stop":
            return
        try:
            method = worker.load if request[0] == "load" else worker.finish
            conn.send(("ok", method(*request[1:])))
        except Exception as exc:  # reported by the parent, which lints serially instead
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _WorkerFailed(Exception):
    pass


class _Pool:
    """The parent's own worker plus ``size - 1`` forked ones."""

    def __init__(self, sources: list[_Source], size: int) -> None:
        import multiprocessing

        self.local = _Worker(sources)
        self.size = size
        self.owner: dict[int, int] = {}
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        ctx = multiprocessing.get_context("fork")
        for _ in range(size - 1):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child_end, self.local), daemon=True)
            proc.start()
            child_end.close()
            self.conns.append(parent_end)
            self.procs.append(proc)

    def _call(self, shares: list[list[Any]], method: str, *extra: Any) -> dict[int, Any]:
        for conn, share in zip(self.conns, shares[1:], strict=True):
            conn.send((method, share, *extra))
        out: dict[int, Any] = dict(getattr(self.local, method)(shares[0], *extra))
        for conn in self.conns:
            try:
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                raise _WorkerFailed("a lint worker stopped") from exc
            if status != "ok":
                raise _WorkerFailed(value)
            out.update(value)
        return out

    def load(self, indices: list[int]) -> dict[int, _Summary]:
        shares: list[list[int]] = [indices[k :: self.size] for k in range(self.size)]
        for k, share in enumerate(shares):
            self.owner.update(dict.fromkeys(share, k))
        return self._call(shares, "load")

    def finish(self, jobs: list[int], org_index: int | None,
               catalog: _Catalog) -> dict[int, list[_Row]]:
        shares: list[list[int]] = [[] for _ in range(self.size)]
        for n, i in enumerate(jobs):
            shares[self.owner.get(i, n % self.size)].append(i)
        return self._call(shares, "finish", org_index, catalog)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("stop",))
                conn.close()
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool_size(jobs: int | None, to_parse: int) -> int:
    import sys

    if to_parse < 2 or not sys.platform.startswith("linux"):
        return 1  # elsewhere fork is not the default
    if jobs is None and to_parse < PARALLEL_MIN:
        return 1
    import threading

    if threading.active_count() > 1:
        return 1  # forking a threaded process is unsafe
    if jobs is not None:
        return max(1, min(jobs, to_parse))
    return max(1, min(_cpus(), to_parse // PER_WORKER_MIN))


class _LintRun:
    """One ``lint_paths`` run: ``paths`` (files, then ``--org`` files), and the
    org directory ``beside`` them, used when none of them is one."""

    def __init__(self, paths: list[str], beside: str | None, *, cache: bool,
                 jobs: int | None) -> None:
        self.count = len(paths)
        self.sources = _read_sources(paths + ([beside] if beside else []))
        self.jobs = jobs
        self.summaries: dict[int, _Summary] = {}
        self.contexts: dict[int, dict[str, list[_Row]]] = {}
        self.store = None
        if cache:
            self.store = LintCache()
            for i, src in enumerate(self.sources):
                if src.data is not None:
                    src.key = file_key(src.display, src.data)
                    self._lookup(i, src.key)

    def _lookup(self, i: int, key: str) -> None:
        assert self.store is not None
        entry = self.store.get(key)
        if entry is not None and isinstance(entry.get("summary"), dict):
            self.summaries[i] = entry["summary"]
            contexts = entry.get("contexts")
            self.contexts[i] = contexts if isinstance(contexts, dict) else {}

    def execute(self) -> tuple[list[Diagnostic], dict[str, str]]:
        misses = [i for i, s in enumerate(self.sources)
                  if s.data is not None and i not in self.summaries]
        pool: _Pool | _Worker = _Worker(self.sources)
        size = _pool_size(self.jobs, len(misses))
        if size > 1:
            pool = _Pool(self.sources, size)
        try:
            try:
                return self._execute(pool, misses)
            except _WorkerFailed:
                pass
        finally:
            if isinstance(pool, _Pool):
                pool.close()
        return self._execute(_Worker(self.sources), misses)

    def _execute(self, pool: _Pool | _Worker,
                 misses: list[int]) -> tuple[list[Diagnostic], dict[str, str]]:
        self.summaries.update(pool.load(misses))
        org_index, first, order = self._workspace()
        catalog = {self.summaries[i]["id"]: (self.summaries[i]["fields"],
                                             self.summaries[i]["ends"]) for i in first.values()}
        keys = self._context_keys(first, org_index, catalog)
        jobs = [i for i in first.values() if keys.get(i) not in self.contexts.get(i, {})]
        found = pool.finish(jobs, org_index, catalog)
        for i, rows in found.items():
            self.contexts.setdefault(i, {})[keys.get(i, "")] = rows
        self._save(set(misses), set(found), keys)
        return self._collect(first, order, {i: self.contexts[i][keys.get(i, "")]
                                            for i in first.values()}), self._texts()

    def _workspace(self) -> tuple[int | None, dict[str, int], list[int]]:
        """The org directory's index, the first file of each process id, the orgs in order."""
        first: dict[str, int] = {}
        orgs: list[int] = []
        for i in range(self.count):
            s = self.summaries.get(i)
            if s is None or s["kind"] is None:
                continue
            if s["kind"] == "process":
                first.setdefault(s["id"], i)
            else:
                orgs.append(i)
        org_index = orgs[0] if orgs else None
        if org_index is None and len(self.sources) > self.count:
            s = self.summaries.get(self.count)
            if s is not None and s["kind"] == "org":
                org_index = self.count
        return org_index, first, orgs

    def _context_keys(self, first: dict[str, int], org_index: int | None,
                      catalog: _Catalog) -> dict[int, str]:
        if self.store is None:
            return {}

        org_key = self.sources[org_index].key if org_index is not None else None
        ids = context_key(sorted(catalog))
        keys = {}
        for i in first.values():
            children = self.summaries[i]["children"]
            cat = [ids, [catalog.get(c) for c in children]] if children else None
            keys[i] = context_key([org_key, cat])
        return keys

    def _save(self, misses: set[int], found: set[int], keys: dict[int, str]) -> None:
        if self.store is None:
            return
        for i in sorted(misses | found):
            src, summary = self.sources[i], self.summaries[i]
            if src.key is None or not summary.get("portable", True):
                continue
            contexts = self.contexts.get(i, {})
            self.store.put(src.key, {"summary": summary, "contexts": contexts})
        if misses or found:
            self.store.prune()

    def _collect(self, first: dict[str, int], orgs: list[int],
                 context_rows: dict[int, list[_Row]]) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        for i in range(self.count):
            src = self.sources[i]
            if src.problem is not None:
                out.append(src.problem)
                continue
            s = self.summaries[i]
            out.extend(_diags(s["diags"], src.display))
            if s["kind"] == "org":
                out.extend(_diags(s["rules"], src.display))
            elif s["kind"] == "process":
                if first[s["id"]] != i:
                    line, col = s["id_at"]
                    out.append(Diagnostic(src.display, line, col, "FL224", f"process id "
                                          f"'{s['id']}' is also defined in "
                                          f"{self.sources[first[s['id']]].display}"))
                    continue
                out.extend(_diags(s["rules"] + context_rows[i], src.display))
        for i in orgs[1:]:
            line, col = self.summaries[i]["kind_at"]
            out.append(Diagnostic(self.sources[i].display, line, col, "FL406", "a second org "
                                  f"directory; {self.sources[orgs[0]].display} is already the "
                                  "org directory of this lint"))
        return out

    def _texts(self) -> dict[str, str]:
        out = {}
        for i in range(self.count):
            src, s = self.sources[i], self.summaries.get(i)
            if src.data is not None and s is not None and s["text"]:
                text = decode_source(src.data)
                if text is not None:
                    out[src.display] = text
        return out

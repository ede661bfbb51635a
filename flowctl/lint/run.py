"""A lint run: files -> documents -> model -> diagnostics, every problem at once.

``lint_paths`` reads the files, checks each one on its own (in worker
processes when there are many), then runs the rules that need the other
files (the org directory, subprocesses), with results kept in the lint cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Struct, field

from flowctl.definition.build import build_org, build_process
from flowctl.definition.files import expand_paths, org_beside
from flowctl.definition.loader import decode_source, load_bytes, read_source
from flowctl.definition.schema import validate
from flowctl.diagnostics import Diagnostic, Severity
from flowctl.lint.cache import LintCache, file_key
from flowctl.lint.codes import UNREADABLE
from flowctl.lint.partial import partial_problems
from flowctl.lint.rules import (
    SINGLE_FILE_RULES,
    Context,
    OrgNames,
    ProcessSignature,
    References,
    lint_org,
    org_problems,
    references,
    subprocess_problems,
)
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
    default_org: str | None = None,
    cache: bool = True,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LintResult:
    """Lint files and folders (default: ``processes/``): every problem at once.

    The org directory is ``org`` if given, else an org file among the linted
    files, else ``org.yaml`` beside the first linted file that has one, else
    ``default_org`` when that file exists. An org directory from outside the
    linted files that has errors is reported with them (it was needed).

    Each file's results are kept in the lint cache (:mod:`flowctl.lint.cache`)
    and reused while nothing they depend on has changed; ``cache=False``
    neither reads nor writes it. ``jobs`` is how many processes parse files (default: one per
    CPU when there are many files to parse). Neither changes the result.

    ``progress``, if given, is called with how many more of the linted files
    are done, as they are (the calls add up to ``len(result.files)``): for a
    progress bar.
    """
    files = expand_paths(paths or [DEFAULT_PROCESSES_DIR])
    extra: list[str] = []
    if org is not None:
        extra = [o for o in expand_paths([org]) if o not in files]
    beside = None
    if org is None:
        beside = org_beside(files)
        if beside is None and default_org is not None and os.path.isfile(default_org):
            beside = os.path.normpath(default_org)
        if beside in files:
            beside = None
    outside = [*extra, *([beside] if beside is not None else [])]
    run = _LintRun(files + outside, None, cache=cache, jobs=jobs, progress=progress)
    diags, sources = run.execute()
    report_files = set(files)
    broken = [f for f in outside if any(d.file == f and d.severity is Severity.ERROR
                                        and d.code != "FL406" for d in diags)]
    report_files.update(broken)
    diags = sorted(d for d in diags if d.file in report_files)
    return LintResult(diagnostics=diags, files=sorted([*files, *broken]), sources=sources)


def process_files(paths: list[str], *, cache: bool = True) -> dict[str, list[str]]:
    """Each process id that ``paths`` (files and folders) define, with the files
    that define it, in path order. Read from the lint cache's summaries, so
    only files it has not seen are parsed (and then kept for the next call);
    a file that does not pass the schema defines no id."""
    files = expand_paths(paths)
    run = _LintRun(files, None, cache=cache, jobs=None, progress=None)
    misses = [i for i, s in enumerate(run.sources) if s.data is not None
              and i not in run.summaries]
    run._parse(misses, [])
    run._save(misses)
    out: dict[str, list[str]] = {}
    for i, path in enumerate(files):
        s = run.summaries.get(i)
        if s is not None and s["kind"] == "process":
            out.setdefault(s["id"], []).append(path)
    return out


# --------------------------------------------------------------------------- lint runs
#
# ``lint_paths`` in two phases over the same files:
#
# 1. each file on its own (``_summarize``, in a process pool when there are
#    many files): load, schema, the single-file rules (and, for an org
#    directory, its own consistency checks). The result is a plain-JSON
#    summary: the diagnostics, and what other files need to know (kind,
#    process id, fields, end stages; what it names in the org directory and in
#    other processes, with positions: ``rules.References``; an org's ids).
#    This is what the lint cache keeps.
# 2. from the summaries of all files, in this process: pick the org directory
#    and the catalog of processes exactly as ``DefinitionSet.load`` +
#    ``lint_workspace`` do, and judge each process's references against them
#    (FL215/FL216, FL401-FL404), plus FL224 and FL406. No file is parsed
#    again, so an edited org directory or child process is seen at once.

PARALLEL_MIN = 50  # files to parse before more than one process is worth its start-up
PER_WORKER_MIN = 25
CHUNK = 16  # files per task of the pool (and per progress report)

_Summary = dict[str, Any]
_Row = list[Any]


def _rows(diags: list[Diagnostic]) -> list[_Row]:
    return [[d.line, d.col, d.code, d.message, d.severity.value, d.end_line, d.end_col]
            for d in diags]


def _diags(rows: list[_Row], file: str) -> list[Diagnostic]:
    return [Diagnostic(file, r[0], r[1], r[2], r[3], Severity(r[4]), r[5], r[6]) for r in rows]


def _summarize(display: str, data: bytes) -> _Summary:
    """Phase 1 for one file (``display``: the name it is shown as, ``data``: its bytes)."""
    doc = load_bytes(data, display)
    doc.diagnostics.extend(validate(doc))
    out: _Summary = {"text": doc.text is not None, "kind": None,
                     "diags": _rows(doc.diagnostics),
                     "portable": all(d.file == display for d in doc.diagnostics)}
    if not doc.ok:
        # the rules over the part that is well formed: one run shows everything
        found, refs = partial_problems(doc)
        out["diags"] += _rows(found)
        if refs is not None:
            out["refs"] = msgspec.to_builtins(refs)
        return out
    if doc.kind == "process":
        proc = build_process(doc.data, source=doc.path)
        ctx = Context(doc=doc, proc=proc, org=None, catalog={})
        for check in SINGLE_FILE_RULES:
            check(ctx)
        out.update(kind="process", id=proc.id, id_at=list(doc.positions.at(("id",))),
                   fields=[f.name for f in proc.fields],
                   ends=[s.id for s in proc.stages if s.kind is StageKind.END],
                   rules=_rows(ctx.out), refs=msgspec.to_builtins(references(doc, proc)))
    elif doc.kind == "org":
        org = build_org(doc.data, source=doc.path)
        out.update(kind="org", kind_at=list(doc.positions.key(("kind",))),
                   rules=_rows(lint_org(doc, org)), names=msgspec.to_builtins(OrgNames.of(org)))
    return out


def _summarize_all(files: list[tuple[str, bytes]]) -> list[_Summary]:
    """Phase 1 for several files: one task of the pool."""
    return [_summarize(display, data) for display, data in files]


def _chunks(indices: list[int]) -> list[list[int]]:
    return [indices[k:k + CHUNK] for k in range(0, len(indices), CHUNK)]


def _worker_started() -> None:
    """In each pool worker: Ctrl-C is for the parent, which stops the pool."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


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


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool_size(jobs: int | None, to_parse: int) -> int:
    """How many worker processes parse ``to_parse`` files (1: none, parse here)."""
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
                 jobs: int | None, progress: Callable[[int], None] | None) -> None:
        self.count = len(paths)
        self.sources = _read_sources(paths + ([beside] if beside else []))
        self.jobs = jobs
        self.progress = progress
        self.summaries: dict[int, _Summary] = {}
        self.store = None
        if cache:
            self.store = LintCache()
            for i, src in enumerate(self.sources):
                if src.data is not None:
                    src.key = file_key(src.display, src.data)
                    entry = self.store.get(src.key)
                    if entry is not None and isinstance(entry.get("summary"), dict):
                        self.summaries[i] = entry["summary"]

    def execute(self) -> tuple[list[Diagnostic], dict[str, str]]:
        misses = [i for i, s in enumerate(self.sources)
                  if s.data is not None and i not in self.summaries]
        parse = set(misses)
        self._parse(misses, [i for i in range(self.count) if i not in parse])
        self._save(misses)
        return self._collect(), self._texts()

    def _parse(self, misses: list[int], ready: list[int]) -> None:
        """Phase 1 for the files at ``misses``: in a pool of worker processes when
        there are many, else (or when a worker dies) here.

        The files in ``ready`` (cached, unreadable) are reported done once the
        workers are started: ``progress`` is never called before a fork, so it
        may start threads (a progress bar's).
        """
        size = _pool_size(self.jobs, len(misses))
        if size > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            pool = ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_worker_started)
            try:
                tasks = {pool.submit(_summarize_all, self._files(chunk)): chunk
                         for chunk in _chunks(misses)}  # the first one forks the workers
                self._done(ready)
                ready = []
                for task in as_completed(tasks):
                    self._keep(tasks[task], task.result())
            except BrokenProcessPool:
                pass  # a worker was killed (out of memory...): what it had is parsed here
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        self._done(ready)
        for chunk in _chunks([i for i in misses if i not in self.summaries]):
            self._keep(chunk, _summarize_all(self._files(chunk)))

    def _done(self, indices: list[int]) -> None:
        """Report the linted files among ``indices`` as done."""
        n = sum(1 for i in indices if i < self.count)
        if self.progress is not None and n:
            self.progress(n)

    def _files(self, indices: list[int]) -> list[tuple[str, bytes]]:
        out = []
        for i in indices:
            src = self.sources[i]
            assert src.data is not None
            out.append((src.display, src.data))
        return out

    def _keep(self, indices: list[int], summaries: list[_Summary]) -> None:
        self.summaries.update(zip(indices, summaries, strict=True))
        self._done(indices)

    def _save(self, misses: list[int]) -> None:
        if self.store is None:
            return
        for i in misses:
            src, summary = self.sources[i], self.summaries[i]
            if src.key is not None and summary.get("portable", True):
                self.store.put(src.key, {"summary": summary})
        if misses:
            self.store.prune()

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

    def _collect(self) -> list[Diagnostic]:
        """Phase 2: every diagnostic, from the summaries."""
        org_index, first, orgs = self._workspace()
        org = (msgspec.convert(self.summaries[org_index]["names"], OrgNames)
               if org_index is not None else None)
        catalog = {pid: ProcessSignature(pid, tuple(self.summaries[i]["fields"]),
                                         tuple(self.summaries[i]["ends"]))
                   for pid, i in first.items()}
        out: list[Diagnostic] = []
        for i in range(self.count):
            src = self.sources[i]
            if src.problem is not None:
                out.append(src.problem)
                continue
            s = self.summaries[i]
            out.extend(_diags(s["diags"], src.display))
            if s["kind"] is None and s.get("refs") is not None:  # the well-formed part's
                refs = msgspec.convert(s["refs"], References)
                out.extend(org_problems(refs, src.display, org))
                out.extend(subprocess_problems(refs, src.display, catalog))
            if s["kind"] == "org":
                out.extend(_diags(s["rules"], src.display))
            elif s["kind"] == "process":
                if first[s["id"]] != i:
                    line, col = s["id_at"]
                    out.append(Diagnostic(src.display, line, col, "FL224", f"process id "
                                          f"'{s['id']}' is also defined in "
                                          f"{self.sources[first[s['id']]].display}"))
                # and the copy's own problems beside it: one run shows everything
                out.extend(_diags(s["rules"], src.display))
                refs = msgspec.convert(s["refs"], References)
                out.extend(org_problems(refs, src.display, org))
                out.extend(subprocess_problems(refs, src.display, catalog))
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

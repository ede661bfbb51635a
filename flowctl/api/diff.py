"""``flowctl diff``: what a change to process definitions does, for a reviewer.

Two files (``diff_files``), or every definition that changed between two git
revisions, or between one and the working tree (``diff_git``). Both sides
must lint clean (each against the org directory of its own side); processes
are matched by id, so a renamed file is the same process. With a store, each
changed process also gets its :class:`Impact` on running instances.
Revisions are read with ``git ls-tree`` and ``git cat-file``: nothing in the
work tree or the index is touched.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

import msgspec
from msgspec import Struct, field

from flowctl.api import workspace
from flowctl.api.definitions import DefinitionError, load_process_text
from flowctl.api.instances import OPEN_STATUSES, from_row, readonly_store, stored_process
from flowctl.definition.files import ORG_FILE_NAMES, DefinitionSet, expand_paths
from flowctl.definition.loader import read_source
from flowctl.diagnostics import Severity
from flowctl.diagram import Graph, changes_graph, extract
from flowctl.diagram.mermaid import over_limits, render_mermaid
from flowctl.diff import Change, ProcessDiff, added, blockers, compare, removed
from flowctl.errors import UsageError
from flowctl.lint.rules import lint_workspace
from flowctl.model import Process
from flowctl.store.base import InstanceFilter, Store
from flowctl.store.urls import display_url, is_url

__all__ = ["SCHEMA_VERSION", "Change", "DiffReport", "Impact", "ProcessDiff", "diff_files",
           "diff_git", "markdown"]

SCHEMA_VERSION = 1
WORKING_TREE = "working tree"


class StageImpact(Struct):
    stage: str
    change: str  # changed | removed
    running: int
    instances: list[str]


class Blocked(Struct):
    instance: str
    stage: str | None
    reasons: list[str]


class Impact(Struct):
    """Running instances of one process (any version of it) and the change."""

    store: str
    running: int
    stages: list[StageImpact]  # stages that change or disappear, with instances in them
    can_move: list[str]  # instances that could continue on the new version as they are
    cannot_move: list[Blocked]


class Entry(Struct):
    diff: ProcessDiff
    impact: Impact | None = None
    old: Process | None = None
    new: Process | None = None


class DiffReport(Struct):
    old: str  # what was compared: a file, "REV (abc1234)", or "working tree"
    new: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def behaviour_changed(self) -> bool:
        return any(e.diff.behaviour_changed for e in self.entries)

    def to_json(self) -> dict[str, object]:
        """The documented ``--format json`` document (docs/diff.md)."""
        processes = []
        for e in self.entries:
            d = msgspec.to_builtins(e.diff)
            d["behaviour_changed"] = e.diff.behaviour_changed
            d["impact"] = msgspec.to_builtins(e.impact) if e.impact is not None else None
            processes.append(d)
        changes = [c for e in self.entries for c in e.diff.changes]
        return {
            "version": SCHEMA_VERSION,
            "old": self.old,
            "new": self.new,
            "behaviour_changed": self.behaviour_changed,
            "processes": processes,
            "summary": {
                "processes": len(self.entries),
                "changes": len(changes),
                "behaviour_changes": sum(c.behaviour for c in changes),
                "weakens_control": sum(c.weakens is not None for c in changes),
            },
        }


# --------------------------------------------------------------------------- two files


def diff_files(old: str, new: str, *, db: str | None = None,
               org: str | None = None) -> DiffReport:
    """Compare two files that define the same process (each must lint clean)."""
    for path in (old, new):
        if not os.path.isfile(path):
            raise UsageError(f"no file {path}: `flowctl diff OLD NEW` compares two files",
                             hint="name two YAML files, or compare git revisions: "
                                  "flowctl diff --git REV")
    a, _ = load_process_text(old, org=org)
    b, _ = load_process_text(new, org=org)
    if a.id != b.id:
        raise UsageError(
            f"{old} defines process '{a.id}' and {new} defines '{b.id}': diff compares two "
            "versions of one process",
            hint="name two versions of the same process; to compare whole folders across "
                 "revisions use flowctl diff --git REV")
    report = DiffReport(old, new, [Entry(compare(a, b), old=a, new=b)])
    _impacts(report, db)
    return report


# --------------------------------------------------------------------------- git


def _git(args: list[str], cwd: str, *, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed: `flowctl diff --git` reads revisions with it",
                         hint="install git, or compare two files: flowctl diff OLD NEW") from None
    if proc.returncode != 0:
        raise _GitFailed(proc.stderr.decode("utf-8", "replace").strip())
    return proc.stdout


class _GitFailed(Exception):
    pass


def _toplevel() -> str:
    try:
        return _git(["rev-parse", "--show-toplevel"], os.getcwd()).decode().strip()
    except _GitFailed:
        raise UsageError(
            f"not a git repository: {os.getcwd()} (nor any folder above it); "
            "--git compares revisions of a repository",
            hint="run it inside a git work tree, or compare two files: flowctl diff OLD NEW",
        ) from None


def _commit(rev: str, top: str) -> str:
    if not rev or rev.startswith("-"):
        raise UsageError(f"unknown revision '{rev}'", hint="name a commit, branch or tag")
    try:
        return _git(["rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"],
                    top).decode().strip()
    except _GitFailed:
        raise UsageError(
            f"unknown revision '{rev}': git knows no commit, branch or tag by that name",
            hint="check `git log --oneline` or `git branch -a`; in CI, fetch the base "
                 "branch first (actions/checkout with fetch-depth: 0)",
        ) from None


def _sides(spec: str, top: str) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """(old label, old commit), and (new label, new commit) or None for the work tree."""
    if "..." in spec:
        a, b = spec.split("...", 1)
        a, b = a or "HEAD", b or "HEAD"
        ca, cb = _commit(a, top), _commit(b, top)
        try:
            base = _git(["merge-base", ca, cb], top).decode().strip()
        except _GitFailed:
            raise UsageError(f"'{a}' and '{b}' have no common ancestor: {spec} compares "
                             f"{b} with where it left {a}",
                             hint=f"compare them directly: flowctl diff --git {a}..{b}") from None
        return (f"merge-base of {a} and {b} ({base[:12]})", base), (f"{b} ({cb[:12]})", cb)
    if ".." in spec:
        a, b = spec.split("..", 1)
        a, b = a or "HEAD", b or "HEAD"
        ca, cb = _commit(a, top), _commit(b, top)
        return (f"{a} ({ca[:12]})", ca), (f"{b} ({cb[:12]})", cb)
    c = _commit(spec, top)
    return (f"{spec} ({c[:12]})", c), None


def _is_yaml(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def _tree_files(commit: str, folder: str, top: str) -> dict[str, bytes]:
    """Every YAML file under ``folder`` (relative to ``top``) at ``commit``: path -> bytes."""
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", commit, "--", folder or "."], top)
    blobs: list[tuple[str, str]] = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, name = item.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = name.decode("utf-8", "surrogateescape")
        if kind == "blob" and _is_yaml(path) and mode != "120000":
            blobs.append((path, sha))
    if not blobs:
        return {}
    out = _git(["cat-file", "--batch"], top, input="".join(f"{s}\n" for _, s in blobs).encode())
    files: dict[str, bytes] = {}
    pos = 0
    for path, _sha in blobs:
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        files[path] = out[end + 1:end + 1 + size]
        pos = end + 1 + size + 1
    return files


def _work_files(folder: str, top: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path in expand_paths([os.path.join(top, folder)]):
        raw = read_source(path, path)
        rel = os.path.relpath(path, top)
        if isinstance(raw, bytes):
            out[rel] = raw
        else:
            raise DefinitionError(f"{rel} cannot be read: {raw.format()}", [raw])
    return out


def _check(files: dict[str, bytes], changed: Iterable[str], label: str,
           prefix: str) -> dict[str, tuple[Process, str]]:
    """The processes of the ``changed`` files of one side, checked like lint does
    (against the org directory of that side); refuses one that does not lint."""
    changed = list(changed)
    orgs = [p for p in files if os.path.basename(p) in ORG_FILE_NAMES]
    sources: list[tuple[str, bytes]] = [(prefix + p, files[p]) for p in changed]
    sources += [(prefix + p, files[p]) for p in orgs[:1] if p not in changed]
    ws = DefinitionSet.from_sources(list(sources))
    report = {prefix + p for p in changed}
    found = lint_workspace(ws, report_files=report, cross_file=False, errors_only=True)
    errors = sorted(d for d in found if d.severity is Severity.ERROR)
    if errors:
        raise DefinitionError(
            f"{errors[0].file} ({label}) does not lint: {errors[0].format()}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""), errors)
    out: dict[str, tuple[Process, str]] = {}
    for doc, proc in ws.all_processes:
        if doc.path not in report:
            continue
        if proc.id in out:
            raise DefinitionError(
                f"process id '{proc.id}' is defined by {out[proc.id][1]} and {doc.path} "
                f"({label})", [])
        out[proc.id] = (proc, doc.path)
    return out


def diff_git(spec: str, *, processes_dir: str | None = None, db: str | None = None,
             org: str | None = None) -> DiffReport:
    """Compare every definition in the processes folder between two revisions
    (``A..B``; ``A...B``: from where B left A), or one and the working tree
    (``REV``). Added and removed processes are included."""
    top = _toplevel()
    ws = workspace.resolve(processes=processes_dir, org=org)
    folder = os.path.relpath(os.path.abspath(ws.processes.value), top)
    if folder.startswith(".."):
        raise UsageError(f"the processes folder {ws.processes.value} is outside the git "
                         f"repository at {top}",
                         hint="run it in the repository that holds the definitions, or pass "
                              "--processes DIR inside it")
    folder = "" if folder == "." else folder
    (old_label, old_commit), new_side = _sides(spec, top)
    old_files = _tree_files(old_commit, folder, top)
    if new_side is None:
        new_label, new_files, new_prefix = WORKING_TREE, _work_files(folder, top), ""
    else:
        new_label, new_files = new_side[0], _tree_files(new_side[1], folder, top)
        new_prefix = new_label.split(" (")[0] + ":"
    old_prefix = old_label.split(" (")[0] + ":" if "..." not in spec else old_commit[:12] + ":"
    diffs = [p for p in sorted(set(old_files) | set(new_files))
             if old_files.get(p) != new_files.get(p)]
    before = _check(old_files, [p for p in diffs if p in old_files], old_label, old_prefix)
    after = _check(new_files, [p for p in diffs if p in new_files], new_label, new_prefix)
    report = DiffReport(old_label, new_label)
    for pid in sorted(set(before) | set(after)):
        a, b = before.get(pid), after.get(pid)
        if a is not None and b is not None:
            d = compare(a[0], b[0])
            d.old_source, d.new_source = a[1], b[1]
            report.entries.append(Entry(d, old=a[0], new=b[0]))
        elif b is not None:
            report.entries.append(Entry(added(b[0], b[1]), new=b[0]))
        elif a is not None:
            report.entries.append(Entry(removed(a[0], a[1]), old=a[0]))
    _impacts(report, db)
    return report


# --------------------------------------------------------------------------- impact


def _impacts(report: DiffReport, db: str | None) -> None:
    """Fill in each entry's impact from the store: the one asked for (``--db``,
    $FLOWCTL_DB: it must exist), else the workspace's (its file's or the
    default) when there is one; none: no impact, and no file is created."""
    setting = workspace.resolve(db=db).store
    asked = setting.source in (workspace.FLAGS["store"], "$" + workspace.ENV["store"])
    if not asked and not is_url(setting.value) and not os.path.exists(setting.value):
        return
    wanted = [e for e in report.entries if e.old is not None]
    if not wanted:
        return
    shown = display_url(setting.value) if is_url(setting.value) else setting.value
    with readonly_store(db) as store:
        for e in wanted:
            e.impact = _impact(store, e, shown)


def _impact(store: Store, e: Entry, path: str) -> Impact:
    touched = e.diff.stages_touched() if e.new is not None else {}
    rows = list(store.list_instances(InstanceFilter(status=OPEN_STATUSES,
                                                    process_id=e.diff.process,
                                                    oldest_first=True)))
    by_stage: dict[str, list[str]] = {}
    can: list[str] = []
    cannot: list[Blocked] = []
    for row in rows:
        inst = from_row(row)
        if inst.stage is not None:
            by_stage.setdefault(inst.stage, []).append(inst.id)
        if e.new is None:
            cannot.append(Blocked(inst.id, inst.stage, ["the process no longer exists"]))
            continue
        pinned = stored_process(store, inst.definition_digest)
        current = pinned.stage(inst.stage) if inst.stage is not None else None
        why = blockers(inst.stage, current.kind.value if current else None,
                       dict(inst.record), e.new)
        if why:
            cannot.append(Blocked(inst.id, inst.stage, why))
        else:
            can.append(inst.id)
    stages = [StageImpact(sid, change, len(by_stage.get(sid, [])), by_stage.get(sid, []))
              for sid, change in touched.items()]
    if e.new is None:
        stages = [StageImpact(sid, "removed", len(ids), ids) for sid, ids in by_stage.items()]
    return Impact(path, len(rows), stages, can, cannot)


# --------------------------------------------------------------------------- markdown


_STATUS_WORDS = {"added": "new process", "removed": "removed", "changed": "changed"}


def _md(text: str | None) -> str:
    """Text for a Markdown table cell or list item: no line breaks, no pipes, no HTML."""
    if text is None:
        return ""
    out = " ".join(text.split()).replace("->", "→")
    out = out.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _symbol(c: Change) -> str:
    if c.what.endswith("-added"):
        return "added"
    if c.what.endswith("-removed"):
        return "removed"
    return "changed"


def _empty(proc: Process) -> Graph:
    return Graph(proc.id, (), (), (), ())


def drawing(e: Entry) -> str | None:
    """The Mermaid drawing of the new version marked with the change (the old
    version all removed, for a removed process)."""
    if e.new is not None:
        new_graph = extract(e.new)
        old_graph = extract(e.old) if e.old is not None else _empty(e.new)
        changed = {c.stage for c in e.diff.changes if c.stage is not None and c.behaviour}
        return render_mermaid(changes_graph(old_graph, new_graph, changed))
    if e.old is not None:
        old_graph = extract(e.old)
        return render_mermaid(changes_graph(old_graph, _empty(e.old)._replace(
            title=old_graph.title), set()))
    return None


def _summary_row(e: Entry) -> str:
    d = e.diff
    behaviour = sum(c.behaviour for c in d.changes)
    weak = len(d.weakening)
    if d.status == "changed" and not behaviour:
        what = "no behaviour change" + (f" ({len(d.changes)} wording)" if d.changes else "")
    else:
        what = (_STATUS_WORDS[d.status] if d.status != "changed"
                else f"{behaviour} change" + ("" if behaviour == 1 else "s"))
    running = ""
    if e.impact is not None:
        hit = sum(s.running for s in e.impact.stages)
        running = f"{e.impact.running} ({hit} in changed stages)"
    return (f"| `{d.process}` | {what} | {'⚠️ ' + str(weak) if weak else '0'} | "
            f"{running or '—'} |")


def markdown(report: DiffReport) -> str:
    """A pull-request comment: a summary table, then for each process its
    changes, the impact on running work and a Mermaid drawing (added green,
    changed amber, removed dashed red)."""
    lines = ["## Process changes", "",
             f"`{_md(report.old)}` → `{_md(report.new)}`", ""]
    if not report.entries:
        lines += ["No process definition changed.", ""]
        return "\n".join(lines)
    lines += ["| process | change | weakens control | running instances |",
              "| --- | --- | --- | --- |"]
    lines += [_summary_row(e) for e in report.entries]
    lines.append("")
    for e in report.entries:
        d = e.diff
        where = d.new_source or d.old_source or ""
        lines += [f"### `{d.process}`" + (f" ({_md(where)})" if where else ""), ""]
        if not any(c.behaviour for c in d.changes) and d.status == "changed":
            lines += ["No behaviour change.", ""]
        for c in d.changes:
            mark = {"added": "➕", "removed": "➖", "changed": "✏️"}[_symbol(c)]
            wording = "" if c.behaviour else " *(wording only)*"
            lines.append(f"- {mark} {_md(c.message)}{wording}")
            if c.weakens:
                lines.append(f"  - ⚠️ **weakens control**: {_md(c.weakens)}")
        if d.changes:
            lines.append("")
        if e.impact is not None:
            lines += _impact_md(e.impact)
        chart = drawing(e) if any(c.behaviour for c in d.changes) else None
        if chart is not None:
            problems = over_limits(chart)
            if problems:
                lines += [f"*Drawing left out: {_md('; '.join(problems))}.*", ""]
            else:
                lines += ["<details open><summary>Drawing: added in green, changed in amber, "
                          "removed dashed in red</summary>", "", "```mermaid",
                          chart.rstrip("\n"), "```", "", "</details>", ""]
    return "\n".join(lines)


def _impact_md(i: Impact) -> list[str]:
    out = [f"**Running instances** ({_md(i.store)}): {i.running}", ""]
    if i.stages:
        out += ["| stage | change | running |", "| --- | --- | --- |"]
        out += [f"| `{s.stage}` | {s.change} | {s.running} |" for s in i.stages]
        out.append("")
    out.append(f"Could move to the new version as they are: {len(i.can_move)}"
               + (f" ({', '.join(i.can_move)})" if i.can_move else ""))
    for b in i.cannot_move:
        out.append(f"- `{b.instance}` at `{b.stage}` cannot: {_md('; '.join(b.reasons))}")
    out.append("")
    return out

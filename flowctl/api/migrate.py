"""``flowctl migrate``: move running instances onto a new definition of their process.

Instances keep running on the exact definition they started with. When a
process changes, an admin may move the running instances of it onto the new
version: ``migrate(process, to=FILE or git revision, mapping=..., where=...)``
plans every instance first (:func:`flowctl.engine.migrate.plan`), refuses the
whole run when an instance sits in a stage the new definition removed and no
mapping says where it goes, and then moves each instance in its own
transaction with one ``migrated`` journal entry (both digests, the mapping).
Instances already on the new definition are left alone, so a run that stopped
half-way can be run again. ``dry_run`` plans and writes nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from msgspec import Struct

from flowctl import engine
from flowctl.api import workspace
from flowctl.api.definitions import checked_process, find_process
from flowctl.api.instances import (
    OPEN_STATUSES,
    Context,
    Definitions,
    Writer,
    acting,
    acting_for,
    digest_of,
    from_row,
    process_from_source,
    record_condition,
    stored_process,
)
from flowctl.definition import conditions
from flowctl.engine import migrate as moving
from flowctl.engine.migrate import MigrationPlan
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import Process
from flowctl.store.base import Definition, InstanceFilter, JournalEntry


class MigrationRefused(FlowctlError):
    """The migration cannot be done as asked; nothing was written (exit 1)."""


class Moved(Struct, frozen=True):
    plan: MigrationPlan
    from_definition: str
    entries: tuple[JournalEntry, ...] = ()
    error: str | None = None  # it changed meanwhile, or a step refused: not moved


class MigrationReport(Struct, frozen=True):
    process: str
    to: str  # what --to named, as shown
    to_definition: str  # digest of the new definition
    mapping: Mapping[str, str]
    dry_run: bool
    instances: tuple[Moved, ...]

    @property
    def moved(self) -> int:
        return sum(1 for m in self.instances if m.plan.moves and m.error is None)

    @property
    def already(self) -> int:
        return sum(1 for m in self.instances if m.plan.already)


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["review=manager-review", ...]`` as a dict; a bad pair is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--map {pair!r}: write it as OLD=NEW (stage ids)",
                             hint="e.g. --map review=manager-review")
        if old.strip() in out:
            raise UsageError(f"--map names stage '{old.strip()}' twice")
        out[old.strip()] = new.strip()
    return out


def read_target(process: str, to: str, processes_dir: str | None) -> tuple[bytes, str]:
    """The bytes of the new definition and how to show where they came from:
    ``to`` is a file, else a git revision at which the process's file is read."""
    if os.path.isfile(to):
        try:
            with open(to, "rb") as fh:
                return fh.read(), to
        except OSError as exc:
            raise UsageError(f"--to {to}: cannot read it: {exc.strerror or exc}") from None
    ws = workspace.resolve(processes=processes_dir)
    path = find_process(process, ws.processes.value, ws.processes.source)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    name = os.path.basename(path)

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-C", folder, *args], capture_output=True,
                                  check=False, timeout=60)
        except FileNotFoundError:
            raise UsageError(f"--to {to}: it is not a file, and git (to read it as a "
                             "revision) is not installed") from None

    known = git("rev-parse", "--verify", "--quiet", f"{to}^{{commit}}")
    if known.returncode != 0:
        inside = git("rev-parse", "--is-inside-work-tree").returncode == 0
        raise UsageError(
            f"--to {to}: neither a file nor a git revision"
            + ("" if inside else f" ({path} is not in a git repository)"),
            hint="name the new definition's file, or a commit, branch or tag that has it "
                 "(e.g. --to HEAD, --to main)",
        )
    shown = git("show", f"{to}:./{name}")
    if shown.returncode != 0:
        raise UsageError(f"--to {to}: revision {to} has no file {path}",
                         hint="`git log -- " + path + "` shows the revisions that have it")
    return shown.stdout, f"{to}:{path}"


def _check_mapping(mapping: Mapping[str, str], old: list[Process], new: Process) -> None:
    known_old = {s.id for p in old for s in p.stages}
    for source, target in mapping.items():
        if new.stage(target) is None:
            import difflib

            close = difflib.get_close_matches(target, [s.id for s in new.stages], n=1)
            raise MigrationRefused(
                f"--map {source}={target}: the new definition of '{new.id}' has no stage "
                f"'{target}'" + (f"; did you mean '{close[0]}'?" if close else "")
                + "; nothing was written",
                hint="its stages: " + ", ".join(s.id for s in new.stages),
            )
        if old and source not in known_old:
            raise MigrationRefused(
                f"--map {source}={target}: no earlier definition of '{new.id}' in the store "
                f"has a stage '{source}'; nothing was written",
                hint="its stages: " + ", ".join(sorted(known_old)),
            )


def migrate(
    process: str,
    *,
    to: str,
    mapping: Mapping[str, str] | None = None,
    where: str | None = None,
    dry_run: bool = False,
    **context: Unpack[Context],
) -> MigrationReport:
    """Move the running instances of ``process`` onto the definition ``to`` (a
    file, or a git revision of the process's file). Admins only."""
    mapping = dict(mapping or {})
    raw, shown = read_target(process, to, context.get("processes_dir"))
    with acting(**context) as s:
        user = s.org.user(s.user)
        if user is None or engine.ADMIN_ROLE not in user.roles:
            admins = sorted(u.id for u in s.org.users if engine.ADMIN_ROLE in u.roles)
            raise MigrationRefused(
                f"only admins may migrate instances; you are {s.user}",
                hint="ask an admin" + (f" ({', '.join(admins)})" if admins else ""),
            )
        new = checked_process(raw, shown, s.org_path)
        if new.id != process:
            raise MigrationRefused(
                f"--to {to}: it defines process '{new.id}', not '{process}'; nothing was "
                "written")
        source = raw.decode("utf-8")  # it linted clean: UTF-8 (FL002)
        digest = digest_of(source)
        process_from_source(source, shown, digest)  # known by its digest from now on
        cond = record_condition(s.store, where, (process,)) if where is not None else None
        rows = [row for row in s.store.list_instances(
            InstanceFilter(process_id=process, status=OPEN_STATUSES, oldest_first=True))
            if cond is None or _holds(cond, row.state.get("record") or {})]
        olds = {row.definition_digest: stored_process(s.store, row.definition_digest)
                for row in rows}
        stored = [stored_process(s.store, d) for pid, d in s.store.definition_digests()
                  if pid == process and d != digest]
        _check_mapping(mapping, stored, new)
        plans = [(row, moving.plan(olds[row.definition_digest], new, from_row(row), digest,
                                   mapping)) for row in rows]
        stuck = [p for _, p in plans if p.refusal is not None]
        if stuck and not dry_run:
            first = stuck[0]
            raise MigrationRefused(
                f"{len(stuck)} of {len(plans)} instances cannot move: {first.instance_id} "
                f"(at '{first.from_stage}'): {first.refusal}; nothing was written",
                hint="`flowctl migrate ... --dry-run` shows the plan of every instance",
            )
        if dry_run:
            return MigrationReport(process, shown, digest, mapping, True, tuple(
                Moved(p, row.definition_digest) for row, p in plans))
        done: list[Moved] = []
        procs = Definitions(s.processes_dir, s.org_path, s.loaded)
        procs.add(new, source)
        for row, the_plan in plans:
            if not the_plan.moves:
                done.append(Moved(the_plan, row.definition_digest))
                continue
            done.append(_move(s, procs, row.id, new, source, digest, mapping))
        return MigrationReport(process, shown, digest, mapping, False, tuple(done))


def _holds(cond: Any, record: Mapping[str, Any]) -> bool:
    try:
        return conditions.evaluate(cond, record)
    except conditions.ConditionEvalError:
        return False


def _move(s: Any, procs: Definitions, instance_id: str, new: Process, source: str,
          digest: str, mapping: Mapping[str, str]) -> Moved:
    """One instance, in its own transaction, planned again under the lock."""
    ctx = engine.Context(s.user, s.org, s.now)
    with s.store.transaction() as tx:
        row = tx.get_instance(instance_id)
        assert row is not None  # instances are never deleted
        old = stored_process(s.store, row.definition_digest)
        inst = from_row(row)
        the_plan = moving.plan(old, new, inst, digest, mapping)
        if not the_plan.moves:
            return Moved(the_plan, row.definition_digest,
                         error=the_plan.refusal or the_plan.skipped
                         or "already on the new definition")
        try:
            step = moving.migrate(old, new, inst, the_plan, ctx, new_digest=digest,
                                  mapping=mapping)
        except FlowctlError as exc:
            return Moved(the_plan, row.definition_digest, error=exc.message)
        tx.put_definition(Definition(digest, new.id, source, engine.iso(s.now)))
        writer = Writer(tx, s.store, s.org, s.now, procs, acting_for(s))
        writer.update(new, step, row.version)
        return Moved(the_plan, row.definition_digest, tuple(writer.written))

"""Running processes: start instances, advance them, read them and their journal.

Every write follows one path: parse YAML and load the org directory first,
then inside one store transaction read the instance, ask the pure engine for
the new state and the journal entries, and write both (plus, on start, the
exact definition text). A refused command raises before anything is written.

    >>> from flowctl import api
    >>> step = api.start("key-account-filing-approval", as_user="alice",
    ...                  values={"owner": "alice"})            # doctest: +SKIP
    >>> step.instance.id, step.instance.stage                   # doctest: +SKIP
    ('key-account-filing-approval-1', 'edit-customer')

Settings: ``db``, ``org`` and ``processes_dir`` are resolved as for every
command: the argument, else the environment, else the workspace file, else
the defaults (:mod:`flowctl.api.workspace`); ``as_user`` (FLOWCTL_USER, else
the login name) and ``now`` (FLOWCTL_NOW, ISO-8601; else the clock). ``store``
lets a caller pass an open store (tests, embedding); it is then not closed here.

A program that makes many calls opens the store and reads the definitions
once with :func:`session`; each call is still its own durable transaction::

    >>> from flowctl.api import runtime
    >>> with runtime.session(db="demo.db") as ctx:             # doctest: +SKIP
    ...     step = runtime.start("key-account-filing-approval", as_user="alice",
    ...                          values={"owner": "alice"}, **ctx)
    ...     runtime.advance(step.instance.id, result="done", values={"level": "key"},
    ...                     as_user="alice", **ctx)
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from msgspec import Struct
from msgspec.structs import replace

from flowctl import engine
from flowctl.api import access, workspace
from flowctl.api.definitions import (
    DefinitionError,
    load_org_setting,
    load_process_text,
    load_stored,
)
from flowctl.api.identity import resolve_acting
from flowctl.definition import conditions
from flowctl.definition.conditions import Condition
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import OrgDirectory, Process, StageKind
from flowctl.store.backends import open_readonly, open_store
from flowctl.store.base import (
    AttachmentRow,
    Checkpoint,
    ConflictError,
    Definition,
    InstanceFilter,
    InstanceRow,
    JournalEntry,
    JournalFilter,
    NotificationRow,
    Store,
    StoreError,
    StoreMissing,
    TimerRow,
    Transaction,
    VerifyReport,
)
from flowctl.store.chain import STORE_ENTRY_ID, sha256_hex
from flowctl.store.urls import is_url

if TYPE_CHECKING:
    from flowctl.store.backends import ReadonlyStore

NOW_ENV = "FLOWCTL_NOW"
STATUSES = (engine.ACTIVE, engine.WAITING, engine.PAUSED, engine.COMPLETED, engine.CANCELLED)
OPEN_STATUSES = (engine.ACTIVE, engine.WAITING, engine.PAUSED)


class UnknownInstance(UsageError):
    """No instance has that id (exit 2)."""


# ---------------------------------------------------------------- views
#
# msgspec Structs, not dataclasses: defined ~10x faster when a command imports
# this module; the CLI turns them into JSON with msgspec.to_builtins.


class InstanceView(Struct, frozen=True):
    """One instance as a person reads it."""

    id: str
    process_id: str
    process_name: str
    definition: str  # sha256 of the definition text it runs on
    version: int
    status: str  # active | waiting | completed | cancelled
    initiator: str
    started_at: str
    updated_at: str
    stage: str | None  # None once finished (see last_stage)
    stage_name: str | None
    stage_kind: str | None
    phase: str | None
    stage_state: str  # not started | in progress | done
    assignees: tuple[str, ...]  # principals: "user:carol", "role:finance-reviewer"
    waiting_for: str  # "carol (head of sales)", "until 2026-12-22T10:00:00Z", ""
    due_at: str | None
    overdue: bool
    record: Mapping[str, Any]
    note: str
    links: tuple[engine.LinkRef, ...]
    votes: tuple[engine.Vote, ...]
    outcome: str | None
    last_stage: str | None
    wake_at: str | None
    parent_id: str | None
    children: tuple[engine.Child, ...]
    timers: tuple[engine.Timer, ...]
    tasks: tuple[engine.Task, ...] = ()
    paused_at: str | None = None
    attachments: tuple[engine.AttachmentRef, ...] = ()  # oldest first, every version
    watchers: tuple[str, ...] = ()  # whom it was shared with (flowctl share)
    branches: tuple[BranchView, ...] = ()  # an open parallel stage: its started branches
    branch: str | None = None  # inbox: the branch this row is about (its stage, assignees...)

    @property
    def where(self) -> str:
        """A one-line summary of where the instance is and who it waits for."""
        if self.status in engine.FINISHED:
            return f"{self.status} at '{self.last_stage}' (outcome: {self.outcome})"
        stage = f"'{self.stage}'"
        if self.status == engine.WAITING:
            return f"waiting at {stage} {self.waiting_for}"
        if self.status == engine.PAUSED:
            return f"paused at {stage} {self.waiting_for}"
        due = f", due {self.due_at}" if self.due_at else ""
        return f"at {stage}, waiting for {self.waiting_for}{due}"


class BranchView(Struct, frozen=True):
    """One started branch of an instance's open parallel stage."""

    name: str
    label: str
    status: str  # active | waiting | joined | ended | cancelled
    stage: str | None  # where it is (joined: the join; ended: the end stage)
    stage_name: str | None
    stage_state: str
    assignees: tuple[str, ...]
    waiting_for: str  # "a finance-reviewer (frank)", "until 2026-12-22T10:00:00Z", ""
    due_at: str | None
    overdue: bool

    @property
    def where(self) -> str:
        """``finance: at 'finance-review', waiting for a finance-reviewer (frank), due ...``"""
        if self.status == engine.JOINED:
            return f"{self.name}: done, at the join '{self.stage}'"
        if self.status == engine.ENDED:
            return f"{self.name}: ended at '{self.stage}'"
        if self.status == engine.CANCELLED:
            return f"{self.name}: cancelled at '{self.stage}'"
        if self.status == engine.WAITING:
            return f"{self.name}: waiting at '{self.stage}' {self.waiting_for}"
        due = f", due {self.due_at}" if self.due_at else ""
        return f"{self.name}: at '{self.stage}', waiting for {self.waiting_for}{due}"


class StepResult(Struct, frozen=True):
    """What a write command did: the instance after it and the entries written."""

    instance: InstanceView
    entries: tuple[JournalEntry, ...]


class FieldValue(Struct, frozen=True):
    name: str
    label: str
    type: str
    value: Any


class InstanceCard(Struct, frozen=True):
    """Everything ``flowctl show`` prints: the instance, its fields, its history."""

    instance: InstanceView
    fields: tuple[FieldValue, ...]
    history: tuple[JournalEntry, ...]
    children: tuple[InstanceView, ...] = ()  # the child instances, oldest first


# -------------------------------------------------------------- settings


def db_path(db: str | None = None) -> str:
    """The store's path: ``db``, else $FLOWCTL_DB, else the workspace's."""
    return workspace.resolve(db=db).store.value


def processes_path(processes_dir: str | None = None) -> str:
    """The processes folder: ``processes_dir``, else $FLOWCTL_PROCESSES, else the
    workspace's."""
    return workspace.resolve(processes=processes_dir).processes.value


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time as an aware UTC datetime (``ValueError`` if it is not one)."""
    return engine.parse_time(text)


def clock(now: datetime | None = None) -> datetime:
    """``now``, else FLOWCTL_NOW, else the system clock; always UTC-aware."""
    if now is not None:
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    text = os.environ.get(NOW_ENV)
    if text:
        try:
            return engine.parse_time(text)
        except ValueError:
            raise UsageError(
                f"{NOW_ENV}={text!r} is not an ISO-8601 time",
                hint=f"e.g. {NOW_ENV}=2026-11-23T09:00:00Z, or unset it",
            ) from None
    return datetime.now(UTC)


def parse_since(text: str | None, what: str = "--since") -> str | None:
    """A user's date or time filter as stored ISO-8601 UTC text."""
    if text is None:
        return None
    try:
        return engine.iso(engine.parse_time(text))
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is not a date or time",
            hint="use ISO-8601: 2026-11-23 or 2026-11-23T09:00:00Z",
        ) from None


def org_path(org: str | None = None, processes_dir: str | None = None) -> str:
    """The org directory's path: ``org``, else $FLOWCTL_ORG, else the workspace's."""
    return workspace.resolve(processes=processes_dir, org=org).org.value


def org_directory(
    org: str | None, processes_dir: str | None, ws: workspace.Workspace | None = None
) -> tuple[OrgDirectory, str]:
    """The org directory every part of a call uses, and its path (from ``ws``
    when the caller has resolved the workspace already)."""
    setting = (ws or workspace.resolve(processes=processes_dir, org=org)).org
    return load_org_setting(setting), setting.value


def _no_store(setting: workspace.Setting) -> StoreMissing:
    return StoreMissing(
        f"no store {'in' if is_url(setting.value) else 'at'} {workspace.describe(setting)}: "
        "nothing was started with it yet",
        hint="`flowctl start PROCESS` creates it; to use another one pass --db PATH, set "
             "FLOWCTL_DB or `store` in flowctl.toml (`flowctl config` shows what is used)",
    )


@contextmanager
def opened_store(
    db: str | None, store: Store | None, *, create: bool = False,
    ws: workspace.Workspace | None = None,
) -> Iterator[Store]:
    """The store, opened for one call. Only a call that starts an instance
    creates a missing one (``create``); the others refuse, saying where they
    looked: reading an empty folder leaves it empty."""
    if store is not None:
        yield store
        return

    setting = (ws or workspace.resolve(db=db)).store
    try:
        opened = open_store(setting.value, create=create, discard_unused=True)
    except StoreMissing:
        raise _no_store(setting) from None
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def readonly_store(db: str | None, *, live: bool = False) -> Iterator[ReadonlyStore]:
    """The store, opened only to read it (nothing is written beside a SQLite
    file; see :func:`flowctl.store.backends.open_readonly`); ``live`` reads a
    store others write to."""
    setting = workspace.resolve(db=db).store
    try:
        opened = open_readonly(setting.value, live=live)
    except StoreMissing:
        raise _no_store(setting) from None
    try:
        yield opened
    finally:
        opened.close()


class Context(TypedDict, total=False):
    """Where and as whom a runtime call acts. Every key is optional:

    - ``as_user``: else $FLOWCTL_USER, else the login name (must be in the org
      directory); under the workspace's ``identity = "login"`` (the default)
      someone other than the login name only for an admin (:mod:`flowctl.api.identity`)
    - ``db``: else $FLOWCTL_DB, else .flowctl/flowctl.db
    - ``org``: else $FLOWCTL_ORG, else <processes>/org.yaml
    - ``processes_dir``: else $FLOWCTL_PROCESSES, else processes
    - ``now``: else $FLOWCTL_NOW, else the system clock
    - ``store``: an open store to use instead of opening ``db``
    - ``loaded``: definitions read once (see :func:`session`), used instead of
      reading ``org`` and ``processes_dir`` (pass neither with it)
    - ``identity``: the identity policy to apply instead of the workspace's
      (``flowctl test`` runs its scenarios, in memory, under ``"trust"``)
    """

    as_user: str | None
    db: str | None
    org: str | None
    processes_dir: str | None
    now: datetime | None
    store: Store | None
    loaded: Loaded | None
    identity: str | None


class Loaded:
    """Definitions read once and reused by many calls: the org directory, the
    processes folder, and each process started by reference (with its exact
    text, which a start stores). Files changed after they were read are not
    seen through this object: open a new :func:`session` to see them."""

    def __init__(self, org: OrgDirectory, processes_dir: str | None, org_path: str) -> None:
        self.org = org
        self.processes_dir = processes_dir
        self.org_path = org_path
        self._processes: dict[str, tuple[Process, str]] = {}

    def process(self, ref: str) -> tuple[Process, str]:
        """The process ``ref`` (an id in the processes folder, or a file) and its
        text, read on first use (``DefinitionError`` if it does not lint clean)."""
        found = self._processes.get(ref)
        if found is None:
            found = _load_process(ref, self.processes_dir, self.org_path)
            self._processes[ref] = found
        return found

    def process_in(self, ref: str, path: str) -> tuple[Process, str]:
        """The process ``ref`` from the file ``path`` the caller found it in (many
        ids looked up in one scan of the folder), kept as ``ref`` too."""
        found = self._processes.get(ref)
        if found is None:
            found = self._processes[ref] = self.process(path)
        return found


def _load_process(ref: str, processes_dir: str | None, org: str) -> tuple[Process, str]:
    """A process and its text, checked against the org directory at ``org``."""
    # the text stored with an instance is exactly the text that was checked
    definition, source = load_process_text(ref, processes_dir=processes_dir, org=org)
    _PROCESSES.setdefault(digest_of(source), definition)
    return definition, source


class SessionContext(TypedDict):
    """What :func:`session` yields: the part of a :class:`Context` it fixes."""

    store: Store
    loaded: Loaded


@contextmanager
def session(
    *,
    db: str | None = None,
    org: str | None = None,
    processes_dir: str | None = None,
    store: Store | None = None,
) -> Iterator[SessionContext]:
    """Open the store and read the org directory once, for many calls.

    Yields ``store`` and ``loaded`` to pass to every call with ``**``; the
    acting user and the time stay per call. Processes are read on first use
    and kept. The store is closed on exit (unless ``store`` was given). Each
    call is still its own durable transaction.
    """
    directory, path = org_directory(org, processes_dir)
    loaded = Loaded(directory, processes_dir, path)
    with opened_store(db, store, create=True) as st:
        yield SessionContext(store=st, loaded=loaded)


class CallContext(Struct):
    store: Store
    org: OrgDirectory
    user: str
    now: datetime
    processes_dir: str | None  # as given: resolved where it is used
    org_path: str
    loaded: Loaded | None = None
    by: str | None = None  # an admin acting for ``user`` (identity = "login", --as)


def acting_for(s: CallContext) -> tuple[str, str] | None:
    """(user, admin) when an admin acts for ``user`` in this call, else None."""
    return (s.user, s.by) if s.by else None


@contextmanager
def acting(*, create: bool = False, **context: Unpack[Context]) -> Iterator[CallContext]:
    unknown = sorted(set(context) - set(Context.__annotations__))
    if unknown:  # what a signature with these keywords spelled out would raise
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}; the context keywords are "
            + ", ".join(Context.__annotations__)
        )
    loaded = context.get("loaded")
    if loaded is not None:
        if context.get("org") is not None or context.get("processes_dir") is not None:
            raise TypeError("pass either 'loaded' or 'org'/'processes_dir', not both")
    folder = context.get("processes_dir")
    # a call given its store, definitions and identity policy (flowctl test's
    # scenarios) has nothing to look up in the workspace
    given = context.get("store") is not None and loaded is not None and context.get("identity")
    ws = None if given else workspace.resolve(processes=folder, org=context.get("org"),
                                              db=context.get("db"))
    # the store first: a command in the wrong folder says there is no store there
    with opened_store(context.get("db"), context.get("store"), create=create, ws=ws) as st:
        if loaded is not None:
            directory, folder, path = loaded.org, loaded.processes_dir, loaded.org_path
        else:
            directory, path = org_directory(context.get("org"), folder, ws)
        policy = context.get("identity") or (ws or workspace.resolve()).identity.value
        who = resolve_acting(context.get("as_user"), directory, policy=policy,
                             db_login=st.login())
        moment = clock(context.get("now"))
        yield CallContext(st, directory, who.user, moment, folder, path, loaded, who.by)


# ------------------------------------------------------------ definitions
#
# The one in-process memo of definitions: built processes by the sha256 of
# their text (``digest_of``), for the life of the process (a text never
# changes under its digest). Behind it, the definition cache on disk
# (:mod:`flowctl.lint.cache`) keeps the data of every text that loaded clean,
# so that another process builds it without parsing (``load_stored``).

_PROCESSES: dict[str, Process] = {}


def digest_of(source: str) -> str:
    return sha256_hex(source.encode("utf-8"))


def process_from_source(source: str, display: str, digest: str | None = None) -> Process:
    """Build a Process from definition text (cached by digest, computed unless
    given; ``StoreError`` when it cannot be read)."""
    digest = digest or digest_of(source)
    cached = _PROCESSES.get(digest)
    if cached is not None:
        return cached

    try:
        process = load_stored(source, display)
    except DefinitionError as exc:
        raise StoreError(exc.message) from None
    _PROCESSES[digest] = process
    return process


def stored_process(store: Store, digest: str) -> Process:
    """The definition an instance runs on, from the store (cached by digest).

    Its digest proves it is the text that linted clean when an instance
    started on it. It is read by ``definitions.load_stored``: parsed and
    checked against the schema the first time, then built from the data the
    definition cache remembers (no YAML parser, no schema: ~25 ms of a command).
    """
    cached = _PROCESSES.get(digest)
    if cached is not None:
        return cached
    definition = store.get_definition(digest)
    if definition is None:
        raise StoreError(f"the definition {digest[:12]} of an instance is missing from the store")
    display = f"{definition.process_id}@{digest[:12]}"
    if digest_of(definition.source) != digest:
        raise StoreError(
            f"the stored definition {display} was changed after it was stored "
            "(its text no longer matches its digest)"
        )
    return process_from_source(definition.source, display, digest)


# ------------------------------------------------------------ conversion


def _to_row(inst: engine.Instance) -> InstanceRow:
    return InstanceRow(
        id=inst.id,
        process_id=inst.process_id,
        definition_digest=inst.definition_digest,
        status=inst.status,
        stage=inst.stage,
        initiator=inst.initiator,
        started_at=inst.started_at,
        updated_at=inst.updated_at,
        version=inst.version,
        due_at=inst.due_at,
        assignees=inst.assignees,
        parent_id=inst.parent_id,
        state=engine.dump_state(inst),
        timers=tuple(
            TimerRow(inst.id, t.key, t.kind, t.stage, t.at) for t in inst.timers
        ),
    )


def from_row(row: InstanceRow) -> engine.Instance:
    columns = {
        "id": row.id,
        "process_id": row.process_id,
        "definition_digest": row.definition_digest,
        "status": row.status,
        "stage": row.stage,
        "initiator": row.initiator,
        "started_at": row.started_at,
        "updated_at": row.updated_at,
        "version": row.version,
        "due_at": row.due_at,
        "assignees": row.assignees,
        "parent_id": row.parent_id,
    }
    return engine.load_instance(columns, row.state)


def _entries(inst: engine.Instance, events: tuple[engine.Event, ...],
             by: tuple[str, str] | None = None) -> list[JournalEntry]:
    """The journal entries of ``events``; ``by`` (user, admin): the entries that
    ``user`` acted in carry ``by``, the admin who acted for them."""
    return [
        JournalEntry(
            instance_id=inst.id,
            at=e.at,
            actor=e.actor,
            kind=e.kind,
            version=inst.version,
            stage=e.stage,
            result=e.result,
            data={**e.data, "by": by[1]} if by is not None and e.actor == by[0] else dict(e.data),
        )
        for e in events
    ]


def _waiting_for(inst: engine.Instance, org: OrgDirectory) -> str:
    if inst.status == engine.ACTIVE:
        return engine.describe_principals(inst.assignees, inst.labels, org)
    if inst.status == engine.PAUSED:
        until = [t.at for t in inst.timers if t.kind == engine.RESUME]
        return f"since {inst.paused_at}" + (f", resumes {until[0]}" if until else "")
    if inst.status == engine.WAITING:
        if inst.wake_at:
            return f"until {inst.wake_at}"
        pending = [c.instance_id or c.process for c in inst.children
                   if c.wait and c.status in ("pending", "running")]
        return f"for child process {', '.join(pending)}" if pending else "for a child process"
    return ""


def _branch_views(inst: engine.Instance, process: Process, org: OrgDirectory,
                  now: datetime) -> tuple[BranchView, ...]:
    fork = process.stage(inst.fork) if inst.fork else None
    labels = {b.name: b.label or b.name for b in fork.forks} if fork else {}
    out = []
    for b in inst.branches:
        seen = engine.focused(inst, b.name)
        stage = process.stage(b.stage) if b.stage else None
        out.append(BranchView(
            name=b.name, label=labels.get(b.name, b.name), status=b.status, stage=b.stage,
            stage_name=stage.label if stage else None, stage_state=b.stage_state,
            assignees=b.assignees, waiting_for=_waiting_for(seen, org) if b.live else "",
            due_at=b.due_at,
            overdue=bool(b.due_at and b.status == engine.ACTIVE and b.due_at < engine.iso(now)),
        ))
    return tuple(out)


def view(inst: engine.Instance, process: Process, org: OrgDirectory, now: datetime,
         branch: str | None = None) -> InstanceView:
    """The person-facing view of an engine instance (``branch``: as that
    branch of its open parallel stage sees it)."""
    branches = _branch_views(inst, process, org, now) if inst.fork else ()
    if branch is not None:
        inst = engine.focused(inst, branch)
    stage = process.stage(inst.stage) if inst.stage else None
    due = inst.due_at
    return InstanceView(
        id=inst.id,
        process_id=inst.process_id,
        process_name=process.name,
        definition=inst.definition_digest,
        version=inst.version,
        status=inst.status,
        initiator=inst.initiator,
        started_at=inst.started_at,
        updated_at=inst.updated_at,
        stage=inst.stage,
        stage_name=stage.label if stage else None,
        stage_kind=stage.kind.value if stage else None,
        phase=stage.phase if stage else None,
        stage_state=inst.stage_state,
        assignees=inst.assignees,
        waiting_for=_waiting_for(inst, org),
        due_at=due,
        overdue=bool(due and inst.status == engine.ACTIVE and due < engine.iso(now)),
        record=dict(inst.record),
        note=inst.note,
        links=inst.links,
        votes=inst.votes,
        outcome=inst.outcome,
        last_stage=inst.last_stage,
        wake_at=inst.wake_at,
        parent_id=inst.parent_id,
        children=inst.children,
        timers=inst.timers,
        tasks=inst.tasks,
        paused_at=inst.paused_at,
        attachments=inst.attachments,
        watchers=inst.watchers,
        branches=branches,
        branch=branch,
    )


# ------------------------------------------------------------ writes


class Definitions:
    """The definitions a write may need, loaded before the write lock: child
    processes from the processes folder (by id), stored ones by digest."""

    def __init__(self, processes_dir: str | None, org_path: str,
                 loaded: Loaded | None = None) -> None:
        self.processes_dir = processes_dir
        self.org_path = org_path
        self.loaded = loaded
        self.by_id: dict[str, tuple[Process, str]] = {}  # process id -> (process, source)

    def add(self, process: Process, source: str) -> None:
        self.by_id.setdefault(process.id, (process, source))

    def preload_children(self, process: Process) -> None:
        """Every process a subprocess stage can start, transitively."""
        todo = [process]
        while todo:
            current = todo.pop()
            for stage in current.stages:
                name = stage.process
                if stage.kind is not StageKind.SUBPROCESS or not name:
                    continue
                if name not in self.by_id:
                    todo.append(self.child(name))

    def child(self, process_id: str) -> Process:
        found = self.by_id.get(process_id)
        if found is not None:
            return found[0]
        try:
            if self.loaded is not None:
                found = self.loaded.process(process_id)
            else:
                found = _load_process(process_id, self.processes_dir, self.org_path)
        except UsageError as exc:
            raise engine.Refused(
                f"cannot start child process '{process_id}': {exc.message}",
                hint=f"put {process_id}.yaml in {processes_path(self.processes_dir)}",
            ) from None
        self.by_id[process_id] = found
        return found[0]

    def source(self, process_id: str) -> str:
        return self.by_id[process_id][1]

    @staticmethod
    def has_related(row: InstanceRow, process: Process) -> bool:
        """Whether a step of this instance may need other definitions: its
        parent's, its children's, or those of the processes it can start."""
        return bool(row.parent_id) or process.starts_children

    def preload_related(self, store: Store, row: InstanceRow, process: Process) -> None:
        """The parent's and the children's stored definitions, and the
        processes this one can start as children."""
        if row.parent_id:
            parent = store.get_instance(row.parent_id)
            if parent is not None:
                stored_process(store, parent.definition_digest)
        if process.starts_children:
            for child in store.list_instances(InstanceFilter(parent_id=row.id)):
                stored_process(store, child.definition_digest)
            self.preload_children(process)


def _merge(first: engine.Transition, then: engine.Transition, stage: str) -> engine.Transition:
    """Two transitions of one instance as one version (the second's state); the
    second's events go right after the first's entry into ``stage``."""
    inst = replace(then.instance, version=first.instance.version)
    events = list(first.events)
    at = len(events)
    for i, e in enumerate(events):
        if e.kind == "stage_entered" and e.stage == stage:
            at = i + 1
    while at < len(events) and events[at].stage == stage and events[at].kind in (
        "event", "task_created", "task_scheduled"
    ):
        at += 1
    events[at:at] = then.events
    return engine.Transition(inst, tuple(events), first.notices + then.notices)


def with_workload(ctx: engine.Context, tx: Transaction, process: Process,
                  instance_id: str | None = None) -> engine.Context:
    """``ctx`` with what ``pick`` reads, in the write transaction, when
    ``process`` picks: the open stages each user holds (but those of
    ``instance_id``, the instance being moved on), and each pool's last pick."""
    if not process.picks:
        return ctx
    users = sorted({u for a in process.least_loaded_pools()
                    for u in engine.pool_members(ctx.org, a)})
    load = tx.open_load(users, excluding=instance_id) if users else {}
    return replace(ctx, workload=engine.Workload(load=load, turns=tx.pick_turns()))


class Writer:
    """Writes transitions inside one transaction, with what follows from them
    in the same transaction: children a stage needs are started, a parent
    waiting for a finished child goes on, the waited-for children of a
    cancelled instance are cancelled. ``written`` collects the journal entries."""

    def __init__(self, tx: Transaction, store: Store, org: OrgDirectory, now: datetime,
                 procs: Definitions, by: tuple[str, str] | None = None) -> None:
        self.by = by  # (user, admin): an admin acting for user; their entries say so
        self.tx = tx
        self.store = store
        self.org = org
        self.now = now
        self.procs = procs
        self.written: list[JournalEntry] = []

    @property
    def system(self) -> engine.Context:
        return engine.Context(engine.SYSTEM_ACTOR, self.org, self.now)

    def insert(self, process: Process, step: engine.Transition) -> engine.Instance:
        step, children = self._start_children(process, step)
        source = self.procs.source(process.id) if process.id in self.procs.by_id else None
        if source is not None:
            names = json.dumps({"process": process.name, "stages": {
                st.id: st.name for st in process.stages if st.name}}, ensure_ascii=False)
            self.tx.put_definition(Definition(
                step.instance.definition_digest, process.id, source, engine.iso(self.now), names
            ))
        self.tx.insert_instance(_to_row(step.instance))
        self._journal(step)
        return self._after(process, step, children)

    def update(self, process: Process, step: engine.Transition, expected: int) -> engine.Instance:
        step, children = self._start_children(process, step)
        self.tx.update_instance(_to_row(step.instance), expected_version=expected)
        self._journal(step)
        return self._after(process, step, children)

    def _journal(self, step: engine.Transition) -> None:
        inst = step.instance
        for pool, user in step.picks:
            self.tx.set_pick_turn(pool, user, at=engine.iso(self.now))
        self.written += self.tx.append_journal(_entries(inst, step.events, self.by))
        if step.notices:
            self.tx.add_notifications([
                NotificationRow(inst.id, n.user, n.kind, n.message, engine.iso(self.now),
                                stage=n.stage, subject=n.subject)
                for n in step.notices
            ])

    def _start_children(
        self, process: Process, step: engine.Transition
    ) -> tuple[engine.Transition, list[tuple[Process, engine.Transition]]]:
        children: list[tuple[Process, engine.Transition]] = []
        for c in step.instance.children:
            if c.status != "pending" or c.instance_id is not None:
                continue
            child = self.procs.child(c.process)
            digest = digest_of(self.procs.source(c.process))
            child_id = self.tx.new_instance_id(child.id)
            values = {k: v for k, v in c.inputs.items() if v is not None}
            started = engine.start(
                child, engine.Start(values=values), with_workload(self.system, self.tx, child),
                instance_id=child_id,
                digest=digest, parent_id=step.instance.id, initiator=step.instance.initiator,
            )
            children.append((child, started))
            then = engine.apply(process, step.instance,
                                engine.ChildStarted(c.stage, child_id, child.id), self.system)
            step = _merge(step, then, c.stage)
        return step, children

    def _after(self, process: Process, step: engine.Transition,
               children: list[tuple[Process, engine.Transition]]) -> engine.Instance:
        inst = step.instance
        for child, started in children:
            self.insert(child, started)
        if children:  # a child that ended at once may have moved this instance on
            row = self.tx.get_instance(inst.id)
            inst = from_row(row) if row is not None else inst
        for e in step.events:
            if e.kind == "cancelled":
                for child_id in e.data.get("children_cancelled") or ():
                    self._cancel_child(child_id, inst.id)
        if inst.finished and inst.parent_id:
            self._tell_parent(inst)
        return inst

    def _cancel_child(self, child_id: str, parent_id: str) -> None:
        row = self.tx.get_instance(child_id)
        if row is None or row.status in engine.FINISHED:
            return
        process = stored_process(self.store, row.definition_digest)
        cmd = engine.Cancel(reason=f"parent {parent_id} was cancelled", by_parent=parent_id)
        self.update(process, engine.apply(process, from_row(row), cmd, self.system),
                    row.version)

    def _tell_parent(self, child: engine.Instance) -> None:
        row = self.tx.get_instance(child.parent_id or "")
        if row is None or row.status in engine.FINISHED:
            return
        process = stored_process(self.store, row.definition_digest)
        cmd = engine.ChildEnded(child.id, child.status, child.last_stage, child.outcome)
        try:
            step = engine.apply(process, from_row(row), cmd, self.system)
        except engine.Refused:
            return  # not a child this parent knows
        self.update(process, step, row.version)


def start(
    process: str,
    *,
    values: Mapping[str, Any] | None = None,
    note: str | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Start an instance of ``process`` (an id in the processes folder, or a file).

    Checks that the user may start it and that the values fit their fields,
    stores the exact definition text, enters the start stage and runs
    automatic stages until a person, time or a child process is needed.
    """
    loaded = context.get("loaded")
    if loaded is not None:
        definition, source = loaded.process(process)
        processes_dir, path = loaded.processes_dir, loaded.org_path
    else:
        processes_dir = context.get("processes_dir")
        # refuses a missing or broken org directory before the process is read
        _, path = org_directory(context.get("org"), processes_dir)
        definition, source = _load_process(process, processes_dir, path)
    digest = digest_of(source)
    procs = Definitions(processes_dir, path, loaded)
    procs.add(definition, source)
    procs.preload_children(definition)
    with acting(create=True, **context) as s:
        ctx = engine.Context(s.user, s.org, s.now)
        command = engine.Start(values=dict(values or {}), note=note)
        with s.store.transaction() as tx:
            instance_id = tx.new_instance_id(definition.id)
            ctx = with_workload(ctx, tx, definition)
            step = engine.start(definition, command, ctx, instance_id=instance_id, digest=digest)
            writer = Writer(tx, s.store, s.org, s.now, procs, acting_for(s))
            final = writer.insert(definition, step)
        return StepResult(view(final, definition, s.org, s.now), tuple(writer.written))


UNKNOWN_CANDIDATES = 2000  # the newest instances an unknown id is compared with


def _unknown(instance_id: str, store: Store) -> UnknownInstance:
    """No such instance: the hint names an id of this store (the closest one, else
    the newest), or says that nothing was started in it yet."""
    import difflib

    ids = [row.id for row in store.list_instances(InstanceFilter(limit=UNKNOWN_CANDIDATES))]
    if not ids:
        return UnknownInstance(
            f"no instance '{instance_id}': no instance was started in this store yet",
            hint="start one with `flowctl start PROCESS`",
        )
    close = difflib.get_close_matches(instance_id, ids, n=1)
    if close:
        return UnknownInstance(
            f"no instance '{instance_id}'; did you mean '{close[0]}'?",
            hint="`flowctl list` shows the instances",
        )
    return UnknownInstance(
        f"no instance '{instance_id}'",
        hint=f"`flowctl list` shows the instances (the newest is {ids[0]})",
    )


def _act(
    instance_id: str,
    command: engine.Command,
    *,
    expect_version: int | None = None,
    content: bytes | None = None,
    see: bool = False,
    **context: Unpack[Context],
) -> StepResult:
    """``see``: the command needs the user to see the instance (note, link, attach)."""
    with acting(**context) as s:
        procs = Definitions(s.processes_dir, s.org_path, s.loaded)
        ctx = engine.Context(s.user, s.org, s.now)
        prepared: str | None = None  # the digest whose related definitions are loaded
        while True:
            with s.store.transaction() as tx:
                row = tx.get_instance(instance_id)
                if row is None:
                    raise _unknown(instance_id, s.store)
                if see:
                    check_visible(s, row)
                process = _PROCESSES.get(row.definition_digest)
                if process is not None and (
                    prepared == row.definition_digest or not Definitions.has_related(row, process)
                ):
                    return _step(s, tx, procs, ctx, row, process, command, expect_version,
                                 content)
            # Nothing was written: read and parse what the step needs outside the
            # write lock, then take the lock again and read the instance afresh.
            process = stored_process(s.store, row.definition_digest)
            procs.preload_related(s.store, row, process)
            prepared = row.definition_digest


def _step(
    s: CallContext,
    tx: Transaction,
    procs: Definitions,
    ctx: engine.Context,
    row: InstanceRow,
    process: Process,
    command: engine.Command,
    expect_version: int | None,
    content: bytes | None = None,
) -> StepResult:
    """One command on one instance, inside the write transaction (``content``:
    the bytes of the file an Attach command attaches)."""
    if expect_version is not None and row.version != expect_version:
        raise ConflictError(
            f"instance {row.id} is at version {row.version}, not {expect_version}"
            " (--expect-version); nothing was written",
            hint=f"look at it again (flowctl show {row.id}) and retry",
        )
    step = engine.apply(process, from_row(row), command, with_workload(ctx, tx, process, row.id))
    writer = Writer(tx, s.store, s.org, s.now, procs, acting_for(s))
    final = writer.update(process, step, row.version)
    if content is not None:
        store_attachments(tx, step, content)
    return StepResult(view(final, process, s.org, s.now), tuple(writer.written))


def store_attachments(tx: Transaction, step: engine.Transition, content: bytes) -> None:
    """The bytes of what the step attached, in the step's transaction."""
    added = {(e.data.get("name"), e.data.get("version"))
             for e in step.events if e.kind == "attached"}
    for a in step.instance.attachments:
        if (a.name, a.version) in added:
            tx.add_attachment(AttachmentRow(step.instance.id, a.name, a.version, a.sha256,
                                            a.size, a.by, a.at), content)


def advance(
    instance: str,
    *,
    result: str,
    values: Mapping[str, Any] | None = None,
    comment: str | None = None,
    expect_version: int | None = None,
    next_assignee: str | None = None,
    stage: str | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Report ``result`` at the instance's current stage and move it on
    (``stage``: which one, while parallel branches have several)."""
    command = engine.Advance(
        result=result, values=dict(values or {}), comment=comment, next_assignee=next_assignee,
        stage=stage,
    )
    return _act(
        instance, command, expect_version=expect_version, **context
    )


def begin(
    instance: str,
    *,
    expect_version: int | None = None,
    stage: str | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Mark the current stage (``stage``, among parallel branches) as in progress."""
    return _act(
        instance, engine.Begin(stage), expect_version=expect_version, **context
    )


def reassign(
    instance: str,
    *,
    user: str,
    comment: str | None = None,
    expect_version: int | None = None,
    stage: str | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Give the current stage (``stage``, among parallel branches) to ``user``
    (by its assignee or an admin)."""
    return _act(
        instance, engine.Reassign(user, comment, stage), expect_version=expect_version,
        **context
    )


def note(
    instance: str,
    *,
    text: str,
    append: bool = False,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Replace the running note (or append a line to it with ``append``)."""
    return _act(
        instance, engine.Note(text, append), expect_version=expect_version, see=True, **context
    )


def link(
    instance: str,
    *,
    kind: str,
    ref: str,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Link the instance to a document: ``kind`` (invoice, order...) and ``ref``."""
    return _act(
        instance, engine.Link(kind, ref), expect_version=expect_version, see=True, **context
    )


ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024  # 10 MiB: the store keeps the bytes in SQLite


class AttachmentTooLarge(FlowctlError):
    """A file above the attachment cap (exit 1)."""


class UnknownAttachment(UsageError):
    """No attachment of that name (or version) on the instance (exit 2)."""


def _mib(size: int) -> str:
    mib = size / (1024 * 1024)
    return f"{mib:.0f} MiB ({size} bytes)" if mib.is_integer() else f"{mib:.1f} MiB ({size} bytes)"


def read_attachment(path: str, *, limit: int = ATTACHMENT_MAX_BYTES) -> bytes:
    """A file's bytes, refused above ``limit`` before more than that is read."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise _too_large(path, size, limit)
            content = fh.read(limit + 1)
    except IsADirectoryError:
        raise UsageError(f"cannot attach {path}: it is a directory; attach a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(content) > limit:  # grew, or a pipe whose size is unknown
        raise _too_large(path, limit, limit, more=True)
    return content


def _too_large(path: str, size: int, limit: int, *, more: bool = False) -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"cannot attach {path}: it is {'more than ' if more else ''}{_mib(size)};"
        f" attachments are limited to {_mib(limit)}; nothing was written",
        hint="attach a smaller file, or link to where the file is kept"
        " (flowctl link INSTANCE KIND REF)",
    )


def attach(
    instance: str,
    *,
    path: str,
    name: str | None = None,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Attach the file at ``path`` (as ``name``, else its file name): its bytes
    are kept in the store under their SHA-256, journalled as ``attached``.
    Refused above ATTACHMENT_MAX_BYTES. The same name again adds a version."""
    content = read_attachment(path)
    command = engine.Attach(
        name if name is not None else os.path.basename(path), len(content), sha256_hex(content)
    )
    return _act(instance, command, expect_version=expect_version, content=content, see=True,
                **context)


def share(
    instance: str,
    user: str,
    *,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Let ``user`` see the instance (a watcher, told its outcome too): by its
    initiator or an admin, journalled as ``shared``."""
    return _act(instance, engine.Share(user), expect_version=expect_version, **context)


def unshare(
    instance: str,
    user: str,
    *,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Take back a share: ``user`` is no longer a watcher (journalled as ``unshared``)."""
    return _act(instance, engine.Unshare(user), expect_version=expect_version, **context)


def attachment(
    instance: str,
    name: str,
    *,
    version: int | None = None,
    **context: Unpack[Context],
) -> tuple[AttachmentRow, bytes]:
    """An attachment of the instance and its bytes: the latest version of
    ``name``, or ``version``. The bytes are checked against their SHA-256."""
    with acting(**context) as s:
        row = s.store.get_instance(instance)
        if row is None:
            raise _unknown(instance, s.store)
        check_visible(s, row)
        rows = s.store.attachments(instance)
        same = [a for a in rows if a.name == name]
        if not same:
            names = sorted({a.name for a in rows})
            raise UnknownAttachment(
                f"{instance} has no attachment '{name}'"
                + (f"; it has: {', '.join(names)}" if names else "; it has none"),
                hint=f"`flowctl show {instance}` lists its attachments",
            )
        chosen = same[-1] if version is None else next(
            (a for a in same if a.version == version), None)
        if chosen is None:
            raise UnknownAttachment(
                f"{instance} has no version {version} of '{name}'; versions: "
                + ", ".join(str(a.version) for a in same),
            )
        content = s.store.attachment_content(chosen.sha256)
        if content is None or sha256_hex(content) != chosen.sha256:
            raise StoreError(
                f"the stored bytes of '{name}' (version {chosen.version}) of {instance}"
                " do not match their SHA-256; nothing was written",
                hint="run `flowctl journal verify` and restore the store from a backup",
            )
        return chosen, content


def cancel(
    instance: str,
    *,
    reason: str | None = None,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Cancel a running instance (its initiator or an admin)."""
    return _act(
        instance, engine.Cancel(reason), expect_version=expect_version, **context
    )


def pause(
    instance: str,
    *,
    duration: str | None = None,
    reason: str | None = None,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Pause an instance (its assignee, initiator or an admin); with
    ``duration`` ("30d") a later tick resumes it. No timer fires while paused."""
    return _act(
        instance, engine.Pause(duration, reason), expect_version=expect_version,
        **context
    )


def resume(
    instance: str,
    *,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Resume a paused instance; its timers and due time move later by the pause."""
    return _act(
        instance, engine.Resume(), expect_version=expect_version, **context
    )


def task_done(
    instance: str,
    task: str,
    *,
    comment: str | None = None,
    expect_version: int | None = None,
    **context: Unpack[Context],
) -> StepResult:
    """Mark a task of the current stage done (its assignee or an admin)."""
    return _act(
        instance, engine.TaskDone(task, comment), expect_version=expect_version,
        **context
    )


# ------------------------------------------------------------ reads


def _card(s: CallContext, row: InstanceRow) -> InstanceCard:
    process = stored_process(s.store, row.definition_digest)
    inst = from_row(row)
    fields = tuple(
        FieldValue(f.name, f.label or f.name, f.type.value, inst.record.get(f.name))
        for f in process.fields
    )
    history = tuple(s.store.journal(JournalFilter(instance_id=row.id)))
    children = tuple(views_of(s, InstanceFilter(parent_id=row.id, oldest_first=True)))
    return InstanceCard(view(inst, process, s.org, s.now), fields, history, children)


def show(
    instance: str,
    **context: Unpack[Context],
) -> InstanceCard:
    """The instance card: the instance, its record fields and its history."""
    with acting(**context) as s:
        row = s.store.get_instance(instance)
        if row is None:
            raise _unknown(instance, s.store)
        check_visible(s, row)
        return _card(s, row)


def get(
    instance: str,
    **context: Unpack[Context],
) -> InstanceView:
    """One instance, without its history."""
    return show(
        instance, **context
    ).instance


PATH_KINDS = ("stage_entered", "decision", "completed")


def path_taken(card: InstanceCard) -> list[str]:
    """The stages the instance went through, oldest first (repeats kept):
    stages entered, decisions taken, and the end it completed at."""
    out: list[str] = []
    for e in card.history:
        if e.kind in PATH_KINDS and e.stage and (not out or out[-1] != e.stage):
            out.append(e.stage)
    return out


def definition(
    instance: str, *, db: str | None = None, store: Store | None = None
) -> Process:
    """The exact definition the instance runs on (stored when it started)."""
    with opened_store(db, store) as st:
        row = st.get_instance(instance)
        if row is None:
            raise _unknown(instance, st)
        return stored_process(st, row.definition_digest)


def may_see(s: CallContext, row: InstanceRow) -> bool:
    """Whether the acting user may see the instance (:mod:`flowctl.api.access`)."""
    if access.by_row(s.user, row, s.org):
        return True
    return access.by_journal(s.user, list(s.store.journal(JournalFilter(instance_id=row.id))),
                             s.org)


def check_visible(s: CallContext, row: InstanceRow) -> None:
    """Refuse (exit 1) an instance the acting user may not see, naming who may share it."""
    if not may_see(s, row):
        raise access.refusal(s.user, row, s.org)


def views_of(s: CallContext, flt: InstanceFilter) -> list[InstanceView]:
    out = []
    for row in s.store.list_instances(flt):
        process = stored_process(s.store, row.definition_digest)
        out.append(view(from_row(row), process, s.org, s.now))
    return out


def inbox(
    *,
    limit: int | None = None,
    **context: Unpack[Context],
) -> list[InstanceView]:
    """What waits for the user: active stages where they are an assignee,
    directly or through a role, and not excluded from (the initiator of their
    own approval, ``exclude``); oldest first."""
    with acting(**context) as s:
        principals = engine.principals_of(s.user, s.org)
        flt = InstanceFilter(
            status=(engine.ACTIVE,), principals=principals, limit=limit, oldest_first=True
        )
        out = []
        for row in s.store.list_instances(flt):
            process = stored_process(s.store, row.definition_digest)
            inst = from_row(row)
            if inst.fork is not None:  # each active branch the user holds, on its own row
                out += [view(inst, process, s.org, s.now, branch=b.name)
                        for b in inst.branches if b.status == engine.ACTIVE
                        and _waits_for(engine.focused(inst, b.name), process, s)]
                continue
            if _waits_for(inst, process, s):
                out.append(view(inst, process, s.org, s.now))
        return out


def _waits_for(inst: engine.Instance, process: Process, s: CallContext) -> bool:
    """Whether the instance's stage is the user's: they hold it and are not excluded."""
    if not any(engine.holds(s.user, p, s.org) for p in inst.assignees):
        return False
    stage = process.stage(inst.stage or "")
    return stage is None or engine.excluded(inst, stage, s.user) is None


def _several(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A filter's values, each once: none, one (a string) or several."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(dict.fromkeys(value))


def record_condition(store: Store, where: str, processes: Sequence[str] = ()) -> Condition:
    """``--where``: a condition over record fields, checked like a decision's
    against every stored definition of the processes asked about (all when
    none are named): each field it reads must exist in one of them, and it
    must type-check in each definition that has all its fields."""
    try:
        cond = conditions.parse(where)
    except conditions.ConditionError as exc:
        raise UsageError(
            f"--where {where!r}: {exc.problem.message} (at character {exc.problem.offset + 1})",
            hint="see docs/conditions.md; e.g. --where 'record.amount > 100000'",
        ) from None
    versions = [stored_process(store, digest) for pid, digest in store.definition_digests()
                if not processes or pid in processes]
    known = {f.name for p in versions for f in p.fields}
    scope = ", ".join(processes) if processes else "any process in the store"
    for name in sorted(conditions.field_names(cond) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        raise UsageError(
            f"--where {where!r}: no field '{name}' in {scope}",
            hint=f"did you mean 'record.{close[0]}'?" if close
            else "fields: " + (", ".join(sorted(known)) or "(none: no instances yet)"),
        )
    for version in versions:
        fields = {f.name: f for f in version.fields}
        if conditions.field_names(cond) <= set(fields):
            for problem in conditions.check(cond, fields):
                raise UsageError(f"--where {where!r}: {problem.message} "
                                 f"(process {version.id}, {problem.code})")
    return cond


def _holds(cond: Condition, row: InstanceRow) -> bool:
    """Whether the instance's record satisfies ``cond``; a record whose
    values cannot decide it (a field with no value yet) does not."""
    try:
        return conditions.evaluate(cond, row.state.get("record") or {})
    except conditions.ConditionEvalError:
        return False


def list_instances(
    *,
    status: tuple[str, ...] | list[str] = (),
    process: str | Sequence[str] | None = None,
    assignee: str | Sequence[str] | None = None,
    since: str | None = None,
    limit: int | None = None,
    where: str | None = None,
    search: str | None = None,
    **context: Unpack[Context],
) -> list[InstanceView]:
    """Instances, newest first. Filters combine; a filter given several values
    (statuses, processes, assignees) matches any of them.

    ``where`` keeps the instances whose record satisfies a condition (the
    language of decisions: ``record.amount > 100000``); ``search`` keeps those
    whose process or stage names, record text, note or comments contain every
    word, best match first (the store's full-text index)."""
    for st in status:
        if st not in STATUSES:
            raise UsageError(f"unknown status '{st}'; statuses: {', '.join(STATUSES)}")
    if search is not None and not search.split():
        raise UsageError("--search needs a word to look for", hint="e.g. --search ACME")
    processes = _several(process)
    if where is not None or search is not None:
        with acting(**context) as s:
            return _filtered(s, status, processes, assignee, since, limit, where, search)
    with acting(**context) as s:
        principals: tuple[str, ...] = ()
        for user in _several(assignee):
            if s.org.user(user) is None:
                raise UsageError(f"--assignee {user}: no such user in the org directory")
            principals += engine.principals_of(user, s.org)
        everything = access.sees_all(s.user, s.org)
        flt = InstanceFilter(
            status=tuple(status),
            process_id=processes[0] if len(processes) == 1 else None,
            principals=tuple(dict.fromkeys(principals)),
            started_since=parse_since(since),
            limit=limit if everything else None,  # others: cut after leaving out the unseen
        )
        if len(processes) < 2 and everything:
            return views_of(s, flt)
        # one query per process (each on its index, cut at the limit), merged
        rows = [row for p in processes or (None,)
                for row in s.store.list_instances(replace(flt, process_id=p or flt.process_id))]
        if len(processes) > 1:
            rows.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        if not everything:
            rows = [row for row in rows if may_see(s, row)]
        return [
            view(from_row(row), stored_process(s.store, row.definition_digest), s.org, s.now)
            for row in rows[:limit]
        ]


def _filtered(
    s: CallContext, status: Sequence[str], processes: tuple[str, ...],
    assignee: str | Sequence[str] | None, since: str | None, limit: int | None,
    where: str | None, search: str | None,
) -> list[InstanceView]:
    """``list`` with ``--where`` or ``--search``: rows streamed from the store
    (ranked by the index for a search), each kept when the user may see it and
    it passes the record condition and the assignee filter, up to ``limit``."""
    cond = record_condition(s.store, where, processes) if where is not None else None
    principals: set[str] = set()
    for user in _several(assignee):
        if s.org.user(user) is None:
            raise UsageError(f"--assignee {user}: no such user in the org directory")
        principals.update(engine.principals_of(user, s.org))
    everything = access.sees_all(s.user, s.org)
    flt = InstanceFilter(status=tuple(status), started_since=parse_since(since))
    if search is not None:  # one ranked query; several processes filtered here
        one = replace(flt, process_id=processes[0] if len(processes) == 1 else None)
        streams = [s.store.search_instances(search, one)]
    else:  # one query per process, each newest first, merged below
        streams = [s.store.list_instances(replace(flt, process_id=p))
                   for p in processes or (None,)]
    out: list[InstanceView] = []
    for rows in streams:
        kept = 0
        for row in rows:
            if processes and row.process_id not in processes:
                continue
            if principals and not principals.intersection(row.assignees):
                continue
            if cond is not None and not _holds(cond, row):
                continue
            if not everything and not may_see(s, row):
                continue
            out.append(view(from_row(row), stored_process(s.store, row.definition_digest),
                            s.org, s.now))
            kept += 1
            if limit is not None and kept >= limit:
                break
    if len(streams) > 1:
        out.sort(key=lambda v: (v.started_at, v.id), reverse=True)
    return out[:limit]


def journal(
    instance: str | None = None,
    *,
    process: str | Sequence[str] | None = None,
    actor: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    as_viewer: bool = False,
    **context: Unpack[Context],
) -> Iterator[JournalEntry]:
    """Journal entries, oldest first, streamed from the store.

    ``since`` and ``until`` are ISO-8601 dates or times (``until`` exclusive).
    ``process`` and ``actor`` may each be several: an entry matches any of them.
    With ``as_viewer`` (what ``flowctl journal`` does), only the entries of
    instances the acting user may see (admins and auditors: all), and an
    ``instance`` they may not see is refused (:mod:`flowctl.api.access`);
    without it, every entry (the program calling it reads the store itself), and
    no user is needed. Iterate it to the end (or close it) to release the database.
    """
    base = JournalFilter(
        instance_id=instance,
        since=parse_since(since),
        until=parse_since(until, "--until"),
    )
    flts = [
        replace(base, process_id=p, actor=a)
        for p in _several(process) or (None,)
        for a in _several(actor) or (None,)
    ]
    if not as_viewer:
        return _stream_all(flts, instance, context.get("db"), context.get("store"))
    return _stream(flts, instance, context)


def _merged(st: Store, flts: list[JournalFilter]) -> Iterator[JournalEntry]:
    if len(flts) == 1:
        return st.journal(flts[0])
    # an entry has one process and one actor: the streams do not overlap
    import heapq

    return heapq.merge(*(st.journal(f) for f in flts), key=lambda e: e.seq or 0)


def _stream_all(
    flts: list[JournalFilter], instance: str | None, db: str | None, store: Store | None
) -> Iterator[JournalEntry]:
    with opened_store(db, store) as st:
        if instance is not None and st.get_instance(instance) is None:
            raise _unknown(instance, st)
        yield from _merged(st, flts)


def _stream(
    flts: list[JournalFilter], instance: str | None, context: Context
) -> Iterator[JournalEntry]:
    with acting(**context) as s:
        st = s.store
        everything = access.sees_all(s.user, s.org)
        if instance is not None:
            row = st.get_instance(instance)
            if row is None:
                raise _unknown(instance, st)
            check_visible(s, row)
            everything = True  # every entry of an instance they may see
        entries = _merged(st, flts)
        if everything:
            yield from entries
            return
        seen: dict[str, bool] = {}
        for e in entries:
            if e.instance_id == STORE_ENTRY_ID:  # about the store (db repair): for everyone
                yield e
                continue
            visible = seen.get(e.instance_id)
            if visible is None:
                row = st.get_instance(e.instance_id)
                visible = seen[e.instance_id] = row is not None and may_see(s, row)
            if visible:
                yield e


def verify_journal(
    *,
    db: str | None = None,
    store: Store | None = None,
    checkpoints: Sequence[tuple[int, Checkpoint]] = (),
    key: bytes | None = None,
) -> VerifyReport:
    """Check the journal: ``ok``, or the problems and where they are (see
    :meth:`flowctl.store.base.Store.verify_journal`). The store is opened only to
    read (:func:`readonly_store`): a copy in a read-only folder can be verified."""
    if store is not None:
        return with_attachments(store.verify_journal(checkpoints, key), store)
    for live in (False, True):
        with readonly_store(db, live=live) as st:
            report = with_attachments(st.verify_journal(checkpoints, key), st)
            if live or not st.changed_since_open():
                return report
    raise AssertionError("unreachable")  # pragma: no cover


def with_attachments(report: VerifyReport, st: Store) -> VerifyReport:
    """The journal's report with every attachment's check added: its bytes
    against its SHA-256 and size, and against the journal's ``attached`` entry."""
    _, problems = st.verify_attachments()
    if not problems:
        return report
    return replace(report, ok=False, problems=(*report.problems, *problems))

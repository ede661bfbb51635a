"""The storage contract between the engine side (api) and a store backend.

The engine never imports a backend and a backend never imports the engine:
``flowctl.api`` opens a store, reads inside ``store.transaction()``, asks the
pure engine for the new instance state and journal entries, and writes them
in the same transaction. SQLite (``flowctl.store.sqlite``) is the backend
today; every SQL statement lives there, so another backend (PostgreSQL) can
implement this same protocol later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

import msgspec
from msgspec import Struct

from flowctl.errors import FlowctlError
from flowctl.store.analytics import ReportData, ReportFilter, WorkingSeconds


class StoreError(FlowctlError):
    """The store cannot be opened or used (newer schema, corrupt file...)."""

    exit_code = 4


class StoreMissing(StoreError):
    """There is no store at the path: commands that only read never create one."""


class ConflictError(FlowctlError):
    """The instance changed since the caller read it (``--expect-version``),
    or a concurrent writer won; nothing was written."""

    exit_code = 5


class Definition(Struct, frozen=True):
    """The exact definition an instance runs on, content-addressed."""

    digest: str  # sha256 hex of ``source``
    process_id: str
    source: str  # the YAML text as it was when the instance started
    stored_at: str  # ISO-8601 UTC
    # for full-text search: JSON {"process": its name, "stages": {stage id: name}}
    names: str = "{}"


class TimerRow(Struct, frozen=True):
    """A timer of an instance, as the ``timers`` table indexes it. The store
    keeps the table equal to the instance's pending timers on every insert
    and update of the instance (same transaction): a pending row missing from
    the new row's ``timers`` becomes ``void``; ``fired`` is set by
    ``Transaction.mark_timer`` when tick fires it."""

    instance_id: str
    key: str  # unique within the instance
    kind: str  # wake | due | escalation | task | resume
    stage: str
    due_at: str  # ISO-8601 UTC
    status: str = "pending"  # pending | fired | void
    fired_at: str | None = None


class NotificationRow(Struct, frozen=True):
    """A notification for one user. Delivered only once every channel of the
    user took it (``delivered_at``; ``channels_done`` lists those that did);
    failures count ``attempts``, keep ``last_error`` and wait until
    ``next_attempt_at``."""

    instance_id: str
    user: str
    kind: str
    message: str
    created_at: str
    stage: str | None = None
    id: int | None = None
    delivered_at: str | None = None
    read_at: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: str | None = None
    subject: str | None = None
    channels_done: tuple[str, ...] = ()  # keys of the channels that took it


class InstanceRow(Struct, frozen=True):
    """One instance as stored. ``state`` is the engine's own serialisation;
    the other columns are copies the store indexes and filters on."""

    id: str
    process_id: str
    definition_digest: str
    status: str  # active | waiting | completed | cancelled
    stage: str | None  # current stage id (None once finished)
    initiator: str
    started_at: str  # ISO-8601 UTC
    updated_at: str
    version: int  # 1 on start, +1 on every change; journal rows match it
    due_at: str | None = None  # current stage's SLA due time
    assignees: tuple[str, ...] = ()  # principals: "user:alice", "role:finance-reviewer"
    parent_id: str | None = None
    state: dict[str, Any] = msgspec.field(default_factory=dict)
    timers: tuple[TimerRow, ...] = ()  # its pending timers (see TimerRow)


class JournalEntry(Struct, frozen=True):
    """An append-only journal row. ``seq``, ``prev_hash`` and ``hash`` are
    filled in by the store when it appends."""

    instance_id: str
    at: str  # ISO-8601 UTC
    actor: str
    kind: str  # started, stage_entered, result, decision, field_changed, ...
    version: int  # the instance version this entry belongs to
    stage: str | None = None
    result: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


class AttachmentRow(Struct, frozen=True):
    """A file attached to an instance; its bytes are kept once per ``sha256``."""

    instance_id: str
    name: str
    version: int  # 1, then +1 for each file attached again under the same name
    sha256: str  # hex of the bytes
    size: int  # bytes
    added_by: str
    added_at: str  # ISO-8601 UTC


class InstanceFilter(Struct, frozen=True):
    status: tuple[str, ...] = ()
    process_id: str | None = None
    principals: tuple[str, ...] = ()  # any of these among the assignees
    initiator: str | None = None
    started_since: str | None = None
    limit: int | None = None
    oldest_first: bool = False
    order_by: Literal["started_at", "updated_at"] = "started_at"
    parent_id: str | None = None  # only the children of this instance
    due_before: str | None = None  # only instances whose due_at is before this time


class JournalFilter(Struct, frozen=True):
    instance_id: str | None = None
    process_id: str | None = None
    actor: str | None = None
    since: str | None = None
    until: str | None = None
    by_instance: bool = False  # ordered by (instance, seq) instead of seq: one case at a time


class Checkpoint(Struct, frozen=True):
    """The head of the journal's chain at a moment, kept outside the store: entry
    ``seq`` (0: the journal was empty) had ``hash`` when the checkpoint was taken
    (``at``). ``hmac``: HMAC-SHA256 of seq, hash and at under a key kept elsewhere."""

    seq: int
    hash: str
    at: str
    hmac: str | None = None


class RepairReport(Struct, frozen=True):
    """What ``db repair`` found and did (``entry``: its journal entry, if it wrote one)."""

    problems: tuple[str, ...]
    entry: JournalEntry | None = None


class VerifyReport(Struct, frozen=True):
    ok: bool
    entries: int
    problems: tuple[str, ...] = ()  # "entry 1234 (instance ...): hash does not match its content"
    head_seq: int = 0  # the last entry read (0: none)
    head_hash: str = ""
    checkpoints: int = 0  # how many checkpoints it was checked against


class Transaction(Protocol):
    """A write transaction: every read the write depends on happens inside it."""

    def get_instance(self, instance_id: str) -> InstanceRow | None: ...

    def insert_instance(self, row: InstanceRow) -> None: ...

    def update_instance(self, row: InstanceRow, *, expected_version: int) -> None:
        """Write ``row`` (whose version is expected_version + 1); raise
        ConflictError if the stored version is not ``expected_version``."""
        ...

    def append_journal(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """Append in order; return them with seq/prev_hash/hash filled in."""
        ...

    def put_definition(self, definition: Definition) -> None:
        """Store it if its digest is new (idempotent)."""
        ...

    def new_instance_id(self, process_id: str) -> str:
        """A fresh id, short enough to type: e.g. ``key-account-filing-approval-42``."""
        ...

    def get_timer(self, instance_id: str, key: str) -> TimerRow | None: ...

    def mark_timer(self, instance_id: str, key: str, *, status: str, at: str) -> None:
        """Set a timer ``fired`` (or ``void``) at ``at``."""
        ...

    def add_notifications(self, rows: list[NotificationRow]) -> None: ...

    def add_attachment(self, row: AttachmentRow, content: bytes) -> None:
        """Keep ``content`` under its SHA-256 (once per content) and record the
        attachment; both append-only."""
        ...

    def claim_notifications(
        self, *, now: str, lease_until: str, max_attempts: int, limit: int
    ) -> list[NotificationRow]:
        """Undelivered notifications due for an attempt (``next_attempt_at`` passed,
        fewer than ``max_attempts``), leased until ``lease_until`` so that a
        concurrent deliverer skips them."""
        ...

    def finish_notification(
        self, notification_id: int, *, delivered_at: str | None, error: str | None,
        next_attempt_at: str | None, channels_done: tuple[str, ...] = (),
    ) -> NotificationRow:
        """Record one delivery attempt: delivered, or failed with ``error``;
        ``channels_done``: every channel that has taken it so far."""
        ...

    def mark_read(self, user: str, ids: tuple[int, ...], *, at: str) -> int:
        """Mark the user's notifications read (all unread ones when ``ids`` is
        empty); return how many changed."""
        ...

    def open_load(self, users: Sequence[str], *,
                  excluding: str | None = None) -> dict[str, int]:
        """How many open stages each of ``users`` holds (user id -> count of
        the instances that name them among their current assignees; a user
        holding none is left out), not counting instance ``excluding`` (the
        one being moved on)."""
        ...

    def pick_turns(self) -> dict[str, str]:
        """The member each round-robin pool picked last (pool -> user id)."""
        ...

    def set_pick_turn(self, pool: str, user: str, *, at: str) -> None:
        """Record that ``pool`` picked ``user`` (the next pick starts after them)."""
        ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Begin a write transaction (SQLite: BEGIN IMMEDIATE, retried with
        jittered backoff under an overall deadline); commit on normal exit,
        roll back on an exception. Lock contention never reaches the user as
        "database is locked": after the deadline it raises ConflictError."""
        ...

    def get_instance(self, instance_id: str) -> InstanceRow | None: ...

    def get_definition(self, digest: str) -> Definition | None: ...

    def definition_digests(self) -> list[tuple[str, str]]:
        """(process id, digest) of every stored definition, oldest first."""
        ...

    def list_instances(self, flt: InstanceFilter) -> Iterator[InstanceRow]: ...

    def search_instances(self, text: str, flt: InstanceFilter) -> Iterator[InstanceRow]:
        """Instances whose process or stage names, record text, note or
        comments contain every word of ``text`` (any part of a word, any case),
        best match first, then newest; ``flt``'s status, process, start time
        and limit apply. Served by the store's full-text index."""
        ...

    def journal(self, flt: JournalFilter) -> Iterator[JournalEntry]:
        """Oldest first, streamed (never the whole journal in memory); with
        ``flt.by_instance``, instance by instance, each oldest first."""
        ...

    def report(
        self, flt: ReportFilter, working_seconds: WorkingSeconds | None = None
    ) -> ReportData:
        """How processes performed, aggregated by the database (see
        :mod:`flowctl.store.analytics`): memory stays flat as the journal grows.
        ``working_seconds(process, stage, from, to)``: a visit's working time
        (None for a stage without business hours): SQLite calls it from its
        SQL; PostgreSQL calls it over the streamed visits and aggregates the
        results on the server. Without it the working-time figures are None."""
        ...

    def verify_journal(
        self, checkpoints: Sequence[tuple[int, Checkpoint]] = (), key: bytes | None = None
    ) -> VerifyReport:
        """The chain, the append-only triggers, each instance against its journal,
        and the journal against ``checkpoints`` (line number, checkpoint), whose
        HMACs are checked with ``key`` when given."""
        ...

    def repair_journal(self, *, actor: str, at: str) -> RepairReport:
        """Restore the journal's append-only triggers (journalled); nothing when in place."""
        ...

    def attachments(self, instance_id: str) -> list[AttachmentRow]:
        """An instance's attachments, oldest first."""
        ...

    def attachment_content(self, sha256: str) -> bytes | None:
        """The bytes kept under ``sha256`` (None when there are none)."""
        ...

    def verify_attachments(self) -> tuple[int, tuple[str, ...]]:
        """Every attachment's bytes against its SHA-256, size and journal entry:
        (how many were checked, the problems)."""
        ...

    def due_timers(self, now: str, *, limit: int | None = None) -> list[TimerRow]:
        """Pending timers due at or before ``now``, earliest first (then instance, key)."""
        ...

    def notifications(
        self, user: str | None, *, unread_only: bool = True, limit: int | None = None
    ) -> list[NotificationRow]:
        """A user's notifications (``None``: everyone's), newest first."""
        ...

    def undelivered_count(self) -> int:
        """Notifications not delivered yet (including those given up on)."""
        ...

    def login(self) -> str | None:
        """Who the store's server says is connected (its database login); None
        for a local file, where the operating-system login counts."""
        ...

    def close(self) -> None: ...

"""Time moving forward: tick (timers and notification delivery), overdue
stages, tasks and notifications.

flowctl has no daemon: ``tick()`` (``flowctl tick``, run from cron) fires
every pending timer whose time has come, each in its own short write
transaction that re-reads the timer and the instance under the lock, so two
ticks at once, or a tick killed half-way and run again, fire each timer
exactly once. Then it delivers pending notifications through the
configured command (:mod:`flowctl.api.notify`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Unpack

from msgspec import Struct

from flowctl import engine
from flowctl.api import notify
from flowctl.api.instances import (
    OPEN_STATUSES,
    Context,
    Definitions,
    InstanceView,
    Loaded,
    Writer,
    acting,
    clock,
    from_row,
    opened_store,
    org_directory,
    stored_process,
    views_of,
    with_workload,
)
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import OrgDirectory
from flowctl.store.base import (
    InstanceFilter,
    JournalEntry,
    NotificationRow,
    Store,
    TimerRow,
    Transaction,
)

MAX_ROUNDS = 10  # a firing may create timers due at once: look again, this often


class Fired(Struct, frozen=True):
    """One due timer and what tick did with it."""

    instance_id: str
    key: str
    kind: str  # wake | due | escalation | task | resume
    stage: str
    due_at: str
    status: str  # fired | void (the instance moved on) | skipped (fired by another tick)
    #              | failed (nothing written; retried next tick) | due (--dry-run)
    entries: tuple[JournalEntry, ...] = ()
    error: str | None = None


class Delivery(Struct, frozen=True):
    notification: int
    user: str
    instance_id: str
    delivered: bool
    error: str | None = None
    gave_up: bool = False
    channels: tuple[str, ...] = ()  # the channels that took it in this attempt (masked)


class TickReport(Struct, frozen=True):
    now: str
    dry_run: bool
    fired: tuple[Fired, ...]
    deliveries: tuple[Delivery, ...] = ()
    notify_command: bool = False  # FLOWCTL_NOTIFY_COMMAND is set
    undelivered: int = 0  # notifications still waiting for delivery
    channels: bool = False  # somewhere to deliver to: the command, or a user's channels


def tick(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    deliver: bool = True,
    db: str | None = None,
    org: str | None = None,
    processes_dir: str | None = None,
    store: Store | None = None,
    progress: Callable[[int], None] | None = None,
    loaded: Loaded | None = None,
) -> TickReport:
    """Fire every timer due at ``now`` (then deliver notifications).

    ``dry_run`` lists the due timers and writes nothing. ``progress``, if
    given, is called with 1 as each due timer is handled and as each
    notification delivery is tried: for a progress counter. ``loaded``:
    definitions read once (as for the instance calls), instead of ``org``
    and ``processes_dir``.
    """
    moment = clock(now)
    at = engine.iso(moment)
    with opened_store(db, store) as st:
        if loaded is not None:
            directory, path = loaded.org, loaded.org_path
            processes_dir = loaded.processes_dir
        else:
            directory, path = org_directory(org, processes_dir)
        if dry_run:
            due = tuple(_due(t) for t in st.due_timers(at))
            return TickReport(at, True, due, undelivered=_undelivered(st))
        procs = Definitions(processes_dir, path, loaded)
        fired: list[Fired] = []
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_ROUNDS):
            batch = [t for t in st.due_timers(at) if (t.instance_id, t.key) not in seen]
            if not batch:
                break
            for t in batch:
                seen.add((t.instance_id, t.key))
                fired.append(_fire_one(st, directory, moment, t, procs))
                if progress is not None:
                    progress(1)
        deliveries: tuple[Delivery, ...] = ()

        if deliver and notify.any_channels(directory):
            deliveries = _deliver(st, directory, moment, progress)
        return TickReport(at, False, tuple(fired), deliveries, notify.command() is not None,
                          _undelivered(st), notify.any_channels(directory))


def _due(t: TimerRow) -> Fired:
    return Fired(t.instance_id, t.key, t.kind, t.stage, t.due_at, "due")


def _fire_one(
    st: Store, org: OrgDirectory, moment: datetime, t: TimerRow, procs: Definitions
) -> Fired:
    at = engine.iso(moment)

    def done(status: str, entries: tuple[JournalEntry, ...] = (),
             error: str | None = None) -> Fired:
        return Fired(t.instance_id, t.key, t.kind, t.stage, t.due_at, status, entries, error)

    first = st.get_instance(t.instance_id)
    if first is None:
        return done("void")
    try:
        process = stored_process(st, first.definition_digest)
        procs.preload_related(st, first, process)
        with st.transaction() as tx:
            timer = tx.get_timer(t.instance_id, t.key)
            row = tx.get_instance(t.instance_id)
            if timer is None or timer.status != "pending" or row is None:
                return done("skipped")
            system = engine.Context(engine.SYSTEM_ACTOR, org, moment)
            system = with_workload(system, tx, process, row.id)
            try:
                step = engine.apply(process, from_row(row), engine.Fire(t.key), system)
            except engine.TimerVoid:
                tx.mark_timer(t.instance_id, t.key, status="void", at=at)
                return done("void")
            tx.mark_timer(t.instance_id, t.key, status="fired", at=at)
            writer = Writer(tx, st, org, moment, procs)
            writer.update(process, step, row.version)
        return done("fired", tuple(writer.written))
    except FlowctlError as exc:
        return done("failed", error=exc.message)


def _undelivered(st: Store) -> int:
    return st.undelivered_count()


DELIVERY_BATCH = 200  # notifications claimed (and recorded) per transaction


def _deliver(st: Store, org: OrgDirectory, moment: datetime,
             progress: Callable[[int], None] | None = None) -> tuple[Delivery, ...]:
    at = engine.iso(moment)
    out: list[Delivery] = []
    while True:
        with st.transaction() as tx:
            batch = tx.claim_notifications(
                now=at, lease_until=engine.iso(moment + notify.LEASE),
                max_attempts=notify.MAX_ATTEMPTS, limit=DELIVERY_BATCH,
            )
        if not batch:
            return tuple(out)
        attempts = notify.deliver(batch, org, progress)
        with st.transaction() as tx:
            out += [_record_attempt(tx, a, moment) for a in attempts]


def _record_attempt(tx: Transaction, a: notify.Attempt, moment: datetime) -> Delivery:
    """Mark the notification delivered (every channel took it) or due again,
    and journal the attempt with each channel's answer (secrets masked)."""
    at = engine.iso(moment)
    n = a.notification
    nid = n.id or 0
    error = a.error
    if not a.outcomes:  # the user has no channel: flowctl's own list is where it is read
        tx.finish_notification(nid, delivered_at=at, error=None, next_attempt_at=None,
                               channels_done=n.channels_done)
        return Delivery(nid, n.user, n.instance_id, True)
    attempts = n.attempts + 1
    gave_up = error is not None and attempts >= notify.MAX_ATTEMPTS
    retry = None if gave_up or error is None else engine.iso(notify.next_attempt(moment, attempts))
    tx.finish_notification(nid, delivered_at=at if error is None else None, error=error,
                           next_attempt_at=retry or at, channels_done=a.done)
    row = tx.get_instance(n.instance_id)
    data: dict[str, Any] = {
        "notification": nid, "user": n.user, "kind": n.kind, "attempt": attempts,
        "sent": [o.channel.shown for o in a.outcomes if o.error is None],
    }
    if error is not None:
        data["failed"] = {o.channel.shown: o.error for o in a.outcomes if o.error is not None}
        data["error"] = error
        data.update({"gave_up": True} if gave_up else {"next_attempt_at": retry})
    if row is not None:
        tx.append_journal([JournalEntry(
            instance_id=n.instance_id, at=at, actor=engine.SYSTEM_ACTOR,
            kind="notification_sent" if error is None else "notification_failed",
            version=row.version, stage=n.stage, data=data,
        )])
    return Delivery(nid, n.user, n.instance_id, error is None, error, gave_up,
                    tuple(o.channel.shown for o in a.outcomes if o.error is None))


def deliver_notifications(
    *,
    now: datetime | None = None,
    db: str | None = None,
    org: str | None = None,
    processes_dir: str | None = None,
    store: Store | None = None,
) -> TickReport:
    """Deliver pending notifications only (``flowctl notifications deliver``)."""
    moment = clock(now)
    with opened_store(db, store) as st:
        directory, path = org_directory(org, processes_dir)
        if not notify.any_channels(directory):
            raise UsageError(
                "nowhere to deliver to: no user of the org directory has `channels` and"
                f" {notify.COMMAND_ENV} is not set",
                hint=f"give users channels (Apprise URLs) in {path or 'the org directory'},"
                f" or set {notify.COMMAND_ENV} to a command that reads one notification as"
                " JSON on stdin",
            )
        out = _deliver(st, directory, moment)
        return TickReport(engine.iso(moment), False, (), out, notify.command() is not None,
                          _undelivered(st), True)


# ---------------------------------------------------------------- overdue


class Overdue(Struct, frozen=True):
    instance_id: str
    process_id: str
    stage: str
    due_at: str
    late_seconds: int
    held_by: str  # who holds it: "carol (head of sales)"
    what: str  # "stage": past its SLA; "timer": a timer past due that no tick has fired yet
    timer: str | None = None  # the timer's key


def overdue(
    **context: Unpack[Context],
) -> list[Overdue]:
    """Active stages past their due time (most late first), then pending
    timers past due that no tick has fired yet."""
    with acting(**context) as s:
        at = engine.iso(s.now)
        out = []
        flt = InstanceFilter(status=(engine.ACTIVE,), due_before=at)
        for v in views_of(s, flt):
            if v.branches:  # parallel branches: each stage past its own due time
                for br in v.branches:
                    if br.status == engine.ACTIVE and br.due_at and br.due_at < at:
                        late = s.now - engine.parse_time(br.due_at)
                        out.append(Overdue(v.id, v.process_id, br.stage or "", br.due_at,
                                           int(late.total_seconds()), br.waiting_for, "stage"))
                continue
            late = s.now - engine.parse_time(v.due_at or at)
            out.append(Overdue(v.id, v.process_id, v.stage or "", v.due_at or "",
                               int(late.total_seconds()), v.waiting_for, "stage"))
        out.sort(key=lambda o: (-o.late_seconds, o.instance_id))
        for t in s.store.due_timers(at):
            row = s.store.get_instance(t.instance_id)
            late = s.now - engine.parse_time(t.due_at)
            out.append(Overdue(t.instance_id, row.process_id if row else "", t.stage, t.due_at,
                               int(late.total_seconds()), t.kind, "timer", t.key))
        return out


# ------------------------------------------------------------------ tasks


class TaskView(Struct, frozen=True):
    instance_id: str
    process_id: str
    stage: str
    task: engine.Task
    mine: bool


def tasks(
    *,
    mine: bool = False,
    include_done: bool = False,
    **context: Unpack[Context],
) -> list[TaskView]:
    """Tasks of the current stages of running instances (``mine``: only the
    user's, directly or through a role), oldest first."""
    with acting(**context) as s:
        return _tasks(s.store, s.org, s.user, mine, include_done)


def _tasks(st: Store, org: OrgDirectory, user: str, mine: bool,
           include_done: bool) -> list[TaskView]:
    out = []
    for row in st.list_instances(InstanceFilter(status=OPEN_STATUSES, oldest_first=True)):
        for t in from_row(row).tasks:
            is_mine = engine.holds(user, t.assignee, org)
            if (mine and not is_mine) or (t.status == engine.TASK_DONE and not include_done):
                continue
            out.append(TaskView(row.id, row.process_id, t.stage, t, is_mine))
    return out


def inbox_tasks(
    **context: Unpack[Context],
) -> tuple[list[TaskView], int]:
    """The user's open tasks and how many unread notifications they have."""
    with acting(**context) as s:
        mine = [t for t in _tasks(s.store, s.org, s.user, True, False)
                if t.task.status == engine.TASK_OPEN]
        return mine, len(s.store.notifications(s.user))


# ---------------------------------------------------------- notifications


def notifications(
    *,
    include_read: bool = False,
    everyone: bool = False,
    limit: int | None = None,
    **context: Unpack[Context],
) -> list[NotificationRow]:
    """The user's notifications, newest first (unread ones unless ``include_read``);
    ``everyone`` lists all users' (admins only)."""
    with acting(**context) as s:
        if everyone and not engine.Context(s.user, s.org, s.now).is_admin:
            raise engine.NotPermitted(
                "only an admin can list everyone's notifications",
                hint=f"you are {s.user}; drop --everyone to see yours",
            )
        return s.store.notifications(
            None if everyone else s.user, unread_only=not include_read, limit=limit
        )


def mark_read(
    ids: tuple[int, ...] = (),
    **context: Unpack[Context],
) -> int:
    """Mark the user's notifications read (all unread when ``ids`` is empty)."""
    with acting(**context) as s, s.store.transaction() as tx:
        return tx.mark_read(s.user, ids, at=engine.iso(s.now))


__all__ = [
    "Delivery", "Fired", "InstanceView", "Overdue", "TaskView", "TickReport",
    "deliver_notifications", "inbox_tasks", "mark_read", "notifications", "overdue", "tasks",
    "tick",
]

"""The engine: pure transitions over one instance of a process.

``start(definition, command, context)`` and ``apply(definition, instance,
command, context)`` return a :class:`Transition`: the new instance and the
journal events it produced. Nothing here reads files, a clock or a database:
the caller passes the time and the org directory in :class:`Context`, and
writes the result. A command that the rules do not allow raises a
:class:`Refused` (exit 1) or, for a value that cannot be read, an
:class:`InvalidValue` (exit 2); the message says what was asked, what is
allowed and why.

Instance state (see :func:`dump_state`) is plain JSON. Time-driven work is
described in it and done later by ``tick`` through the :class:`Fire`
command: ``timers`` lists the wake-up of a wait stage, the due time and the
SLA escalations of the current stage, delayed tasks and the end of a pause;
each has a ``key`` unique within the instance. ``children`` lists the child
processes a subprocess stage needs; the caller starts them in the same
transaction and reports back with :class:`ChildStarted` and
:class:`ChildEnded`. ``Transition.notices`` are the notifications a command
produces (who is concerned, and why).
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from typing import Any

import msgspec
from msgspec import Struct
from msgspec.structs import asdict, replace

from flowctl.definition.conditions import (
    ConditionError,
    ConditionEvalError,
    evaluate,
    field_names,
    parse,
)
from flowctl.definition.durations import (
    DateLimit,
    Duration,
    DurationError,
    parse_date_limit,
    parse_duration,
)
from flowctl.definition.formats import FORMATS, format_ok, pattern_ok
from flowctl.definition.templates import render as render_template
from flowctl.engine.calendars import CalendarError, add_duration, add_months, zone
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import (
    ACTOR,
    INITIATOR,
    NOW,
    ApprovalPolicy,
    Assignee,
    Calendar,
    FieldDef,
    FieldType,
    FieldValue,
    JoinPolicy,
    NotifySpec,
    OrgDirectory,
    Process,
    Result,
    Stage,
    StageKind,
    TaskSpec,
    notify_for,
)
from flowctl.text import describe_char, find_unsafe

# instance status
ACTIVE = "active"  # a stage waits for a person
WAITING = "waiting"  # a wait stage or a child process holds it
PAUSED = "paused"  # paused by hand (flowctl pause): no timer fires
COMPLETED = "completed"
CANCELLED = "cancelled"
FINISHED = (COMPLETED, CANCELLED)

SYSTEM_ACTOR = "flowctl"  # the actor of what time and child processes do

# timer kinds
WAKE = "wake"  # the end of a wait stage
DUE = "due"  # the SLA's ``within`` has passed
ESCALATION = "escalation"  # one SLA escalation level
TASK = "task"  # a delayed task appears
RESUME = "resume"  # the end of ``flowctl pause --for``

# task status
TASK_SCHEDULED = "scheduled"  # delayed: appears when its timer fires
TASK_OPEN = "open"
TASK_DONE = "done"

# stage state
NOT_STARTED = "not started"
IN_PROGRESS = "in progress"
DONE = "done"

ADMIN_ROLE = "admin"
MAX_AUTOMATIC_STEPS = 100
SHOW_AT_MOST = 5  # names listed in a message before "and N more"


class Refused(FlowctlError):
    """The rules do not allow the command; nothing changed."""

    exit_code = 1


class ResultNotAllowed(Refused):
    """The result is not one the current stage allows."""

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed  # the results the stage allows


class NotPermitted(Refused):
    """The acting user may not do this (not an assignee, starter or admin)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.allowed = allowed  # principals who may: "user:carol", "role:admin"


class FieldsMissing(Refused):
    """Required fields have no value."""

    def __init__(self, message: str, *, hint: str | None = None,
                 fields: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.fields = fields


class FieldNotSettable(Refused):
    """A declared field that the current stage (or result, or start) does not declare."""

    def __init__(self, message: str, *, hint: str | None = None,
                 fields: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.fields = fields


class InstanceClosed(Refused):
    """The instance is finished, or waiting for time or a child process."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class AlreadySigned(Refused):
    """A countersign approver tried to sign a second time."""


class NoAssignee(Refused):
    """Who handles the next stage cannot be found (or must be named)."""


class TasksOpen(Refused):
    """Blocking tasks of the stage are not done yet."""

    def __init__(self, message: str, *, hint: str | None = None,
                 tasks: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.tasks = tasks


class RuleBroken(Refused):
    """A value breaks a rule of the definition: a field's pattern, format or date
    limit, a ``validate`` rule, a ``must_change`` field left unchanged."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None,
                 rule: str = "", value: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field  # the field named (the first a rule reads)
        self.rule = rule  # "pattern", "format", "minimum", "must_change" or a condition
        self.value = value  # the value refused (a rule's: the values it read)


class TimerVoid(Refused):
    """The timer is no longer pending: fired already, or the instance moved on."""


class StageChoice(Refused):
    """The instance has several active stages (parallel branches) and the
    command does not say which one, or names one that is not active."""

    def __init__(self, message: str, *, hint: str | None = None,
                 active: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.active = active  # the active stages


class InvalidValue(UsageError):
    """A value given on the command line cannot be used (exit 2)."""


# ---------------------------------------------------------------- data

# Records are msgspec Structs: cheap to define at import, and copied with
# msgspec.structs.replace.


class Vote(Struct, frozen=True):
    user: str
    principal: str  # the approver slot this vote fills
    result: str
    at: str
    as_admin: bool = False


class LinkRef(Struct, frozen=True):
    kind: str
    ref: str
    by: str
    at: str


class AttachmentRef(Struct, frozen=True):
    """A file attached to an instance: its bytes are in the store under ``sha256``.
    A second file under the same name is its next ``version``."""

    name: str
    version: int
    size: int
    sha256: str
    by: str
    at: str


class Timer(Struct, frozen=True):
    """Work for a later ``tick``: wake a wait stage, mark the SLA due, escalate,
    make a delayed task appear, end a pause."""

    kind: str  # wake | due | escalation | task | resume
    at: str
    stage: str
    index: int = 0  # escalation: position in sla.escalations; task: in on_enter.tasks
    key: str = ""  # unique within the instance: "escalation:review:1:v4"


def timer_key(kind: str, stage: str, index: int, version: int) -> str:
    """``kind:stage:index:vN``, N the instance version that created the timer
    (the v1 -> v2 store migration derives keys of older timers the same way)."""
    return f"{kind}:{stage}:{index}:v{version}"


class Task(Struct, frozen=True):
    """A task created on entering a stage (``on_enter.tasks``)."""

    id: str
    name: str
    stage: str
    assignee: str  # principal
    blocking: bool = False  # holds back results: all of them, or only ``blocks``
    status: str = TASK_OPEN  # scheduled | open | done
    at: str = ""  # when it appeared (or will appear, while scheduled)
    done_by: str | None = None
    done_at: str | None = None
    blocks: tuple[str, ...] = ()  # the results it holds back; empty: every one

    def holds_back(self, result: str) -> bool:
        return self.blocking and self.status != TASK_DONE and (
            not self.blocks or result in self.blocks)


class Child(Struct, frozen=True):
    """A child process a subprocess stage needs; the caller starts it in the
    same transaction (status pending -> running -> completed | cancelled)."""

    process: str
    stage: str
    inputs: Mapping[str, Any]
    wait: bool
    status: str = "pending"
    instance_id: str | None = None
    end: str | None = None  # the stage the child ended at


class Notice(Struct, frozen=True):
    """A notification for one user, produced by a command."""

    user: str
    kind: str  # assigned | task | reminder | escalation | overdue | child
    #            | completed | rejected | cancelled (the outcome, to the initiator)
    message: str
    stage: str | None = None
    subject: str | None = None  # from the definition's template; None: the default


# branch status (besides ACTIVE and WAITING)
JOINED = "joined"  # it reached the join
ENDED = "ended"  # it reached an end stage (on_reject: finish-others)


class BranchRun(Struct, frozen=True):
    """One started branch of the open parallel stage: where it is, and the
    same per-stage state an instance keeps for its one current stage."""

    name: str
    status: str = ACTIVE  # active | waiting | joined | ended
    stage: str | None = None
    stage_state: str = NOT_STARTED
    entered_at: str | None = None
    due_at: str | None = None
    assignees: tuple[str, ...] = ()
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    approvers: tuple[str, ...] = ()
    votes: tuple[Vote, ...] = ()
    timers: tuple[Timer, ...] = ()
    wake_at: str | None = None
    tasks: tuple[Task, ...] = ()
    end: str | None = None  # ended: the end stage it reached
    baseline: Mapping[str, Any] = msgspec.field(default_factory=dict)  # see Instance

    @property
    def live(self) -> bool:
        return self.status in (ACTIVE, WAITING)


# What a branch keeps of its own: the instance's per-stage state.
BRANCH_FIELDS = ("stage", "stage_state", "entered_at", "due_at", "assignees", "labels",
                 "approvers", "votes", "timers", "wake_at", "tasks", "baseline")


class Instance(Struct, frozen=True):
    id: str
    process_id: str
    definition_digest: str
    initiator: str
    started_at: str
    updated_at: str
    version: int
    status: str = ACTIVE
    stage: str | None = None
    stage_state: str = NOT_STARTED
    entered_at: str | None = None
    due_at: str | None = None
    assignees: tuple[str, ...] = ()  # principals: "user:carol", "role:finance-reviewer"
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)  # principal -> how it was found
    approvers: tuple[str, ...] = ()  # countersign: every principal that must approve
    votes: tuple[Vote, ...] = ()
    record: Mapping[str, Any] = msgspec.field(default_factory=dict)
    note: str = ""
    links: tuple[LinkRef, ...] = ()
    timers: tuple[Timer, ...] = ()
    children: tuple[Child, ...] = ()
    outcome: str | None = None
    last_stage: str | None = None  # where a finished instance ended
    wake_at: str | None = None
    parent_id: str | None = None
    tasks: tuple[Task, ...] = ()
    paused_from: str | None = None  # status before a pause
    paused_at: str | None = None
    suspended: tuple[Timer, ...] = ()  # the timers a pause holds back
    approved: tuple[tuple[str, str], ...] = ()  # (stage, user): who approved which stage
    attachments: tuple[AttachmentRef, ...] = ()
    watchers: tuple[str, ...] = ()  # users it was shared with: they see it, hear its outcome
    baseline: Mapping[str, Any] = msgspec.field(default_factory=dict)  # must_change fields'
    #                                   values when the current stage was entered
    # An open parallel stage: ``stage`` is its id and the per-stage fields above
    # gather its live branches' (every assignee, timer and task; the earliest due
    # time); each branch keeps its own in ``branches``.
    fork: str | None = None
    forked_at: str | None = None
    branches: tuple[BranchRun, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def branch(self, name: str) -> BranchRun | None:
        return next((b for b in self.branches if b.name == name), None)

    def branch_at(self, stage: str) -> BranchRun | None:
        """The live branch whose current stage is ``stage``."""
        return next((b for b in self.branches if b.stage == stage and b.live), None)

    @property
    def active_stages(self) -> tuple[str, ...]:
        """The stages a person may act at now: the live branches' (of an open
        parallel stage), else the current stage."""
        if self.fork is not None:
            return tuple(b.stage for b in self.branches if b.status == ACTIVE and b.stage)
        return (self.stage,) if self.stage and self.status == ACTIVE else ()


class Event(Struct, frozen=True):
    """One journal entry to be: the caller adds instance id and version."""

    kind: str
    actor: str
    at: str
    stage: str | None = None
    result: str | None = None
    data: Mapping[str, Any] = msgspec.field(default_factory=dict)


class Transition(Struct, frozen=True):
    instance: Instance
    events: tuple[Event, ...]
    notices: tuple[Notice, ...] = ()
    picks: tuple[tuple[str, str], ...] = ()  # (pool, user) picked round-robin: the store's turn


class Workload(Struct, frozen=True):
    """What ``pick`` reads from the store, in the command's transaction:
    ``load``, the open stages each user holds (user id -> count), and
    ``turns``, the member each pool picked last (``role:sales-rep`` -> user id)."""

    load: Mapping[str, int] = msgspec.field(default_factory=dict)
    turns: Mapping[str, str] = msgspec.field(default_factory=dict)


class Context(Struct, frozen=True, dict=True):
    actor: str
    org: OrgDirectory
    now: datetime  # timezone-aware
    workload: Workload | None = None  # for ``pick``; None: no stage of this process picks

    @cached_property
    def at(self) -> str:
        """``now`` as ISO-8601 text, computed once per context (a step reads it
        for every event and timestamp)."""
        return iso(self.now)

    @property
    def is_admin(self) -> bool:
        u = self.org.user(self.actor)
        return u is not None and ADMIN_ROLE in u.roles


# ------------------------------------------------------------ commands


class Start(Struct, frozen=True):
    values: Mapping[str, Any] = msgspec.field(default_factory=dict)
    note: str | None = None


class Advance(Struct, frozen=True):
    result: str
    values: Mapping[str, Any] = msgspec.field(default_factory=dict)
    comment: str | None = None
    next_assignee: str | None = None
    stage: str | None = None  # which active stage (several: parallel branches)


class Begin(Struct, frozen=True):
    stage: str | None = None


class Reassign(Struct, frozen=True):
    user: str
    comment: str | None = None
    stage: str | None = None


class Note(Struct, frozen=True):
    text: str
    append: bool = False


class Link(Struct, frozen=True):
    kind: str
    ref: str


class Attach(Struct, frozen=True):
    """Attach a file the caller has read and hashed (the engine sees no bytes)."""

    name: str
    size: int
    sha256: str


class Share(Struct, frozen=True):
    """Let ``user`` see the instance (a watcher: they hear its outcome too)."""

    user: str


class Unshare(Struct, frozen=True):
    """Take back what Share gave ``user``."""

    user: str


class Cancel(Struct, frozen=True):
    reason: str | None = None
    by_parent: str | None = None  # the parent instance whose cancel cancels this one


class Fire(Struct, frozen=True):
    """Fire the pending timer ``key`` (tick); TimerVoid when it is not pending."""

    key: str


class Pause(Struct, frozen=True):
    duration: str | None = None  # "30d": resume automatically after it
    reason: str | None = None


class Resume(Struct, frozen=True):
    pass


class TaskDone(Struct, frozen=True):
    task: str
    comment: str | None = None


class ChildStarted(Struct, frozen=True):
    stage: str
    instance_id: str
    process: str


class ChildEnded(Struct, frozen=True):
    instance_id: str
    status: str  # completed | cancelled
    end: str | None  # the child's last stage
    outcome: str | None


Command = (
    Advance | Begin | Reassign | Note | Link | Cancel | Fire | Pause | Resume | TaskDone
    | ChildStarted | ChildEnded | Attach | Share | Unshare
)


# ---------------------------------------------------------------- time


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with seconds: ``2026-11-23T09:00:00Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    m = moment.astimezone(UTC)
    if m.year < 1000:  # strftime's %Y, unpadded on this platform, as before
        return m.strftime("%Y-%m-%dT%H:%M:%SZ")
    # the same text as strftime, at a third of its cost (~20 times a step)
    return f"{m.year}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def parse_time(text: str) -> datetime:
    """ISO-8601 date or date-time; without an offset it is UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@lru_cache(maxsize=1024)  # a definition's few durations, parsed once, not per step
def _duration(text: str) -> Duration:

    try:
        return parse_duration(text)
    except DurationError as exc:
        raise FlowctlError(f"the definition has a bad duration: {exc}") from exc


# -------------------------------------------------------------- values

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# The engine compares numbers as floats: a number beyond the largest one has
# no value there (and an integer of that size has at most 309 digits).
_LARGEST = sys.float_info.max
_LARGEST_DIGITS = 309


def _shown(raw: Any) -> str:
    """``raw`` for a message: its repr, cut short when long."""
    if isinstance(raw, int) and raw.bit_length() > 128:  # repr of a huge int: slow or refused
        return f"an integer of about {int(raw.bit_length() * math.log10(2)) + 1:,} digits"
    text = repr(raw)
    if len(text) <= 40 or not isinstance(raw, str):
        return text
    return f"{raw[:24] + '...'!r} ({len(raw):,} characters)"


def _ascii_digits(fd: FieldDef, raw: Any, what: str) -> None:
    if isinstance(raw, str) and not raw.isascii():
        raise InvalidValue(
            f"field '{fd.name}' must be {what} written with the ASCII digits 0-9; "
            f"got {_shown(raw)}"
        )


def _comparable(fd: FieldDef, raw: Any, value: int | float) -> int | float:
    if abs(value) > _LARGEST:
        what = "an integer" if fd.type is FieldType.INTEGER else "a number"
        raise InvalidValue(
            f"field '{fd.name}' must be {what} flowctl can compare, at most about 1.8e308 "
            f"either side of zero; got {_shown(raw)}"
        )
    return value


def _integer_text(fd: FieldDef, raw: str) -> int:
    text = raw.strip()
    if len(text.lstrip("+-").lstrip("0")) > _LARGEST_DIGITS:  # int() would refuse or be slow
        _comparable(fd, raw, math.inf)
    return int(_comparable(fd, raw, int(text)))


# What people type into a command may reach other people's terminals (show,
# journal, inbox) and diagrams: a control character there could move the
# cursor, retitle the window or reorder a line. Free text (notes, comments,
# reasons, text fields) may hold tabs and line breaks; everything else is one line.
_FREE_TEXT = frozenset({"text", "comment", "reason", "note"})
_TEXT_WHAT = {"text": "the note", "note": "the note", "comment": "the comment",
              "reason": "the reason", "kind": "the link kind", "ref": "the link reference",
              "name": "the attachment name"}


def check_text(what: str, text: str, *, multiline: bool, hint: str | None = None) -> None:
    """Refuse ``text`` if it holds a control character (but tab, and a line
    break when ``multiline``) or a bidi control, naming ``what`` and the character."""
    at = find_unsafe(text, allow="\n" if multiline else "")
    if at < 0:
        return
    allowed = "tab and line break" if multiline else "tab"
    raise InvalidValue(
        f"{what} holds {describe_char(text[at])} at character {at + 1}: control characters "
        f"(other than {allowed}) and bidi controls are refused, as they would reach the "
        "terminal of whoever reads the instance",
        hint=hint or "remove it; to quote a terminal's output, paste it without its colour codes",
    )


def check_command_text(command: Any) -> None:
    """``check_text`` on every text a command carries (a note, a comment, a reason,
    a link, a name); field values are checked when they are read (``coerce``)."""
    for name in getattr(command, "__struct_fields__", ()):
        value = getattr(command, name)
        if isinstance(value, str):
            what = _TEXT_WHAT.get(name, f"the {name.replace('_', ' ')}")
            hint = "name it with --name NAME" if name == "name" else None
            check_text(what, value, multiline=name in _FREE_TEXT, hint=hint)


def _as_integer(fd: FieldDef, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return int(_comparable(fd, raw, raw))
    _ascii_digits(fd, raw, "an integer")
    if isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
        return _integer_text(fd, raw)
    raise InvalidValue(f"field '{fd.name}' must be an integer; got {_shown(raw)}")


def _as_number(fd: FieldDef, raw: Any) -> int | float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value: int | float = raw
    else:
        _ascii_digits(fd, raw, "a number")
        if isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
            return _integer_text(fd, raw)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidValue(f"field '{fd.name}' must be a number; got {_shown(raw)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"field '{fd.name}' must be a finite number; got {_shown(raw)}")
    return _comparable(fd, raw, value)


def _as_boolean(fd: FieldDef, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise InvalidValue(f"field '{fd.name}' must be true or false; got {raw!r}")


def _as_date(fd: FieldDef, raw: Any) -> str:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, str) and _DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            pass
    raise InvalidValue(f"field '{fd.name}' must be a date (YYYY-MM-DD); got {raw!r}")


def _as_datetime(fd: FieldDef, raw: Any) -> str:
    if isinstance(raw, datetime):
        return iso(raw)
    if isinstance(raw, str) and len(raw) > 10:
        try:
            return iso(parse_time(raw))
        except ValueError:
            pass
    raise InvalidValue(
        f"field '{fd.name}' must be a date and time (ISO-8601, e.g. 2026-11-23T09:00:00Z);"
        f" got {raw!r}"
    )


def _as_enum(fd: FieldDef, raw: Any) -> str:
    if isinstance(raw, str) and raw in fd.values:
        return raw
    raise InvalidValue(f"field '{fd.name}' must be one of {', '.join(fd.values)}; got {raw!r}")


class FieldRestricted(Refused):
    """A user field given a user outside the role or department it is limited to."""

    def __init__(self, message: str, *, hint: str | None = None, field: str = "") -> None:
        super().__init__(message, hint=hint)
        self.field = field


def check_restriction(fd: FieldDef, user: str, org: OrgDirectory) -> None:
    """Refuse ``user`` for a user field limited to a role or department."""
    if fd.role is None and fd.department is None:
        return
    u = org.user(user)
    fits = u is not None and (fd.role is None or fd.role in u.roles) and (
        fd.department is None or org.within(u.department, fd.department)
    )
    if fits:
        return
    limits = []
    if fd.role is not None:
        limits.append(f"role {fd.role}")
    if fd.department is not None:
        limits.append(f"department {fd.department}")
    whom = " in ".join(limits)
    has = ", ".join(
        [f"roles: {', '.join(u.roles) or 'none'}", f"department: {u.department or 'none'}"]
    ) if u is not None else "unknown"
    fitting = [v.id for v in org.users
               if (fd.role is None or fd.role in v.roles)
               and (fd.department is None or org.within(v.department, fd.department))]
    raise FieldRestricted(
        f"field '{fd.name}' holds only users with {whom}; {user} is not one ({has})",
        hint=f"users who may: {names_list(fitting)}" if fitting
        else f"nobody in the org directory has {whom}",
        field=fd.name,
    )


def _as_user(fd: FieldDef, raw: Any, org: OrgDirectory) -> str:
    if isinstance(raw, str) and org.user(raw) is not None:
        check_restriction(fd, raw, org)
        return raw
    ids = [u.id for u in org.users]
    meant = [i for i in ids if isinstance(raw, str) and i.casefold() == raw.casefold()]
    if not meant and isinstance(raw, str):
        meant = difflib.get_close_matches(raw, ids, n=1)
    hint = (f"did you mean '{meant[0]}'? (user ids are lowercase)"
            if meant and isinstance(raw, str) and meant[0].casefold() == raw.casefold()
            else f"did you mean '{meant[0]}'?" if meant
            else f"known users: {names_list(ids)}")
    raise InvalidValue(
        f"field '{fd.name}' must be a user of the org directory; {raw!r} is not one",
        hint=hint,
    )


def _as_text(fd: FieldDef, raw: Any) -> str:
    if isinstance(raw, str):
        multiline = fd.type is FieldType.TEXT
        check_text(f"field '{fd.name}'", raw, multiline=multiline)
        return raw
    raise InvalidValue(f"field '{fd.name}' must be text; got {raw!r}")


def _check_range(fd: FieldDef, value: float) -> None:
    """``minimum`` and ``maximum``: a rule of the definition (exit 1), as the
    pattern, format and date limits are; a value that cannot be read is exit 2."""
    if fd.minimum is not None and value < fd.minimum:
        raise RuleBroken(f"field '{fd.name}' must be at least {_num(fd.minimum)}; got {value}",
                         field=fd.name, rule="minimum", value=value)
    if fd.maximum is not None and value > fd.maximum:
        raise RuleBroken(f"field '{fd.name}' must be at most {_num(fd.maximum)}; got {value}",
                         field=fd.name, rule="maximum", value=value)


def _check_text_rules(fd: FieldDef, value: str) -> None:
    """``pattern`` and ``format`` of a string or text field."""
    if fd.format is not None and not format_ok(fd.format, value):
        raise RuleBroken(
            f"field '{fd.name}' must be {FORMATS[fd.format]} (format: {fd.format});"
            f" got {_shown(value)}",
            field=fd.name, rule="format", value=value,
        )
    if fd.pattern is not None and not pattern_ok(fd.pattern, value):
        raise RuleBroken(
            f"field '{fd.name}' must match the pattern {fd.pattern} (pattern); got {_shown(value)}",
            field=fd.name, rule="pattern", value=value,
        )


def limit_moment(limit: DateLimit, now: datetime, zone_name: str) -> datetime:
    """The moment a date limit names: ``today`` is 00:00 of today in the zone."""
    if limit.base == "fixed":
        return parse_time(limit.moment or "")
    local = now.astimezone(zone(zone_name))
    base = local.replace(hour=0, minute=0, second=0, microsecond=0) if limit.base == "today" \
        else local
    moment = base.astimezone(UTC)
    dur = limit.duration
    if dur is not None:
        if dur.months:
            moment = add_months(moment, limit.sign * dur.months, zone_name)
        moment = moment + limit.sign * dur.fixed
    return moment


def _check_date_limits(process: Process, fd: FieldDef, value: str, now: datetime) -> None:
    """A date or datetime field's ``minimum`` and ``maximum`` (``today+1y``...)."""
    tz = process.calendar.timezone if process.calendar else "UTC"
    for text, low in ((fd.earliest, True), (fd.latest, False)):
        if text is None:
            continue
        try:
            limit = parse_date_limit(text)
            bound = limit_moment(limit, now, tz)
        except (DurationError, CalendarError, ValueError) as exc:
            raise FlowctlError(f"the definition has a bad date limit: {exc}",
                               hint="run `flowctl lint` on the definition") from exc
        if fd.type is FieldType.DATE:
            local = bound.astimezone(zone(tz)).date().isoformat()
            broken = value < local if low else value > local
            shown = local
        else:
            broken = parse_time(value) < bound if low else parse_time(value) > bound
            shown = iso(bound)
        if broken:
            rule = "minimum" if low else "maximum"
            where = "on or after" if low else "on or before"
            relative = "" if limit.base == "fixed" else f" ({text})"
            raise RuleBroken(
                f"field '{fd.name}' must be {where} {shown}{relative} ({rule}); got {value!r}",
                field=fd.name, rule=rule, value=value,
            )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def coerce(fd: FieldDef, raw: Any, org: OrgDirectory) -> Any:
    """A value for field ``fd`` from text (``--set``) or a Python value.

    Returns its stored form (dates and times as ISO-8601 text); raises
    InvalidValue naming the field and what it accepts, or RuleBroken for a
    value of the right type that breaks its ``pattern`` or ``format`` (date
    limits need the time: ``_parse_values``).
    """
    t = fd.type
    if t is FieldType.INTEGER:
        value: Any = _as_integer(fd, raw)
    elif t is FieldType.NUMBER:
        value = _as_number(fd, raw)
    elif t is FieldType.BOOLEAN:
        value = _as_boolean(fd, raw)
    elif t is FieldType.DATE:
        value = _as_date(fd, raw)
    elif t is FieldType.DATETIME:
        value = _as_datetime(fd, raw)
    elif t is FieldType.ENUM:
        value = _as_enum(fd, raw)
    elif t is FieldType.USER:
        value = _as_user(fd, raw, org)
    else:
        value = _as_text(fd, raw)
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        _check_range(fd, value)
    elif t in (FieldType.STRING, FieldType.TEXT):
        _check_text_rules(fd, value)
    return value


def describe_field(fd: FieldDef) -> str:
    """What a field accepts, for messages: ``one of normal, key``."""
    kinds = {
        FieldType.STRING: "text",
        FieldType.TEXT: "text",
        FieldType.INTEGER: "an integer",
        FieldType.NUMBER: "a number",
        FieldType.BOOLEAN: "true or false",
        FieldType.DATE: "a date (YYYY-MM-DD)",
        FieldType.DATETIME: "a date and time (ISO-8601)",
        FieldType.USER: "a user of the org directory",
    }
    if fd.type is FieldType.ENUM:
        return f"one of {', '.join(fd.values)}"
    text = kinds[fd.type]
    bounds = []
    if fd.minimum is not None:
        bounds.append(f"at least {_num(fd.minimum)}")
    if fd.maximum is not None:
        bounds.append(f"at most {_num(fd.maximum)}")
    if fd.earliest is not None:
        bounds.append(f"from {fd.earliest}")
    if fd.latest is not None:
        bounds.append(f"until {fd.latest}")
    if fd.format is not None:
        bounds.append(f"format {fd.format}")
    if fd.pattern is not None:
        bounds.append(f"pattern {fd.pattern}")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def names_list(names: list[str], limit: int = SHOW_AT_MOST) -> str:
    """``a, b, c and 4 more``."""
    if not names:
        return "none"
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def _parse_values(
    process: Process, values: Mapping[str, Any], org: OrgDirectory, now: datetime
) -> dict[str, Any]:
    """Declared fields only; an empty string (or None) clears a field. Date
    limits relative to today are judged at ``now``."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        fd = process.field(name)
        if fd is None:
            known = names_list([f.name for f in process.fields], limit=20)
            raise InvalidValue(
                f"process '{process.id}' has no field '{name}'; its fields: {known}"
            )
        value = None if raw is None or raw == "" else coerce(fd, raw, org)
        if value is not None and (fd.earliest or fd.latest):
            _check_date_limits(process, fd, value, now)
        out[name] = value
    return out


# ------------------------------------------------------------ principals


def user_principal(user: str) -> str:
    return f"user:{user}"


def principals_of(user: str, org: OrgDirectory) -> tuple[str, ...]:
    """Every principal a user answers for: themselves and their roles."""
    u = org.user(user)
    roles = u.roles if u is not None else ()
    return (user_principal(user), *(f"role:{r}" for r in roles))


def holds(user: str, principal: str, org: OrgDirectory) -> bool:
    return principal in principals_of(user, org)


def describe_principal(principal: str, labels: Mapping[str, str], org: OrgDirectory) -> str:
    """``carol (head of sales)``, ``a finance-reviewer (frank)``."""
    kind, _, name = principal.partition(":")
    if kind == "role":
        members = [u.id for u in org.members(name)]
        return f"a {name} ({names_list(members, limit=3)})"
    label = labels.get(principal)
    return f"{name} ({label})" if label else name


def describe_principals(
    principals: tuple[str, ...], labels: Mapping[str, str], org: OrgDirectory
) -> str:
    if not principals:
        return "nobody"
    return " or ".join(describe_principal(p, labels, org) for p in principals)


def ask_instead(ctx: Context, who: str) -> str:
    """The hint of a refusal: who may act instead (``you are bob; ask carol, or an admin``)."""
    admins = [u.id for u in ctx.org.members(ADMIN_ROLE) if u.id != ctx.actor]
    if not admins:
        return f"you are {ctx.actor}; ask {who}"
    return f"you are {ctx.actor}; ask {who}, or an admin ({names_list(admins, limit=3)})"


# ----------------------------------------------------------- the runner


class Run(Struct):
    """One command being applied: the evolving instance and its events."""

    process: Process
    inst: Instance
    ctx: Context
    events: list[Event] = msgspec.field(default_factory=list)
    notices: list[Notice] = msgspec.field(default_factory=list)
    next_assignee: str | None = None
    next_assignee_used: bool = False
    starting: bool = False
    picks: list[tuple[str, str, str]] = msgspec.field(default_factory=list)  # (pick, pool, user)
    picked: list[dict[str, Any]] = msgspec.field(default_factory=list)  # for the next entry
    branch: str | None = None  # the parallel branch in focus: its entries say so
    forks_entered: int = 0

    def emit(
        self,
        kind: str,
        *,
        stage: str | None = None,
        result: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        values = dict(data or {})
        if self.branch is not None:
            if "branch" in values:  # a decision's own branch, inside a parallel branch
                values["choice"] = values.pop("branch")
            values["branch"] = self.branch
        self.events.append(Event(kind, self.ctx.actor, self.ctx.at, stage, result, values))

    def set(self, **changes: Any) -> None:
        # A new instance each time (msgspec's replace copies the fields in C,
        # well under a microsecond): code reads ``inst`` between nearly every
        # two sets, and keeps earlier ones (tick's fire restores one), so
        # gathering changes for later would not save copies.
        self.inst = replace(self.inst, **changes)

    def key(self, kind: str, stage: str, index: int = 0) -> str:
        """The key of a timer this command creates."""
        return timer_key(kind, stage, index, self.inst.version + 1)

    def notify(self, principals: tuple[str, ...] | list[str], kind: str, message: str,
               stage: str | None = None, event: str | None = None) -> None:
        """A notice for each user behind ``principals`` (roles: their members),
        except the actor, who knows already. For an ``event`` the definition's
        ``notify:`` (the stage's, else the process's) may tell nobody, choose
        whom to tell, and write the subject and message from its templates."""
        subject = None
        spec = self._notify_spec(stage, event) if event is not None else None
        if spec is not None:
            if spec.off:
                return
            if spec.to:
                principals = self._notify_targets(spec, stage)
            if spec.subject or spec.message:
                values = self._template_values(stage, event or "")
                if spec.message:
                    message = render_template(spec.message, values, self.inst.record)
                if spec.subject:
                    subject = render_template(spec.subject, values, self.inst.record)
        for user in users_of(principals, self.ctx.org):
            if user != self.ctx.actor:
                self.notices.append(Notice(user, kind, message, stage, subject))

    def _notify_spec(self, stage: str | None, event: str) -> NotifySpec | None:
        own = self.process.stage(stage) if stage else None
        found = notify_for(own.notify, event) if own is not None else None
        return found or notify_for(self.process.notify, event)

    def _notify_targets(self, spec: NotifySpec, stage: str | None) -> list[str]:
        out: list[str] = []
        own = self.process.stage(stage or "")
        for t in spec.to:
            if t == "assignees":
                out += self.inst.assignees
            elif t == "initiator":
                out.append(user_principal(self.inst.initiator))
            elif t == "watchers":
                out += [user_principal(w) for w in self.inst.watchers]
            elif isinstance(t, Assignee) and own is not None:
                try:
                    out.append(resolve(self, own, t)[0])
                except FlowctlError:  # e.g. an empty user field: nobody there to tell
                    continue
        return out

    def _template_values(self, stage: str | None, event: str) -> dict[str, Any]:
        org = self.ctx.org

        def name(user_id: str) -> str:
            u = org.user(user_id)
            return u.name if u is not None else user_id

        own = self.process.stage(stage or "")
        return {
            "instance": self.inst.id, "process": self.process.name,
            "stage": own.label if own is not None else "", "stage_id": stage or "",
            "initiator": name(self.inst.initiator),
            "assignees": [name(u) for u in users_of(self.inst.assignees, org)],
            "due_at": self.inst.due_at, "outcome": self.inst.outcome, "event": event,
        }

    def stage(self, stage_id: str) -> Stage:
        s = self.process.stage(stage_id)
        if s is None:
            raise FlowctlError(
                f"process '{self.process.id}' has no stage '{stage_id}'",
                hint=f"run `flowctl lint` on {self.process.source or 'the definition'}",
            )
        return s

    def done(self) -> Transition:
        inst = replace(self.inst, version=self.inst.version + 1, updated_at=self.ctx.at)
        turns = tuple((pool, user) for pick, pool, user in self.picks if pick == "round-robin")
        return Transition(inst, tuple(self.events), tuple(self.notices), turns)


def users_of(principals: tuple[str, ...] | list[str], org: OrgDirectory) -> list[str]:
    """The users behind principals, in order, once each (a role: its members)."""
    out: list[str] = []
    for p in principals:
        kind, _, name = p.partition(":")
        names = [u.id for u in org.members(name)] if kind == "role" else [name]
        out += [n for n in names if n not in out]
    return out


def start(
    process: Process,
    command: Start,
    ctx: Context,
    *,
    instance_id: str,
    digest: str,
    parent_id: str | None = None,
    initiator: str | None = None,
) -> Transition:
    """A new instance: check the starter, set the fields, enter the start stage
    and run automatic stages until a person (or time, or a child) is needed.

    A child process (``parent_id`` given) is started by the parent's stage, not
    by a person: the starters are not checked, and ``initiator`` (the parent's
    initiator) becomes its initiator."""
    check_command_text(command)
    if parent_id is None:
        _check_starter(process, ctx)
    starts = process.start_stages
    if len(starts) != 1:
        raise FlowctlError(
            f"process '{process.id}' has {len(starts)} start stages; it needs exactly one",
            hint="run `flowctl lint` on it",
        )
    if parent_id is None:
        _check_settable(process, command.values, start_fields(starts[0]),
                        f"when starting '{process.id}'", "at start")
    parsed = _parse_values(process, command.values, ctx.org, ctx.now)
    record = {k: v for k, v in parsed.items() if v is not None}
    inst = Instance(
        id=instance_id,
        process_id=process.id,
        definition_digest=digest,
        initiator=initiator or ctx.actor,
        started_at=ctx.at,
        updated_at=ctx.at,
        version=0,
        record=record,
        note=command.note or "",
        parent_id=parent_id,
    )
    run = Run(process, inst, ctx, starting=True)
    data: dict[str, Any] = {"process": process.id, "name": process.name, "definition": digest}
    if parent_id is not None:
        data["parent"] = parent_id
        data["initiator"] = inst.initiator
    if record:
        data["fields"] = dict(record)
    if command.note:
        data["note"] = command.note
    run.emit("started", data=data)
    apply_defaults(run)
    enter(run, starts[0].id)
    return run.done()


def _member(dept: str | None, named: str, exact: bool, org: OrgDirectory) -> bool:
    """Whether a user of department ``dept`` belongs to the department ``named``:
    it, or (unless ``exact``) one of its sub-departments."""
    if dept is None:
        return False
    return dept == named if exact else org.within(dept, named)


def _check_starter(process: Process, ctx: Context) -> None:
    s = process.starters
    if s.anyone:
        return
    user = ctx.org.user(ctx.actor)
    if user is not None and (
        user.id in s.users
        or any(_member(user.department, d, s.exact, ctx.org) for d in s.departments)
        or any(r in s.roles for r in user.roles)
    ):
        return
    allowed = [f"department {d}" for d in s.departments]
    allowed += [f"role {r}" for r in s.roles]
    allowed += [f"user {u}" for u in s.users]
    raise NotPermitted(
        f"{ctx.actor} may not start '{process.id}'; it is started by: {', '.join(allowed)}",
        hint=f"you are {ctx.actor}; ask one of them to start it",
        allowed=tuple(allowed),
    )


# ------------------------------------------------------------ entering


def enter(run: Run, stage_id: str) -> None:
    """Enter a stage; follow decisions (and subprocesses that do not wait)
    until a stage needs a person, time or a child, or the instance ends."""
    for _ in range(MAX_AUTOMATIC_STEPS):
        if run.branch is not None and stage_id == _join(run).id:
            _branch_joined(run, stage_id)
            return
        stage = run.stage(stage_id)
        run.set(
            stage=stage.id, stage_state=NOT_STARTED, entered_at=run.ctx.at, due_at=None,
            assignees=(), labels={}, approvers=(), votes=(), timers=(), wake_at=None, tasks=(),
        )
        apply_sets(run, stage, stage.sets, f"on entering '{stage.id}'")
        # must_change compares with the record as entered, after the stage's own set:
        run.set(baseline={n: run.inst.record.get(n) for n in stage.must_change_for()})
        if stage.kind is StageKind.END:
            if run.branch is not None:
                _branch_ended(run, stage)
                return
            _complete(run, stage)
            return
        if stage.kind is StageKind.PARALLEL:
            _enter_parallel(run, stage)
            return
        if stage.kind is StageKind.JOIN:
            raise FlowctlError(
                f"'{stage.id}' of '{run.process.id}' is the join of parallel stage"
                f" '{stage.fork}', entered from outside its branches",
                hint=f"run `flowctl lint` on {run.process.source or 'the definition'}",
            )
        if stage.kind is StageKind.DECISION:
            stage_id = _decide(run, stage)
            continue
        if stage.kind is StageKind.WAIT:
            _enter_wait(run, stage)
            return
        if stage.kind is StageKind.SUBPROCESS:
            after = _enter_subprocess(run, stage)
            if after is None:
                return
            stage_id = after
            continue
        _enter_person_stage(run, stage)
        return
    raise Refused(
        f"more than {MAX_AUTOMATIC_STEPS} automatic stages in a row in '{run.process.id}'"
        f" (last: '{stage_id}'); the decisions loop",
        hint="fix the decision branches of the definition",
    )


def _complete(run: Run, stage: Stage) -> None:
    outcome = stage.outcome or COMPLETED
    run.set(
        status=COMPLETED, stage=None, stage_state=DONE, last_stage=stage.id, outcome=outcome,
        entered_at=run.ctx.at,
    )
    run.emit("completed", stage=stage.id, data={"outcome": outcome})
    kind = outcome if outcome in (REJECTED, CANCELLED) else COMPLETED
    message = f"{run.inst.id}: {kind} at '{stage.id}' (outcome: {outcome})"
    if outcome == REJECTED:
        message += f"; reason: {_reason(run)}"
    tell_outcome(run, kind, message, stage.id)


REJECTED = "rejected"  # the outcome of an end that rejects


def tell_outcome(run: Run, kind: str, message: str, stage: str | None) -> None:
    """The initiator hears how the instance ended (not when they ended it
    themselves; a child process's outcome goes to its parent instead)."""
    if run.inst.parent_id is None:
        run.notify([user_principal(u) for u in (run.inst.initiator, *run.inst.watchers)],
                   kind, message, stage, event="outcome")


def _reason(run: Run) -> str:
    """Why the instance was rejected: the comment of the result that led to
    the end, else the values of the fields that result requires."""
    for e in reversed(run.events):
        if e.kind != "result":
            continue
        if e.data.get("comment"):
            return str(e.data["comment"])
        stage = run.process.stage(e.stage or "")
        result = stage.result(e.result or "") if stage is not None else None
        values = [
            f"{name}={run.inst.record[name]}" for name in (result.required if result else ())
            if run.inst.record.get(name) not in (None, "")
        ]
        if values:
            return ", ".join(values)
        break
    return "none given"


# ------------------------------------------------------------ parallel

# A parallel stage starts its branches (those whose ``when`` holds), each a
# path of stages to the join. The instance's per-stage fields then gather the
# live branches' (see Instance.fork); a command on one branch's stage runs
# with that branch in focus (its state in the instance's per-stage fields, its
# entries marked with its name) and puts it back after.


def focus(run: Run, name: str) -> None:
    """Put branch ``name``'s state into the instance's per-stage fields."""
    b = run.inst.branch(name)
    if b is None:
        raise FlowctlError(f"instance {run.inst.id} has no branch '{name}'")
    status = b.status if run.inst.status in (ACTIVE, WAITING) else run.inst.status
    run.set(status=status, **{f: getattr(b, f) for f in BRANCH_FIELDS})
    run.branch = name


def unfocus(run: Run) -> None:
    """Take the branch in focus back from the per-stage fields (when it is
    still live) and gather the live branches' state again."""
    name = run.branch
    if name is None:
        return
    run.branch = None
    inst = run.inst
    b = inst.branch(name)
    if b is not None:
        kept = replace(b, status=inst.status if inst.status in (ACTIVE, WAITING) else b.status,
                       **{f: getattr(inst, f) for f in BRANCH_FIELDS})
        _put_branch(run, kept)
    _gather(run)


def focused(inst: Instance, name: str) -> Instance:
    """The instance as branch ``name`` sees it (for views: its stage, assignees,
    due time...)."""
    b = inst.branch(name)
    if b is None:
        return inst
    return replace(inst, status=b.status if b.live else inst.status,
                   **{f: getattr(b, f) for f in BRANCH_FIELDS})


def _put_branch(run: Run, branch: BranchRun) -> None:
    run.set(branches=tuple(branch if b.name == branch.name else b
                           for b in run.inst.branches))


def _gather(run: Run) -> None:
    """The instance's per-stage fields from its live branches (while not paused)."""
    inst = run.inst
    live = [b for b in inst.branches if b.live]
    labels: dict[str, str] = {}
    for b in live:
        labels.update(b.labels)
    dues = sorted(b.due_at for b in live if b.due_at)
    wakes = sorted(b.wake_at for b in live if b.wake_at)
    changes: dict[str, Any] = {
        "stage": inst.fork, "stage_state": IN_PROGRESS, "entered_at": inst.forked_at,
        "due_at": dues[0] if dues else None,
        "assignees": tuple(dict.fromkeys(p for b in live if b.status == ACTIVE
                                         for p in b.assignees)),
        "labels": labels, "approvers": (), "votes": (),
        "timers": tuple(t for b in live for t in b.timers),
        "wake_at": wakes[0] if wakes else None,
        "tasks": tuple(t for b in live for t in b.tasks), "baseline": {},
    }
    if inst.status in (ACTIVE, WAITING):
        changes["status"] = ACTIVE if any(b.status == ACTIVE for b in live) else WAITING
    run.set(**changes)


def _join(run: Run) -> Stage:
    fork = run.inst.fork or ""
    join = run.process.join_of(fork)
    if join is None:
        raise FlowctlError(
            f"parallel stage '{fork}' of '{run.process.id}' has no join",
            hint=f"run `flowctl lint` on {run.process.source or 'the definition'}",
        )
    return join


def _branch_holds(run: Run, stage: Stage, when: str, record: Mapping[str, Any],
                  read: dict[str, Any]) -> bool:
    try:
        cond = _condition(when)
        for name in sorted(field_names(cond)):
            read[name] = record.get(name)
        return bool(evaluate(cond, record))
    except ConditionEvalError as exc:
        raise Refused(
            f"cannot start the branches of '{stage.id}': condition `{when}` failed: {exc}",
            hint="set the fields it reads with --set FIELD=VALUE",
        ) from exc


def _enter_parallel(run: Run, stage: Stage) -> None:
    if run.branch is not None or run.inst.fork is not None:
        raise FlowctlError(
            f"parallel stage '{stage.id}' of '{run.process.id}' is inside a branch of"
            f" '{run.inst.fork}'; parallel stages do not nest",
            hint=f"run `flowctl lint` on {run.process.source or 'the definition'}",
        )
    run.forks_entered += 1
    if run.forks_entered > MAX_AUTOMATIC_STEPS:
        raise Refused(
            f"more than {MAX_AUTOMATIC_STEPS} parallel stages in a row in '{run.process.id}'"
            f" (last: '{stage.id}') with no person to act; the definition loops",
            hint="fix the branches' conditions of the definition",
        )
    run.set(fork=stage.id, forked_at=run.ctx.at)
    join = _join(run)
    record = dict(run.inst.record)
    read: dict[str, Any] = {}
    started = [b for b in stage.forks
               if b.when is None or _branch_holds(run, stage, b.when, record, read)]
    skipped = {b.name: b.when for b in stage.forks if b not in started}
    run.set(branches=tuple(BranchRun(b.name) for b in started), status=ACTIVE)
    data: dict[str, Any] = {
        "branches": [b.name for b in started], "join": join.id,
        "complete": join.complete, "needed": join.needed(len(started)),
    }
    if skipped:
        data["skipped"] = skipped
    if read:
        data["values"] = read
    run.emit("stage_entered", stage=stage.id, data=data)
    for b in started:
        if run.inst.fork != stage.id:
            return  # an earlier branch ended the instance, or completed the join
        focus(run, b.name)
        enter(run, b.to)
        unfocus(run)
    if run.inst.fork == stage.id:
        _settle(run)


def _branch_joined(run: Run, join_id: str) -> None:
    name = run.branch or ""
    run.branch = None
    b = run.inst.branch(name)
    if b is not None:
        _put_branch(run, BranchRun(name, status=JOINED, stage=join_id,
                                   entered_at=run.ctx.at))
    join = _join(run)
    joined = sum(1 for x in run.inst.branches if x.status == JOINED)
    run.emit("branch_joined", stage=join_id, data={
        "branch": name, "joined": joined, "needed": join.needed(len(run.inst.branches)),
    })
    _settle(run)


def _branch_ended(run: Run, end: Stage) -> None:
    """A branch reached an end stage: by the join's ``on_reject``, the instance
    ends there now (the other branches cancelled), or once the others finish."""
    name = run.branch or ""
    run.branch = None
    join = _join(run)
    _put_branch(run, BranchRun(name, status=ENDED, stage=end.id, entered_at=run.ctx.at,
                               end=end.id))
    run.emit("branch_ended", stage=end.id, data={
        "branch": name, "outcome": end.outcome or COMPLETED, "policy": join.on_reject.value,
    })
    if join.on_reject is JoinPolicy.CANCEL_OTHERS:
        _cancel_branches(run, f"branch '{name}' reached the end stage '{end.id}'")
    _settle(run)


def _cancel_branches(run: Run, reason: str) -> list[str]:
    """Cancel every live branch (journalled, its holders told); their names."""
    names = []
    for b in run.inst.branches:
        if not b.live:
            continue
        names.append(b.name)
        run.events.append(Event("branch_cancelled", run.ctx.actor, run.ctx.at, b.stage, None,
                                {"branch": b.name, "reason": reason}))
        what = f"'{b.stage}'" if b.stage else f"branch '{b.name}'"
        run.notify(b.assignees, "cancelled",
                   f"{run.inst.id}: {what} is no longer needed: {reason}", b.stage)
        _put_branch(run, replace(b, status=CANCELLED, assignees=(), timers=(), tasks=(),
                                 due_at=None, wake_at=None))
    return names


def _close_fork(run: Run) -> None:
    run.set(fork=None, forked_at=None, branches=(), assignees=(), labels={}, approvers=(),
            votes=(), timers=(), tasks=(), due_at=None, wake_at=None, baseline={})


def _settle(run: Run) -> None:
    """After a branch joined or ended: end the instance, complete the join and
    go on, or wait for the other branches."""
    inst = run.inst
    join = _join(run)
    live = [b for b in inst.branches if b.live]
    ended = [b for b in inst.branches if b.status == ENDED]
    if ended:
        if live:
            _gather(run)
            return
        end = run.stage(ended[0].end or "")
        _close_fork(run)
        _complete(run, end)
        return
    started = [b for b in inst.branches if b.status != CANCELLED]
    joined = [b.name for b in inst.branches if b.status == JOINED]
    if len(joined) < join.needed(len(started)):
        _gather(run)
        return
    data: dict[str, Any] = {"branches": joined, "complete": join.complete, "to": join.next}
    if live:
        done = "all" if join.complete == "all" else f"{len(joined)} of {len(started)}"
        data["cancelled"] = _cancel_branches(
            run, f"the join '{join.id}' is complete ({done} branches reached it)")
    run.emit("joined", stage=join.id, data=data)
    _close_fork(run)
    enter(run, join.next or "")


def choose_branch(run: Run, stage_id: str | None, doing: str) -> str:
    """The branch a command on an open parallel stage acts in: the one at
    ``stage_id``, else the one active stage the actor holds, else refused."""
    inst, ctx = run.inst, run.ctx
    active = [b for b in inst.branches if b.status == ACTIVE]
    listing = "; ".join(
        f"'{b.stage}' (branch {b.name}, {describe_principals(b.assignees, b.labels, ctx.org)})"
        for b in active
    ) or "none"
    stages = tuple(b.stage or "" for b in active)
    if stage_id is not None:
        for b in active:
            if b.stage == stage_id:
                return b.name
        waiting = inst.branch_at(stage_id)
        why = (f"branch {waiting.name} is waiting there" if waiting is not None
               else f"it is not an active stage of {inst.id}")
        raise StageChoice(
            f"stage '{stage_id}' cannot be {doing}: {why}; active stages: {listing}",
            hint="name one of them with --stage STAGE", active=stages,
        )
    mine = [b for b in active if any(holds(ctx.actor, p, ctx.org) for p in b.assignees)
            and excluded(inst, run.stage(b.stage or ""), ctx.actor) is None]
    if len(mine) == 1:
        return mine[0].name
    if len(active) == 1:
        return active[0].name
    if not active:
        raise InstanceClosed(
            f"instance {inst.id} has no active stage at '{inst.stage}': its branches are"
            f" waiting; nothing can be {doing} now", status=inst.status,
        )
    held = (f"{ctx.actor} holds {len(mine)} of them" if mine
            else f"{ctx.actor} holds none of them")
    raise StageChoice(
        f"{inst.id} has {len(active)} active stages ({held}): {listing}; name the one you"
        " mean",
        hint=f"add --stage STAGE, e.g. --stage {(mine or active)[0].stage}", active=stages,
    )


def on_stage(run: Run, stage_id: str | None, doing: str, act: Any) -> None:
    """Run ``act()`` on the active stage the command means: with an open
    parallel stage, in the branch chosen by :func:`choose_branch`."""
    inst = run.inst
    _require_open(inst, doing)
    if inst.fork is None:
        if stage_id is not None and stage_id != inst.stage:
            raise StageChoice(
                f"stage '{stage_id}' cannot be {doing}: {inst.id} is at '{inst.stage}'",
                hint="drop --stage, or name the instance's current stage",
                active=inst.active_stages,
            )
        act()
        return
    focus(run, choose_branch(run, stage_id, doing))
    act()
    unfocus(run)


@lru_cache(maxsize=256)
def _condition(text: str) -> Any:

    return parse(text)


def _decide(run: Run, stage: Stage) -> str:

    record = dict(run.inst.record)
    read: dict[str, Any] = {}
    for i, branch in enumerate(stage.branches):
        try:
            cond = _condition(branch.when)
            for name in sorted(field_names(cond)):
                read[name] = record.get(name)
            taken = bool(evaluate(cond, record))
        except ConditionEvalError as exc:
            raise Refused(
                f"cannot decide at '{stage.id}': condition `{branch.when}` failed: {exc}",
                hint="set the fields it reads with --set FIELD=VALUE",
            ) from exc
        if taken:
            run.emit("decision", stage=stage.id, data={
                "branch": i + 1, "when": branch.when, "to": branch.to, "values": read,
            })
            return branch.to
    if stage.default is None:
        raise Refused(
            f"no branch of decision '{stage.id}' applies and it has no default",
            hint="fix the definition, or set the fields its conditions read",
        )
    run.emit("decision", stage=stage.id, data={
        "branch": "default", "to": stage.default, "values": read,
    })
    return stage.default


def _enter_wait(run: Run, stage: Stage) -> None:
    if stage.wait_for is not None:
        wake = iso(later(run.process, run.ctx.now, stage.wait_for, False))
        why = f"for {stage.wait_for}"
    else:
        name = stage.wait_until or ""
        value = run.inst.record.get(name)
        if value in (None, ""):
            raise FieldsMissing(
                f"cannot enter wait stage '{stage.id}': it waits until record.{name},"
                " which is empty",
                hint=f"set it with --set {name}=YYYY-MM-DD",
                fields=(name,),
            )
        wake = iso(parse_time(str(value)))
        why = f"until record.{name}"
    run.set(
        status=WAITING, wake_at=wake,
        timers=(Timer(WAKE, wake, stage.id, 0, run.key(WAKE, stage.id)),),
    )
    run.emit("stage_entered", stage=stage.id, data={"wait": why, "wake_at": wake})
    _on_enter(run, stage)


def _enter_subprocess(run: Run, stage: Stage) -> str | None:
    """Record the child it needs; return the next stage when it does not wait."""
    inputs = {child: run.inst.record.get(parent) for child, parent in stage.inputs}
    child = Child(process=stage.process or "", stage=stage.id, inputs=inputs, wait=stage.wait_child)
    run.set(children=(*run.inst.children, child))
    run.emit("stage_entered", stage=stage.id, data={
        "child_needed": child.process, "inputs": inputs, "wait": child.wait,
    })
    _on_enter(run, stage)
    if stage.wait_child or stage.next is None:
        run.set(status=WAITING)
        return None
    return stage.next


def _enter_person_stage(run: Run, stage: Stage) -> None:
    specs = stage.approvers if stage.kind is StageKind.APPROVAL else ()
    if stage.kind is not StageKind.APPROVAL and stage.assignee is not None:
        specs = (stage.assignee,)
    found = [resolve(run, stage, a) for a in specs] if specs else [_named_assignee(run, stage)]
    principals = tuple(dict.fromkeys(p for p, _ in found))
    labels = {p: label for p, label in found if label}
    countersign = stage.kind is StageKind.APPROVAL and stage.policy is ApprovalPolicy.ALL
    due, timers = _sla_timers(run, stage)
    run.set(
        status=ACTIVE, assignees=principals, labels=labels,
        approvers=principals if countersign else (), due_at=due, timers=timers,
    )
    data: dict[str, Any] = {"assignees": list(principals), **took_picked(run)}
    if due:
        data["due_at"] = due
    if stage.tasks:
        data["tasks"] = [t.id for t in stage.tasks]
    if stage.events:
        data["events"] = [e.type for e in stage.events]
    run.emit("stage_entered", stage=stage.id, data=data)
    until = f", due {due}" if due else ""
    run.notify(principals, "assigned",
               f"{run.inst.id}: '{stage.label}' waits for you{until}", stage.id, event="entered")
    _on_enter(run, stage)


_DEFAULT_CALENDAR = Calendar(path=())


def later(process: Process, start: datetime, duration: str | Duration,
          business_hours: bool) -> datetime:
    """``start`` + ``duration`` (``flowctl.engine.calendars.add_duration``): months
    and working days by the process calendar (UTC 09:00-17:00 Monday to Friday
    without one), the rest in its working time when ``business_hours``."""
    cal = process.calendar or _DEFAULT_CALENDAR
    dur = duration if isinstance(duration, Duration) else _duration(duration)
    try:
        return add_duration(start, dur, cal, business_hours)
    except CalendarError as exc:
        raise FlowctlError(
            f"process '{process.id}': {exc}", hint="run `flowctl lint` on the definition"
        ) from exc


def _sla_timers(run: Run, stage: Stage) -> tuple[str | None, tuple[Timer, ...]]:
    """The due time and the timers of a stage's SLA, counted from now."""
    sla = stage.sla
    if sla is None:
        return None, ()
    now, bh = run.ctx.now, sla.business_hours
    due = iso(later(run.process, now, sla.within, bh))
    timers = [Timer(DUE, due, stage.id, 0, run.key(DUE, stage.id))]
    for i, e in enumerate(sla.escalations):
        at = iso(later(run.process, now, e.after, bh))
        timers.append(Timer(ESCALATION, at, stage.id, i, run.key(ESCALATION, stage.id, i)))
    return due, tuple(timers)


def _on_enter(run: Run, stage: Stage) -> None:
    """Record the stage's events and create its tasks (delayed ones get a timer)."""
    for ev in stage.events:
        data = {"type": ev.type, **({"comment": ev.comment} if ev.comment else {})}
        run.emit("event", stage=stage.id, data=data)
    tasks: list[Task] = []
    timers = list(run.inst.timers)
    for i, spec in enumerate(stage.tasks):
        who = _task_assignee(run, stage, spec.assignee)
        picked = took_picked(run)
        if spec.delay:
            at = iso(later(run.process, run.ctx.now, spec.delay, False))
            tasks.append(Task(spec.id, spec.name, stage.id, who, _blocking(spec),
                              TASK_SCHEDULED, at, blocks=spec.blocks))
            timers.append(Timer(TASK, at, stage.id, i, run.key(TASK, stage.id, i)))
            run.emit("task_scheduled", stage=stage.id, data={
                "task": spec.id, "name": spec.name, "assignee": who,
                "blocking": _blocking(spec),
                **({"blocks": list(spec.blocks)} if spec.blocks else {}), "at": at, **picked,
            })
            continue
        task = Task(spec.id, spec.name, stage.id, who, _blocking(spec), TASK_OPEN, run.ctx.at,
                    blocks=spec.blocks)
        tasks.append(task)
        task_created(run, task, picked)
    run.set(tasks=tuple(tasks), timers=tuple(timers))


def _blocking(spec: TaskSpec) -> bool:
    return spec.blocking or bool(spec.blocks)


def task_created(run: Run, task: Task, extra: Mapping[str, Any] | None = None) -> None:
    run.emit("task_created", stage=task.stage, data={
        **(extra or {}), "task": task.id, "name": task.name, "assignee": task.assignee,
        "blocking": task.blocking, **({"blocks": list(task.blocks)} if task.blocks else {}),
    })
    block = (f" (needed before {', '.join(task.blocks)})" if task.blocks
             else " (blocking)" if task.blocking else "")
    run.notify([task.assignee], "task",
               f"{run.inst.id}: task '{task.name}'{block} at '{task.stage}'", task.stage,
               event="task")


def took_picked(run: Run) -> dict[str, Any]:
    """``{"picked": [...]}`` for the journal entry of the assignment just made
    by ``pick`` (empty when nothing was picked), and forget them."""
    if not run.picked:
        return {}
    out = {"picked": list(run.picked)}
    run.picked.clear()
    return out


def _task_assignee(run: Run, stage: Stage, spec: Assignee | None) -> str:
    if spec is not None:
        return resolve(run, stage, spec)[0]
    users = [p for p in run.inst.assignees if p.startswith("user:")]
    if run.inst.assignees:
        return (users or list(run.inst.assignees))[0]
    return user_principal(run.inst.initiator)


def _named_assignee(run: Run, stage: Stage) -> tuple[str, str]:
    """A stage with no assignee: whoever advanced into it names one."""
    if run.starting:
        return user_principal(run.inst.initiator), "initiator"
    if run.next_assignee is None:
        raise NoAssignee(
            f"stage '{stage.id}' has no assignee in the definition; name who does it next",
            hint="add --next-assignee USER",
        )
    run.next_assignee_used = True
    return user_principal(run.next_assignee), f"named by {run.ctx.actor}"


def _subject(run: Run, stage: Stage, of: str) -> str:
    """The user a relation is about: the initiator, the current assignee
    (its first user; a role: its first member) or a user field."""
    if of == "initiator":
        return run.inst.initiator
    if of == "assignee":
        users = users_of(run.inst.assignees, run.ctx.org)
        if users:
            return users[0]
        raise NoAssignee(f"cannot find who handles '{stage.id}': it has no current assignee")
    value = run.inst.record.get(of)
    if isinstance(value, str) and value:
        return value
    raise NoAssignee(
        f"cannot find who handles stage '{stage.id}': it depends on record.{of}, which is empty",
        hint=f"set it with --set {of}=USER",
    )


def resolve(run: Run, stage: Stage, a: Assignee) -> tuple[str, str]:
    """(principal, label) for an assignee spec, at stage entry."""
    org = run.ctx.org
    if a.candidates:
        return _first_available(run, stage, a)
    if a.by is not None:
        principal, label = resolve(run, stage, _case(run, stage, a))
        value = run.inst.record.get(a.by)
        return principal, label or f"record.{a.by} = {value}"
    if a.pick is not None:
        return _pick(run, stage, a)
    if a.initiator:
        return user_principal(run.inst.initiator), "initiator"
    if a.user is not None:
        return user_principal(a.user), ""
    if a.role is not None:
        return f"role:{a.role}", ""
    if a.field is not None:
        return user_principal(_subject(run, stage, a.field)), f"record.{a.field}"
    if a.department is not None:
        d = org.headed(a.department)
        if d is None or not d.head:
            raise NoAssignee(
                f"cannot find who handles stage '{stage.id}': department '{a.department}'"
                " has no head in the org directory, nor has any department above it",
                hint="set the department's head in the org directory",
            )
        return user_principal(d.head), f"head of {d.id}"
    return _resolve_relation(run, stage, a)


def unavailable(run: Run, stage: Stage, user: str) -> str | None:
    """Why ``user`` cannot take ``stage`` now: away (the org directory's
    ``away_until``), not in the org directory, or excluded from the stage."""
    u = run.ctx.org.user(user)
    if u is None:
        return f"{user} is not in the org directory"
    if u.away(run.ctx.now.date().isoformat()):
        return f"{user} is away until {u.away_until}"
    return excluded(run.inst, stage, user)


def _first_available(run: Run, stage: Stage, a: Assignee) -> tuple[str, str]:
    """The first candidate who is available (a role: one of its members is)."""
    passed: list[str] = []
    for i, c in enumerate(a.candidates):
        try:
            principal, label = resolve(run, stage, c)
        except NoAssignee as exc:
            passed.append(f"{c.describe()}: {exc.message}")
            continue
        kind, _, name = principal.partition(":")
        if kind == "role":
            members = [m.id for m in run.ctx.org.members(name)]
            if any(unavailable(run, stage, m) is None for m in members):
                return principal, _candidate_label(i, label)
            passed.append(f"role {name}: no member is available")
            continue
        why = unavailable(run, stage, name)
        if why is None:
            return principal, _candidate_label(i, label)
        passed.append(why)
    raise NoAssignee(
        f"cannot find who handles stage '{stage.id}': none of its {len(a.candidates)}"
        f" candidates is available ({'; '.join(passed)})",
        hint="wait until one is back, change away_until in the org directory,"
        " or add a candidate to the definition",
    )


def _candidate_label(index: int, label: str) -> str:
    first = "first candidate" if index == 0 else f"candidate {index + 1}, the first available"
    return f"{label}; {first}" if label else first


def _case(run: Run, stage: Stage, a: Assignee) -> Assignee:
    """The assignee the value of record field ``a.by`` chooses, else the default."""
    name = a.by or ""
    value = run.inst.record.get(name)
    key = ("true" if value else "false") if isinstance(value, bool) else (
        _num(value) if isinstance(value, int | float) else value
    )
    for case, chosen in a.cases:
        if value is not None and case == key:
            return chosen
    if a.otherwise is not None:
        return a.otherwise
    cases = ", ".join(c for c, _ in a.cases)
    got = "empty" if value in (None, "") else f"{value!r}"
    raise NoAssignee(
        f"cannot find who handles stage '{stage.id}': it is chosen by record.{name}, which is"
        f" {got}; the cases are {cases}, and there is no default",
        hint=f"set it with --set {name}=VALUE (one of {cases}), or add a default to the"
        " definition's assignee",
    )


def pool_members(org: OrgDirectory, a: Assignee) -> list[str]:
    """Whom ``pick`` picks among, in the org directory's order: the role's
    members, or the members of the department and of its sub-departments."""
    if a.role is not None:
        return [u.id for u in org.members(a.role)]
    return [u.id for u in org.users if org.within(u.department, a.department or "")]


def _pick(run: Run, stage: Stage, a: Assignee) -> tuple[str, str]:
    """One available member of a role or department: the one after the pool's
    last pick (round-robin), or the one holding the fewest open stages."""
    org = run.ctx.org
    members = pool_members(org, a)
    free = [m for m in members if unavailable(run, stage, m) is None]
    pool = a.pool
    where = pool.replace(":", " ")
    if not free:
        why = "; ".join(unavailable(run, stage, m) or "" for m in members) or "it has no members"
        raise NoAssignee(
            f"cannot find who handles stage '{stage.id}': nobody of {where} is available ({why})",
            hint="wait until one is back, change away_until in the org directory,"
            " or add a member",
        )
    work = run.ctx.workload or Workload()
    if a.pick == "round-robin":
        last = dict(work.turns).get(pool)
        for _, p, u in run.picks:  # picked earlier in this same command
            if p == pool:
                last = u
        start = members.index(last) + 1 if last in members else 0
        order = members[start:] + members[:start]
        chosen = next(m for m in order if m in free)
        detail: dict[str, Any] = {"after": last} if last else {}
    else:
        load = dict(work.load)  # this instance's stages are not counted
        for _, _, u in run.picks:  # picked earlier in this same command
            load[u] = load.get(u, 0) + 1
        chosen = min(free, key=lambda m: (load.get(m, 0), members.index(m)))
        detail = {"load": {m: load.get(m, 0) for m in free}}
    run.picks.append((a.pick or "", pool, chosen))
    run.picked.append({"pick": a.pick, "among": pool, "user": chosen, **detail})
    return user_principal(chosen), f"{a.pick} of {where}"


def _resolve_relation(run: Run, stage: Stage, a: Assignee) -> tuple[str, str]:
    org = run.ctx.org
    who = _subject(run, stage, a.of or "initiator")
    user = org.user(who)
    if a.relation == "department-head":
        d = org.headed(user.department) if user and user.department else None
        head = d.head if d else None
        label = f"head of {d.id}" if d else ""
    else:
        head = org.manager(who)
        label = f"manager of {who}"
    if not head:
        raise NoAssignee(
            f"cannot find who handles stage '{stage.id}': {who} has no {a.relation}"
            " in the org directory",
            hint="fix the org directory, or set the field to another user",
        )
    return user_principal(head), label


# ------------------------------------------------------------ commands


def _require_open(inst: Instance, doing: str) -> None:
    if inst.finished:
        raise InstanceClosed(
            f"instance {inst.id} is {inst.status}; nothing can be {doing}", status=inst.status
        )
    if inst.status == PAUSED:
        raise InstanceClosed(
            f"instance {inst.id} is paused at stage '{inst.stage}'; nothing can be {doing}"
            " until it is resumed",
            status=inst.status,
        )
    if inst.status == WAITING:
        until = f" until {inst.wake_at}" if inst.wake_at else " for its child process"
        raise InstanceClosed(
            f"instance {inst.id} is waiting at stage '{inst.stage}'{until};"
            f" nothing can be {doing} now",
            status=inst.status,
        )


def excluded(inst: Instance, stage: Stage, user: str) -> str | None:
    """Why ``user`` may not act at ``stage`` of ``inst`` (segregation of duties:
    ``exclude``, and approvals exclude the initiator by default), or None."""
    if stage.excludes_initiator and user == inst.initiator:
        rule = ("it excludes its initiator" if "initiator" in stage.exclude
                else "an approval excludes its initiator unless it says allow_initiator: true")
        return f"{user} started {inst.id}, and {rule}"
    if "previous-approvers" in stage.exclude:
        for where, who in inst.approved:
            if who == user and where != stage.id:
                return (f"{user} approved '{where}' of {inst.id}, and '{stage.id}' excludes"
                        " previous approvers")
    return None


def _check_excluded(run: Run, stage: Stage, verb: str, slots: tuple[str, ...]) -> None:
    ctx, inst = run.ctx, run.inst
    why = excluded(inst, stage, ctx.actor)
    if why is None:
        return
    others = [u for u in users_of(slots, ctx.org)
              if u != ctx.actor and excluded(inst, stage, u) is None]
    admins = [u.id for u in ctx.org.members(ADMIN_ROLE)
              if u.id != ctx.actor and excluded(inst, stage, u.id) is None]
    who = [names_list(others, limit=3)] if others else []
    if admins:
        who.append(f"an admin ({names_list(admins, limit=3)})")
    raise NotPermitted(
        f"{ctx.actor} may not {verb} '{stage.id}': {why}",
        hint=f"who else may act: {', or '.join(who)}" if who
        else "nobody else may act: add an approver or an admin to the org directory",
        allowed=tuple(user_principal(u) for u in (*others, *admins)),
    )


def _authorize(run: Run, stage: Stage, verb: str, slots: tuple[str, ...]) -> bool:
    """True when the actor acts as admin; raise Refused when they may not act."""
    ctx = run.ctx
    _check_excluded(run, stage, verb, slots)
    if any(holds(ctx.actor, p, ctx.org) for p in slots):
        return False
    if ctx.is_admin:
        return True
    who = describe_principals(slots, run.inst.labels, ctx.org)
    raise NotPermitted(
        f"only {who} can {verb} '{stage.id}'",
        hint=ask_instead(ctx, who),
        allowed=slots,
    )


def _verb(stage: Stage) -> str:
    return "approve" if stage.kind is StageKind.APPROVAL else "advance"


def advance(run: Run, cmd: Advance) -> None:
    on_stage(run, cmd.stage, "advanced", lambda: _advance(run, cmd))


def _advance(run: Run, cmd: Advance) -> None:
    inst = run.inst
    _require_open(inst, "advanced")
    stage = run.stage(inst.stage or "")
    result = stage.result(cmd.result)
    if result is None:
        names = tuple(r.name for r in stage.results)
        raise ResultNotAllowed(
            f"result '{cmd.result}' is not allowed at stage '{stage.id}';"
            f" allowed: {', '.join(names) or 'none'}",
            allowed=names,
        )
    countersign = bool(inst.approvers)
    if countersign:
        _check_not_voted(run, stage)
    as_admin = _authorize(run, stage, _verb(stage), inst.assignees)
    _check_tasks(run, stage, result.name)
    if cmd.next_assignee is not None and run.ctx.org.user(cmd.next_assignee) is None:
        raise InvalidValue(
            f"--next-assignee {cmd.next_assignee}: no such user in the org directory",
            hint=f"known users: {names_list([u.id for u in run.ctx.org.users])}",
        )
    _check_settable(run.process, cmd.values, stage.settable(result.name),
                    f"at stage '{stage.id}' with result '{result.name}'", "there")
    _apply_values(run, stage, cmd.values)
    apply_sets(run, stage, result.sets, f"with result '{result.name}'")
    _check_required(run, stage, (*stage.required_fields, *result.required))
    _check_changed(run, stage, result.name)
    _check_rules(run, stage, result)
    data: dict[str, Any] = {}
    if cmd.comment:
        data["comment"] = cmd.comment
    if as_admin:
        data["as_admin"] = True
    if stage.kind is StageKind.APPROVAL and result.name == "approve":
        run.set(approved=(*run.inst.approved, (stage.id, run.ctx.actor)))
    if countersign and result.name == "approve" and not _vote(run, stage, as_admin, data):
        return
    if countersign and result.name != "approve":
        run.emit("vote", stage=stage.id, result=result.name, data=data)
    run.emit("result", stage=stage.id, result=result.name, data=data)
    run.next_assignee = cmd.next_assignee
    enter(run, result.to)
    if cmd.next_assignee is not None and not run.next_assignee_used:
        where = run.inst.stage or run.inst.last_stage
        raise InvalidValue(
            f"--next-assignee is only for a next stage with no assignee;"
            f" '{where}' finds its own",
            hint="drop --next-assignee",
        )


def _check_tasks(run: Run, stage: Stage, result: str) -> None:
    open_ = [t for t in run.inst.tasks if t.holds_back(result)]
    if not open_:
        return
    what = ", ".join(
        f"{t.id} ({t.name}; {t.assignee.partition(':')[2]}"
        + (f"; appears {t.at}" if t.status == TASK_SCHEDULED else "") + ")"
        for t in open_
    )
    raise TasksOpen(
        f"stage '{stage.id}' of {run.inst.id} cannot take result '{result}': blocking task"
        f"{'s' if len(open_) > 1 else ''} not done: {what}",
        hint=f"finish {'them' if len(open_) > 1 else 'it'} first:"
        f" flowctl task done {run.inst.id} {open_[0].id}",
        tasks=tuple(t.id for t in open_),
    )


def _check_not_voted(run: Run, stage: Stage) -> None:
    for v in run.inst.votes:
        if v.user == run.ctx.actor:
            pending = describe_principals(run.inst.assignees, run.inst.labels, run.ctx.org)
            raise AlreadySigned(
                f"{run.ctx.actor} has already approved '{stage.id}';"
                f" every approver signs once; still waiting for: {pending}"
            )


def _vote(run: Run, stage: Stage, as_admin: bool, data: dict[str, Any]) -> bool:
    """Record an approval of a countersign stage; True when it was the last one."""
    inst = run.inst
    mine = [p for p in inst.assignees if holds(run.ctx.actor, p, run.ctx.org)]
    slot = mine[0] if mine else inst.assignees[0]
    vote = Vote(run.ctx.actor, slot, "approve", run.ctx.at, as_admin)
    pending = tuple(p for p in inst.assignees if p != slot)
    run.set(votes=(*inst.votes, vote), assignees=pending, stage_state=IN_PROGRESS)
    run.emit("vote", stage=stage.id, result="approve", data={
        **data, "for": slot, "pending": list(pending),
    })
    return not pending


def start_fields(stage: Stage) -> tuple[str, ...]:
    """The fields that may be given at start: those the start stage declares
    (its own and its results'), and those it needs to be entered: the field its
    assignee or approvers are found through (a rule's ``by`` too), a decision's
    conditions, a wait's ``until``, a subprocess's inputs."""
    names = list(stage.settable())
    tops = (stage.assignee, *stage.approvers)
    for a in (nested for top in tops if top is not None for nested in top.walk()):
        if a.field is not None:
            names.append(a.field)
        elif a.by is not None:
            names.append(a.by)
        elif a.of not in (None, "initiator", "assignee"):
            names.append(a.of or "")
    for branch in stage.branches:
        try:
            names += sorted(field_names(_condition(branch.when)))
        except ConditionError:  # a condition that does not parse: lint reports it
            pass
    if stage.wait_until is not None:
        names.append(stage.wait_until)
    names += [parent for _, parent in stage.inputs]
    return tuple(dict.fromkeys(names))


def _check_settable(process: Process, values: Mapping[str, Any], allowed: tuple[str, ...],
                    where: str, short: str) -> None:
    """Refuse a declared field that may not be set here (an undeclared one is
    left to _parse_values): a stage changes only the fields it declares, so a
    value a decision or an approver already judged cannot be changed later."""
    refused = [n for n in values if n not in allowed and process.field(n) is not None]
    if not refused:
        return
    what = ", ".join(f"'{n}'" for n in refused)
    plural = "s" if len(refused) > 1 else ""
    raise FieldNotSettable(
        f"field{plural} {what} cannot be set {where}; fields that may be set {short}:"
        f" {', '.join(allowed) or 'none'}",
        hint="a stage sets only the fields its definition declares (fields: required,"
        " optional, or the result's fields); drop the --set",
        fields=tuple(refused),
    )


def _apply_values(run: Run, stage: Stage, values: Mapping[str, Any]) -> None:
    parsed = _parse_values(run.process, values, run.ctx.org, run.ctx.now)
    record = dict(run.inst.record)
    for name, value in parsed.items():
        old = record.get(name)
        if old == value:
            continue
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
        run.emit("field_changed", stage=stage.id, data={"field": name, "from": old, "to": value})
    run.set(record=record)


def field_value(run: Run, fv: FieldValue) -> Any:
    """The value a ``set:`` item or a field default gives its field now (None:
    clear it), checked like a value typed with --set."""
    fd = run.process.field(fv.field)
    if fd is None:
        raise FlowctlError(
            f"process '{run.process.id}' sets field '{fv.field}', which it does not declare",
            hint=f"run `flowctl lint` on {run.process.source or 'the definition'}",
        )
    if fv.copy is not None:
        raw = run.inst.record.get(fv.copy)
    elif fv.word == INITIATOR:
        raw = run.inst.initiator
    elif fv.word == ACTOR:
        raw = run.ctx.actor
        if run.ctx.org.user(raw) is None:
            raise Refused(
                f"cannot set field '{fd.name}' to the acting user: {raw} is not a user of the"
                " org directory (a timer or a child process acts as flowctl)",
                hint="report the result as a person",
            )
    elif fv.word == NOW:
        raw = today(run.process, run.ctx.now) if fd.type is FieldType.DATE else run.ctx.at
    else:
        raw = fv.literal
    if raw is None or raw == "":
        return None
    value = coerce(fd, raw, run.ctx.org)
    if fd.earliest or fd.latest:
        _check_date_limits(run.process, fd, value, run.ctx.now)
    return value


def today(process: Process, now: datetime) -> str:
    """Today's date in the process calendar's time zone (UTC without one)."""
    tz = process.calendar.timezone if process.calendar else "UTC"
    try:
        return now.astimezone(zone(tz)).date().isoformat()
    except CalendarError as exc:
        raise FlowctlError(f"process '{process.id}': {exc}",
                           hint="run `flowctl lint` on the definition") from exc


def apply_sets(run: Run, stage: Stage, sets: tuple[FieldValue, ...], why: str) -> None:
    """Record operations: set each field, journalled as a field change with
    what set it (``set`` says where: on entering a stage, with a result)."""
    if not sets:
        return
    record = dict(run.inst.record)
    for fv in sets:
        value = field_value(run, fv)
        old = record.get(fv.field)
        if old == value:
            continue
        if value is None:
            record.pop(fv.field, None)
        else:
            record[fv.field] = value
        run.set(record=dict(record))
        run.emit("field_changed", stage=stage.id, data={
            "field": fv.field, "from": old, "to": value, "set": why, "value": fv.describe(),
        })


def apply_defaults(run: Run) -> None:
    """Field defaults, for the fields that have no value at start."""
    record = dict(run.inst.record)
    for fd in run.process.fields:
        if fd.default is None or record.get(fd.name) not in (None, ""):
            continue
        value = field_value(run, fd.default)
        if value is None:
            continue
        record[fd.name] = value
        run.set(record=dict(record))
        run.emit("field_changed", data={
            "field": fd.name, "from": None, "to": value, "set": "default",
            "value": fd.default.describe(),
        })


def _check_required(run: Run, stage: Stage, names: tuple[str, ...]) -> None:
    missing = [n for n in dict.fromkeys(names) if run.inst.record.get(n) in (None, "")]
    if not missing:
        return
    parts = []
    for name in missing:
        fd = run.process.field(name)
        parts.append(f"field '{name}' is required: {describe_field(fd) if fd else 'a value'}")
    sets = " ".join(f"--set {n}=VALUE" for n in missing)
    raise FieldsMissing("; ".join(parts), hint=f"add {sets}", fields=tuple(missing))


def _check_changed(run: Run, stage: Stage, result: str) -> None:
    """``must_change``: each field must differ from its value when the stage was entered."""
    for name in stage.must_change_for(result):
        before = run.inst.baseline.get(name)
        if run.inst.record.get(name) != before:
            continue
        fd = run.process.field(name)
        still = "still empty" if before is None else f"still {_shown(before)}"
        raise RuleBroken(
            f"result '{result}' at stage '{stage.id}' needs field '{name}' changed (must_change):"
            f" it is {still}, as when the stage was entered",
            hint=f"give a new value: --set {name}="
            f"{'USER' if fd is not None and fd.type is FieldType.USER else 'VALUE'}",
            field=name, rule="must_change", value=before,
        )


def _check_rules(run: Run, stage: Stage, result: Result) -> None:
    """``validate``: the stage's and the result's rules must hold on the record."""
    record = run.inst.record
    for check in (*stage.validate, *result.validate):
        values = {n: record.get(n) for n in sorted(field_names(_condition(check.condition)))}
        shown = ", ".join(f"{n}={_shown(v) if v is not None else 'empty'}"
                          for n, v in values.items())
        try:
            holds_ = evaluate(_condition(check.condition), record)
        except ConditionEvalError as exc:
            raise RuleBroken(
                f"result '{result.name}' at stage '{stage.id}' is refused: {check.message}"
                f" (rule `{check.condition}` cannot be decided: {exc}; {shown})",
                hint="set the fields it reads with --set FIELD=VALUE",
                field=next(iter(values), None), rule=check.condition, value=values,
            ) from exc
        if not holds_:
            raise RuleBroken(
                f"result '{result.name}' at stage '{stage.id}' is refused: {check.message}"
                f" (rule `{check.condition}` does not hold: {shown})",
                hint="change the values with --set FIELD=VALUE so that the rule holds",
                field=next(iter(values), None), rule=check.condition, value=values,
            )


def begin(run: Run, cmd: Begin | None = None) -> None:
    on_stage(run, cmd.stage if cmd else None, "begun", lambda: _begin(run))


def _begin(run: Run) -> None:
    inst = run.inst
    _require_open(inst, "begun")
    stage = run.stage(inst.stage or "")
    if inst.stage_state != NOT_STARTED:
        raise Refused(f"stage '{stage.id}' of {inst.id} is already {inst.stage_state}")
    as_admin = _authorize(run, stage, "begin", inst.assignees)
    run.set(stage_state=IN_PROGRESS)
    run.emit("began", stage=stage.id, data={"as_admin": True} if as_admin else {})


def reassign(run: Run, cmd: Reassign) -> None:
    on_stage(run, cmd.stage, "reassigned", lambda: _reassign(run, cmd))


def _reassign(run: Run, cmd: Reassign) -> None:
    inst = run.inst
    _require_open(inst, "reassigned")
    stage = run.stage(inst.stage or "")
    org = run.ctx.org
    if org.user(cmd.user) is None:
        raise InvalidValue(
            f"cannot reassign to {cmd.user}: no such user in the org directory",
            hint=f"known users: {names_list([u.id for u in org.users])}",
        )
    if inst.approvers:
        raise Refused(
            f"stage '{stage.id}' needs every approver's signature; it cannot be reassigned"
        )
    target = user_principal(cmd.user)
    if inst.assignees == (target,):
        raise Refused(f"{cmd.user} is already the assignee of '{stage.id}'")
    why = excluded(inst, stage, cmd.user)
    if why is not None:
        raise NotPermitted(f"cannot reassign '{stage.id}' to {cmd.user}: {why}",
                           hint="reassign it to someone else")
    as_admin = _authorize(run, stage, "reassign", inst.assignees)
    data: dict[str, Any] = {"from": list(inst.assignees), "to": target}
    if cmd.comment:
        data["comment"] = cmd.comment
    if as_admin:
        data["as_admin"] = True
    run.set(assignees=(target,), labels={target: f"reassigned by {run.ctx.actor}"})
    run.emit("reassigned", stage=stage.id, data=data)


def note(run: Run, cmd: Note) -> None:
    old = run.inst.note
    text = f"{old}\n{cmd.text}" if cmd.append and old else cmd.text
    run.set(note=text)
    run.emit("note", stage=run.inst.stage, data={
        "text": cmd.text, "append": cmd.append, "note": text,
    })


def link(run: Run, cmd: Link) -> None:
    kind, ref = cmd.kind.strip(), cmd.ref.strip()
    if not kind or not ref:
        raise InvalidValue("a link needs a kind and a reference, e.g. `invoice INV-2041`")
    if any(lk.kind == kind and lk.ref == ref for lk in run.inst.links):
        raise Refused(f"{run.inst.id} is already linked to {kind} {ref}")
    run.set(links=(*run.inst.links, LinkRef(kind, ref, run.ctx.actor, run.ctx.at)))
    run.emit("link", stage=run.inst.stage, data={"kind": kind, "ref": ref})


ATTACHMENT_NAME_MAX = 255


def attach(run: Run, cmd: Attach) -> None:
    """A file's name, size and SHA-256 into the instance; the same name again is
    its next version (the earlier ones stay); the same bytes again are refused."""
    name = cmd.name.strip()
    bad = [c for c in name if ord(c) < 32 or 127 <= ord(c) < 160 or c in "/\\"]
    if not name or bad or len(name) > ATTACHMENT_NAME_MAX or name in (".", ".."):
        raise InvalidValue(
            f"attachment name {name!r} is not allowed: a name is 1 to {ATTACHMENT_NAME_MAX}"
            " characters, without '/', '\\' or control characters",
            hint="give another with --name NAME",
        )
    same = [a for a in run.inst.attachments if a.name == name]
    if same and same[-1].sha256 == cmd.sha256:
        raise Refused(
            f"{run.inst.id} already has these bytes as '{name}' (version {same[-1].version},"
            f" sha256 {cmd.sha256[:12]}); nothing was written",
            hint="attach a changed file, or give it another name with --name NAME",
        )
    ref = AttachmentRef(name, len(same) + 1, cmd.size, cmd.sha256, run.ctx.actor, run.ctx.at)
    run.set(attachments=(*run.inst.attachments, ref))
    run.emit("attached", stage=run.inst.stage, data={
        "name": name, "version": ref.version, "size": cmd.size, "sha256": cmd.sha256,
    })


def _check_sharer(run: Run, doing: str) -> bool:
    """Only the initiator or an admin shares an instance; True: as an admin."""
    inst = run.inst
    if run.ctx.actor == inst.initiator:
        return False
    if not run.ctx.is_admin:
        raise NotPermitted(
            f"only {inst.initiator} (initiator) or an admin can {doing} {inst.id}",
            hint=ask_instead(run.ctx, f"{inst.initiator} (initiator)"),
            allowed=(user_principal(inst.initiator), f"role:{ADMIN_ROLE}"),
        )
    return True


def share(run: Run, cmd: Share) -> None:
    as_admin = _check_sharer(run, "share")
    inst = run.inst
    if run.ctx.org.user(cmd.user) is None:
        raise InvalidValue(f"cannot share {inst.id} with '{cmd.user}': no such user in the "
                           "org directory")
    if cmd.user in inst.watchers:
        raise Refused(f"{inst.id} is already shared with {cmd.user}")
    run.set(watchers=(*inst.watchers, cmd.user))
    data: dict[str, Any] = {"user": cmd.user}
    if as_admin:
        data["as_admin"] = True
    run.emit("shared", stage=inst.stage, data=data)
    run.notify([user_principal(cmd.user)], "shared",
               f"{inst.id}: {run.ctx.actor} shared it with you", inst.stage)


def unshare(run: Run, cmd: Unshare) -> None:
    as_admin = _check_sharer(run, "unshare")
    inst = run.inst
    if cmd.user not in inst.watchers:
        shared = ", ".join(inst.watchers) or "nobody"
        raise Refused(f"{inst.id} is not shared with {cmd.user}; it is shared with: {shared}")
    run.set(watchers=tuple(u for u in inst.watchers if u != cmd.user))
    data: dict[str, Any] = {"user": cmd.user}
    if as_admin:
        data["as_admin"] = True
    run.emit("unshared", stage=inst.stage, data=data)


def cancel(run: Run, cmd: Cancel) -> None:
    inst = run.inst
    if inst.finished:
        raise InstanceClosed(
            f"instance {inst.id} is {inst.status}; nothing can be cancelled", status=inst.status
        )
    as_admin = False
    if cmd.by_parent is None and run.ctx.actor != inst.initiator:
        if not run.ctx.is_admin:
            raise NotPermitted(
                f"only {inst.initiator} (initiator) or an admin can cancel {inst.id}",
                hint=ask_instead(run.ctx, f"{inst.initiator} (initiator)"),
                allowed=(user_principal(inst.initiator), f"role:{ADMIN_ROLE}"),
            )
        as_admin = True
    data: dict[str, Any] = {}
    if cmd.reason:
        data["reason"] = cmd.reason
    if as_admin:
        data["as_admin"] = True
    if cmd.by_parent:
        data["parent"] = cmd.by_parent
    # Policy: the children this instance waits for are cancelled with it; the
    # ones it does not wait for (wait: false) keep running on their own.
    running = [c for c in inst.children if c.status == "running" and c.instance_id]
    cancelled = [c.instance_id for c in running if c.wait]
    left = [c.instance_id for c in running if not c.wait]
    if cancelled:
        data["children_cancelled"] = cancelled
    if left:
        data["children_left_running"] = left
    children = tuple(
        replace(c, status=CANCELLED) if c.instance_id in cancelled else c for c in inst.children
    )
    if inst.fork is not None:
        data["branches_cancelled"] = [b.name for b in inst.branches if b.live]
    run.set(fork=None, forked_at=None, branches=())
    run.set(
        status=CANCELLED, stage=None, last_stage=inst.stage, outcome=CANCELLED,
        assignees=(), approvers=(), timers=(), due_at=None, wake_at=None, children=children,
        tasks=(), suspended=(), paused_from=None, paused_at=None,
    )
    run.emit("cancelled", stage=inst.stage, data=data)
    reason = f"; reason: {cmd.reason}" if cmd.reason else ""
    tell_outcome(run, CANCELLED, f"{inst.id}: cancelled at '{inst.stage}' by"
                 f" {run.ctx.actor}{reason}", inst.stage)


# ------------------------------------------------------- serialisation


def dump_state(inst: Instance) -> dict[str, Any]:
    """The JSON state of an instance (what the store keeps beside its columns)."""
    return {
        "stage_state": inst.stage_state,
        "entered_at": inst.entered_at,
        "labels": dict(inst.labels),
        "approvers": list(inst.approvers),
        "votes": [asdict(v) for v in inst.votes],
        "record": dict(inst.record),
        "note": inst.note,
        "links": [asdict(lk) for lk in inst.links],
        "timers": [asdict(t) for t in inst.timers],
        "children": [{**asdict(c), "inputs": dict(c.inputs)} for c in inst.children],
        "outcome": inst.outcome,
        "last_stage": inst.last_stage,
        "wake_at": inst.wake_at,
        "tasks": [asdict(t) for t in inst.tasks],
        "paused_from": inst.paused_from,
        "paused_at": inst.paused_at,
        "suspended": [asdict(t) for t in inst.suspended],
        "approved": [list(a) for a in inst.approved],
        "attachments": [asdict(a) for a in inst.attachments],
        **({"watchers": list(inst.watchers)} if inst.watchers else {}),
        **({"baseline": dict(inst.baseline)} if inst.baseline else {}),
        **({"fork": inst.fork, "forked_at": inst.forked_at,
            "branches": [_dump_branch(b) for b in inst.branches]} if inst.fork else {}),
    }


def _dump_branch(b: BranchRun) -> dict[str, Any]:
    out = asdict(b)
    out.update(labels=dict(b.labels), baseline=dict(b.baseline), assignees=list(b.assignees),
               approvers=list(b.approvers),
               votes=[asdict(v) for v in b.votes], timers=[asdict(t) for t in b.timers],
               tasks=[asdict(t) for t in b.tasks])
    return out


def _load_branch(d: Mapping[str, Any], version: int) -> BranchRun:
    return BranchRun(
        name=d["name"], status=d.get("status", ACTIVE), stage=d.get("stage"),
        stage_state=d.get("stage_state", NOT_STARTED), entered_at=d.get("entered_at"),
        due_at=d.get("due_at"), assignees=tuple(d.get("assignees") or ()),
        labels=dict(d.get("labels") or {}), approvers=tuple(d.get("approvers") or ()),
        votes=tuple(Vote(**v) for v in d.get("votes") or ()),
        timers=_timers(d.get("timers"), version), wake_at=d.get("wake_at"),
        tasks=tuple(Task(**t) for t in d.get("tasks") or ()), end=d.get("end"),
        baseline=dict(d.get("baseline") or {}),
    )


def _timers(items: Any, version: int) -> tuple[Timer, ...]:
    """Timers from state; one stored before keys existed gets its derived key."""
    out = []
    for t in items or ():
        timer = Timer(**t)
        if not timer.key:
            timer = replace(timer, key=timer_key(timer.kind, timer.stage, timer.index, version))
        out.append(timer)
    return tuple(out)


def load_instance(columns: Mapping[str, Any], state: Mapping[str, Any]) -> Instance:
    """Rebuild an instance from the store's columns and its JSON state."""
    return Instance(
        id=columns["id"],
        process_id=columns["process_id"],
        definition_digest=columns["definition_digest"],
        initiator=columns["initiator"],
        started_at=columns["started_at"],
        updated_at=columns["updated_at"],
        version=columns["version"],
        status=columns["status"],
        stage=columns["stage"],
        due_at=columns.get("due_at"),
        assignees=tuple(columns.get("assignees") or ()),
        parent_id=columns.get("parent_id"),
        stage_state=state.get("stage_state", NOT_STARTED),
        entered_at=state.get("entered_at"),
        labels=dict(state.get("labels") or {}),
        approvers=tuple(state.get("approvers") or ()),
        votes=tuple(Vote(**v) for v in state.get("votes") or ()),
        record=dict(state.get("record") or {}),
        note=state.get("note") or "",
        links=tuple(LinkRef(**lk) for lk in state.get("links") or ()),
        timers=_timers(state.get("timers"), columns["version"]),
        children=tuple(Child(**c) for c in state.get("children") or ()),
        outcome=state.get("outcome"),
        last_stage=state.get("last_stage"),
        wake_at=state.get("wake_at"),
        tasks=tuple(Task(**t) for t in state.get("tasks") or ()),
        paused_from=state.get("paused_from"),
        paused_at=state.get("paused_at"),
        suspended=_timers(state.get("suspended"), columns["version"]),
        approved=tuple((a[0], a[1]) for a in state.get("approved") or ()),
        attachments=tuple(AttachmentRef(**a) for a in state.get("attachments") or ()),
        watchers=tuple(state.get("watchers") or ()),
        baseline=dict(state.get("baseline") or {}),
        fork=state.get("fork"),
        forked_at=state.get("forked_at"),
        branches=tuple(_load_branch(b, columns["version"]) for b in state.get("branches") or ()),
    )

"""The definition model: frozen records (msgspec Structs), no I/O.

A model object is built only from data that passed the JSON Schema, so its
shape is guaranteed; semantic problems (unknown stages, bad durations...) are
the linter's business. Every object keeps ``path``, the JSON path of the YAML
node it came from, so diagnostics can be located through the position index.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Any

from msgspec import Struct

Path = tuple[str | int, ...]

WORKDAYS = ("mon", "tue", "wed", "thu", "fri")  # a calendar's defaults
BUSINESS_HOURS = "09:00-17:00"


class StageKind(StrEnum):
    TASK = "task"
    APPROVAL = "approval"
    DECISION = "decision"
    WAIT = "wait"
    SUBPROCESS = "subprocess"
    PARALLEL = "parallel"  # starts several branches at once
    JOIN = "join"  # where the branches of a parallel stage meet again
    END = "end"


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    USER = "user"


class ApprovalPolicy(StrEnum):
    SINGLE = "single"  # exactly one approver decides
    ANY = "any"  # any one of the approvers decides
    ALL = "all"  # countersign: every approver must approve, one reject rejects


class EscalationAction(StrEnum):
    REMIND = "remind"  # notify the current assignee again
    NOTIFY = "notify"  # notify ``to``
    REASSIGN = "reassign"  # make ``to`` the assignee
    RESULT = "result"  # report ``result`` automatically


# The words a field default or a ``set:`` value may use instead of a literal.
INITIATOR = "initiator"  # user fields: the person who started the instance
ACTOR = "actor"  # user fields (set: only): the person whose command it is
NOW = "now"  # date fields: today; datetime fields: the moment


class FieldValue(Struct, frozen=True):
    """What ``set:`` (or a field ``default``) puts into a field: a ``literal``
    (None clears the field), a word (``initiator``, ``actor``, ``now``) read
    against the field's type, or the value of another field ``copy``."""

    field: str  # the field it sets
    path: Path  # the path of the value in the YAML
    literal: Any = None
    word: str | None = None
    copy: str | None = None

    def describe(self) -> str:
        if self.copy is not None:
            return f"record.{self.copy}"
        if self.word is not None:
            return self.word
        return repr(self.literal)


class FieldDef(Struct, frozen=True):
    name: str
    type: FieldType
    path: Path
    label: str | None = None
    values: tuple[str, ...] = ()  # enum only
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # string/text: a regular expression the whole value matches
    format: str | None = None  # string: email | phone | url | date
    earliest: str | None = None  # date/datetime ``minimum``: "today", "today-30d", "2027-01-01"
    latest: str | None = None  # date/datetime ``maximum``: "today+1y", a date
    role: str | None = None  # user fields: only holders of this role
    department: str | None = None  # user fields: only members of it (or its sub-departments)
    default: FieldValue | None = None  # applied at start when no value is given


class Check(Struct, frozen=True):
    """A cross-field rule (``validate:``): ``condition`` must hold, else the
    command is refused with ``message``."""

    condition: str  # condition source text
    message: str
    path: Path  # path of the rule mapping; the condition is at path + ("condition",)


class Assignee(Struct, frozen=True):
    """Who is responsible. Exactly one of the forms is set.

    - ``initiator``: the person who started the instance
    - ``user``: a named user of the org directory
    - ``role``: any member of the role
    - ``department``: the head of the named department
    - ``field``: the user held in a record field of type ``user``
    - ``relation`` + ``of``: ``department-head`` (head of the department of X)
      or ``manager`` (the head of X's department, or of its parent department
      when X is that head), where X is ``initiator``, ``assignee`` (the
      current assignee, for escalations) or a record field of type ``user``.
    - ``candidates``: an ordered list of assignees; the first one available
      (not away, per the org directory's ``away_until``) takes it
    - ``by`` + ``cases`` (+ ``otherwise``): the assignee the value of record
      field ``by`` chooses

    ``pick`` (with ``role`` or ``department``): one member of the role or the
    department (and its sub-departments), chosen ``round-robin`` or
    ``least-loaded`` among those available.
    """

    path: Path
    initiator: bool = False
    user: str | None = None
    role: str | None = None
    department: str | None = None
    field: str | None = None
    relation: str | None = None
    of: str | None = None
    pick: str | None = None  # round-robin | least-loaded (role, department)
    candidates: tuple[Assignee, ...] = ()
    by: str | None = None  # a record field
    cases: tuple[tuple[str, Assignee], ...] = ()  # (value of ``by``, assignee)
    otherwise: Assignee | None = None  # no case matches

    @property
    def pool(self) -> str:
        """What ``pick`` picks among: ``role:sales-rep``, ``department:sales``."""
        return f"role:{self.role}" if self.role is not None else f"department:{self.department}"

    def describe(self) -> str:
        if self.initiator:
            return "initiator"
        if self.user is not None:
            return f"user {self.user}"
        if self.pick is not None:
            return f"{self.pick} among {self.pool.replace(':', ' ')}"
        if self.role is not None:
            return f"role {self.role}"
        if self.department is not None:
            return f"head of {self.department}"
        if self.field is not None:
            return f"record.{self.field}"
        if self.candidates:
            return "first available of " + ", ".join(c.describe() for c in self.candidates)
        if self.by is not None:
            cases = ", ".join(f"{value} → {a.describe()}" for value, a in self.cases)
            rest = f"; else {self.otherwise.describe()}" if self.otherwise is not None else ""
            return f"{self.by}: {cases}{rest}"
        return f"{self.relation} of {self.of}"

    def walk(self) -> list[Assignee]:
        """This assignee and every one nested in it (candidates, cases), in order."""
        out: list[Assignee] = [self]
        for c in self.candidates:
            out += c.walk()
        for _, c in self.cases:
            out += c.walk()
        if self.otherwise is not None:
            out += self.otherwise.walk()
        return out


class Result(Struct, frozen=True):
    """A result a person may report at a stage, and the stage it leads to."""

    name: str
    to: str
    path: Path  # path of the result's key in ``results``
    required: tuple[str, ...] = ()  # fields required when reporting it
    label: str | None = None
    optional: tuple[str, ...] = ()  # fields that may be set when reporting it
    must_change: tuple[str, ...] = ()  # fields this result needs changed since the stage began
    validate: tuple[Check, ...] = ()  # rules checked when reporting it
    sets: tuple[FieldValue, ...] = ()  # set: when it is reported


class Branch(Struct, frozen=True):
    when: str  # condition source text
    to: str
    path: Path  # path of the branch mapping; the condition is at path + ("when",)


class ParallelBranch(Struct, frozen=True):
    """One branch of a parallel stage: a path of stages that starts at ``to``
    and ends at the stage's join (or an end stage)."""

    name: str
    to: str
    path: Path  # path of the branch mapping
    when: str | None = None  # condition source text: the branch starts only when it holds
    label: str | None = None


class JoinPolicy(StrEnum):
    """What a branch that reaches an end stage does to the other branches."""

    CANCEL_OTHERS = "cancel-others"  # the instance ends there at once
    FINISH_OTHERS = "finish-others"  # the others finish first, then the instance ends there


class Escalation(Struct, frozen=True):
    after: str  # duration text, relative to entering the stage
    action: EscalationAction
    path: Path
    to: Assignee | None = None  # notify / reassign
    result: str | None = None  # result action


class Sla(Struct, frozen=True):
    within: str  # duration text: the stage is due this long after it is entered
    path: Path
    business_hours: bool = False
    escalations: tuple[Escalation, ...] = ()
    inherited: tuple[str, ...] = ()  # keys taken from the process's ``defaults.sla``


class TaskSpec(Struct, frozen=True):
    id: str
    name: str
    path: Path
    assignee: Assignee | None = None  # None: the stage's assignee
    delay: str | None = None  # duration text
    blocking: bool = False  # blocks every result
    blocks: tuple[str, ...] = ()  # blocks only these results (``blocking`` is then False)


class NotifySpec(Struct, frozen=True):
    """What one event of a stage (or of every stage) tells whom (``notify:``)."""

    event: str  # entered | reminder | overdue | escalated | task | outcome
    path: Path
    off: bool = False  # ``event: false``: nobody is told
    to: tuple[Assignee | str, ...] = ()  # "assignees" | "initiator" | "watchers" | an assignee
    subject: str | None = None  # template
    message: str | None = None  # template


NOTIFY_EVENTS = ("entered", "reminder", "overdue", "escalated", "task", "outcome")


def notify_for(specs: tuple[NotifySpec, ...], event: str) -> NotifySpec | None:
    return next((n for n in specs if n.event == event), None)


class EventSpec(Struct, frozen=True):
    type: str
    path: Path
    comment: str | None = None


class Stage(Struct, frozen=True):
    id: str
    kind: StageKind
    path: Path
    name: str | None = None
    description: str | None = None
    phase: str | None = None
    start: bool = False
    assignee: Assignee | None = None  # task (and subprocess/wait owner)
    approvers: tuple[Assignee, ...] = ()  # approval
    policy: ApprovalPolicy = ApprovalPolicy.ANY  # approval
    required_fields: tuple[str, ...] = ()
    optional_fields: tuple[str, ...] = ()
    results: tuple[Result, ...] = ()  # task, approval, subprocess with wait
    branches: tuple[Branch, ...] = ()  # decision
    default: str | None = None  # decision
    wait_for: str | None = None  # wait: duration text
    wait_until: str | None = None  # wait: name of a date/datetime field
    next: str | None = None  # wait, subprocess without wait
    process: str | None = None  # subprocess: child process id
    inputs: tuple[tuple[str, str], ...] = ()  # subprocess: (child field, parent field)
    wait_child: bool = True  # subprocess: wait for the child to end
    sla: Sla | None = None
    tasks: tuple[TaskSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    notify: tuple[NotifySpec, ...] = ()
    outcome: str | None = None  # end: completed / approved / rejected / cancelled
    exclude: tuple[str, ...] = ()  # task, approval: "initiator", "previous-approvers"
    allow_initiator: bool = False  # approval: the initiator may decide it
    must_change: tuple[str, ...] = ()  # fields every result needs changed since entering
    validate: tuple[Check, ...] = ()  # rules checked for every result reported here
    sets: tuple[FieldValue, ...] = ()  # set: on entering the stage
    forks: tuple[ParallelBranch, ...] = ()  # parallel: the branches it starts
    fork: str | None = None  # join: the parallel stage whose branches meet here
    complete: str = "all"  # join: "all", "any" or a number n (n of the branches started)
    on_reject: JoinPolicy = JoinPolicy.CANCEL_OTHERS  # join: a branch that reaches an end

    @property
    def label(self) -> str:
        return self.name or self.id

    def result(self, name: str) -> Result | None:
        for r in self.results:
            if r.name == name:
                return r
        return None

    def must_change_for(self, result: str | None = None) -> tuple[str, ...]:
        """The fields that must have changed since the stage was entered to
        report ``result`` (any result when None): the stage's and the result's."""
        names = list(self.must_change)
        for r in self.results:
            if result is None or r.name == result:
                names += r.must_change
        return tuple(dict.fromkeys(names))
    def needed(self, started: int) -> int:
        """A join: how many of ``started`` branches must reach it (``any``: one;
        a number larger than the branches started: all of them)."""
        if self.complete == "all":
            return started
        wanted = 1 if self.complete == "any" else int(self.complete)
        return min(wanted, started)

    @property
    def excludes_initiator(self) -> bool:
        """Whether the initiator may not act here: ``exclude: [initiator]``, or an
        approval without ``allow_initiator: true``."""
        if "initiator" in self.exclude:
            return True
        return self.kind is StageKind.APPROVAL and not self.allow_initiator

    def settable(self, result: str | None = None) -> tuple[str, ...]:
        """The fields that may be set here: the stage's ``fields`` (required and
        optional), and the ``fields`` of ``result`` (of every result when None;
        required and optional)."""
        names = [*self.required_fields, *self.optional_fields]
        for r in self.results:
            if result is None or r.name == result:
                names += [*r.required, *r.optional]
        return tuple(dict.fromkeys(names))

    def targets(self) -> list[tuple[str, Path]]:
        """Every stage id this stage can lead to, with the path that names it."""
        out: list[tuple[str, Path]] = [(r.to, r.path) for r in self.results]
        out += [(b.to, (*b.path, "to")) for b in self.branches]
        out += [(b.to, (*b.path, "to")) for b in self.forks]
        if self.default is not None:
            out.append((self.default, (*self.path, "default")))
        if self.next is not None:
            out.append((self.next, (*self.path, "next")))
        return out


class Phase(Struct, frozen=True):
    id: str
    name: str
    path: Path


class Calendar(Struct, frozen=True):
    """Business hours for SLAs with ``business_hours: true``."""

    path: Path
    timezone: str = "UTC"
    workdays: tuple[str, ...] = WORKDAYS
    hours: str = BUSINESS_HOURS
    holidays: tuple[str, ...] = ()  # ISO dates


class Starters(Struct, frozen=True):
    """Who may start the process; all empty means anyone in the org directory."""

    departments: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    exact: bool = False  # departments: direct members only, not their sub-departments

    @property
    def anyone(self) -> bool:
        return not (self.departments or self.roles or self.users)


class Process(Struct, frozen=True, dict=True):  # dict: for its cached properties
    id: str
    name: str
    path: Path
    description: str | None = None
    subject: str | None = None
    starters: Starters = Starters()
    fields: tuple[FieldDef, ...] = ()
    phases: tuple[Phase, ...] = ()
    stages: tuple[Stage, ...] = ()
    calendar: Calendar | None = None
    default_sla: Sla | None = None  # ``defaults.sla``: task and approval stages inherit it
    source: str = ""  # the file it was loaded from, for messages
    notify: tuple[NotifySpec, ...] = ()  # for every stage; a stage's own wins

    def stage(self, stage_id: str) -> Stage | None:
        for s in self.stages:
            if s.id == stage_id:
                return s
        return None

    def join_of(self, fork: str) -> Stage | None:
        """The join stage of the parallel stage ``fork`` (the first, when lint
        would refuse several)."""
        for s in self.stages:
            if s.kind is StageKind.JOIN and s.fork == fork:
                return s
        return None

    def field(self, name: str) -> FieldDef | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def assignee_specs(self) -> list[Assignee]:
        """Every assignee the definition writes (stages, approvers, tasks,
        escalations), nested ones (candidates, cases) included."""
        out: list[Assignee] = []
        for s in self.stages:
            tops = [s.assignee, *s.approvers, *(t.assignee for t in s.tasks)]
            tops += [e.to for e in (s.sla.escalations if s.sla else ())]
            for a in tops:
                if a is not None:
                    out += a.walk()
        return out

    @cached_property  # asked at every step of an instance: its definition never changes
    def picks(self) -> bool:
        """Whether an assignee of this process uses ``pick`` (it needs the workload)."""
        return any(a.pick is not None for a in self.assignee_specs())

    @cached_property  # asked at every step of an instance: its definition never changes
    def starts_children(self) -> bool:
        """Whether a stage of this process starts a child process (a subprocess stage)."""
        return any(s.kind is StageKind.SUBPROCESS for s in self.stages)

    def least_loaded_pools(self) -> list[Assignee]:
        """The assignees that pick the least-loaded member of a role or department."""
        return [a for a in self.assignee_specs() if a.pick == "least-loaded"]

    @property
    def start_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.start]


class User(Struct, frozen=True):
    id: str
    name: str
    path: Path
    department: str | None = None
    roles: tuple[str, ...] = ()
    email: str | None = None
    channels: tuple[str, ...] = ()  # names of the org's channels, or Apprise URLs
    away_until: str | None = None  # ISO date: away up to and including that day
    db_login: str | None = None  # the login on a PostgreSQL store, when not the id

    def away(self, today: str) -> bool:
        """Whether the user is away on ``today`` (an ISO date)."""
        return self.away_until is not None and today <= self.away_until


class Department(Struct, frozen=True):
    id: str
    name: str
    path: Path
    head: str | None = None
    parent: str | None = None


class Role(Struct, frozen=True):
    id: str
    name: str
    path: Path


class OrgDirectory(Struct, frozen=True, dict=True):
    """The org directory. Lookups by id build an index on first use, kept in the
    instance ``__dict__`` (not a field: not compared, hashed, shown or pickled)."""

    users: tuple[User, ...] = ()
    departments: tuple[Department, ...] = ()
    roles: tuple[Role, ...] = ()
    source: str = ""
    channels: tuple[tuple[str, str], ...] = ()  # (name, Apprise URL): shared channels

    def channel(self, name: str) -> str | None:
        """The URL of the named shared channel."""
        return next((url for n, url in self.channels if n == name), None)

    def user(self, user_id: str) -> User | None:
        found: User | None = self._lookup("users", self.users, user_id)
        return found

    def department(self, dept_id: str) -> Department | None:
        found: Department | None = self._lookup("departments", self.departments, dept_id)
        return found

    def role(self, role_id: str) -> Role | None:
        found: Role | None = self._lookup("roles", self.roles, role_id)
        return found

    def members(self, role_id: str) -> list[User]:
        return [u for u in self.users if role_id in u.roles]

    def within(self, dept_id: str | None, ancestor: str) -> bool:
        """Whether department ``dept_id`` is ``ancestor`` or one of its
        sub-departments (at any depth; a cycle in the tree ends the walk)."""
        seen: set[str] = set()
        while dept_id is not None and dept_id not in seen:
            if dept_id == ancestor:
                return True
            seen.add(dept_id)
            d = self.department(dept_id)
            dept_id = d.parent if d is not None else None
        return False

    def headed(self, dept_id: str | None) -> Department | None:
        """The department that answers for ``dept_id``: itself when it has a
        head, else the nearest department above it that has one."""
        seen: set[str] = set()
        while dept_id is not None and dept_id not in seen:
            seen.add(dept_id)
            d = self.department(dept_id)
            if d is None:
                return None
            if d.head:
                return d
            dept_id = d.parent
        return None

    def department_head(self, user_id: str) -> str | None:
        """Head of the department the user belongs to (of the nearest department
        above it that has a head, when it has none)."""
        u = self.user(user_id)
        d = self.headed(u.department) if u and u.department else None
        return d.head if d else None

    def manager(self, user_id: str) -> str | None:
        """The user's manager: their department's head, or when they are that
        head, the head of the parent department."""
        u = self.user(user_id)
        d = self.department(u.department) if u and u.department else None
        while d is not None:
            if d.head and d.head != user_id:
                return d.head
            d = self.department(d.parent) if d.parent else None
        return None

    def _lookup(self, kind: str, items: tuple[Any, ...], key: str) -> Any:
        cache = self.__dict__
        idx = cache.get(kind)
        if idx is None:
            idx = cache[kind] = {i.id: i for i in items}
        return idx.get(key)

"""Plain data that passed the JSON Schema -> the definition model.

The schema guarantees the shape, so this module only reads; it does not
validate. Semantic checks belong to the linter.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace

from flowctl.model import (
    ACTOR,
    BUSINESS_HOURS,
    INITIATOR,
    NOW,
    WORKDAYS,
    ApprovalPolicy,
    Assignee,
    Branch,
    Calendar,
    Check,
    Department,
    Escalation,
    EscalationAction,
    EventSpec,
    FieldDef,
    FieldType,
    FieldValue,
    JoinPolicy,
    NotifySpec,
    OrgDirectory,
    ParallelBranch,
    Path,
    Phase,
    Process,
    Result,
    Role,
    Sla,
    Stage,
    StageKind,
    Starters,
    TaskSpec,
    User,
)


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else ()


def build_assignee(value: Any, path: Path) -> Assignee:
    if value == "initiator":
        return Assignee(path=path, initiator=True)
    if isinstance(value, list):
        return Assignee(path=path, candidates=tuple(
            build_assignee(c, (*path, i)) for i, c in enumerate(value)
        ))
    v: dict[str, Any] = value
    otherwise = v.get("default")
    return Assignee(
        path=path,
        user=v.get("user"),
        role=v.get("role"),
        department=v.get("department"),
        field=v.get("field"),
        relation=v.get("relation"),
        of=v.get("of"),
        pick=v.get("pick"),
        by=v.get("by"),
        cases=tuple(
            (str(key), build_assignee(c, (*path, "cases", key)))
            for key, c in (v.get("cases") or {}).items()
        ),
        otherwise=build_assignee(otherwise, (*path, "default")) if otherwise is not None else None,
    )


def _checks(value: Any, path: Path) -> tuple[Check, ...]:
    return tuple(
        Check(condition=c["condition"], message=c["message"], path=(*path, i))
        for i, c in enumerate(value or [])
    )


# The words each field type reads instead of a literal (see model.FieldValue).
_WORDS = {
    FieldType.USER: (INITIATOR, ACTOR),
    FieldType.DATE: (NOW,),
    FieldType.DATETIME: (NOW,),
}


def build_value(name: str, raw: Any, path: Path, types: dict[str, FieldType]) -> FieldValue:
    """A ``set:`` value or a field ``default`` for field ``name``: ``{field: x}``
    copies another field; a word of the field's type (``initiator``, ``actor``,
    ``now``) is read when the value is set; anything else is a literal."""
    if isinstance(raw, dict):
        return FieldValue(field=name, path=path, copy=raw.get("field"))
    ftype = types.get(name)
    if isinstance(raw, str) and ftype is not None and raw in _WORDS.get(ftype, ()):
        return FieldValue(field=name, path=path, word=raw)
    return FieldValue(field=name, path=path, literal=raw)


def _sets(value: Any, path: Path, types: dict[str, FieldType]) -> tuple[FieldValue, ...]:
    return tuple(
        build_value(name, raw, (*path, name), types) for name, raw in (value or {}).items()
    )


def _results(value: Any, path: Path, types: dict[str, FieldType]) -> tuple[Result, ...]:
    out: list[Result] = []
    for name, spec in (value or {}).items():
        rpath = (*path, name)
        if isinstance(spec, str):
            out.append(Result(name=name, to=spec, path=rpath))
        else:
            out.append(
                Result(
                    name=name,
                    to=spec["to"],
                    path=rpath,
                    required=_strs((spec.get("fields") or {}).get("required")),
                    label=spec.get("label"),
                    optional=_strs((spec.get("fields") or {}).get("optional")),
                    must_change=_strs(spec.get("must_change")),
                    validate=_checks(spec.get("validate"), (*rpath, "validate")),
                    sets=_sets(spec.get("set"), (*rpath, "set"), types),
                )
            )
    return tuple(out)


def _sla(value: Any, path: Path) -> Sla | None:
    if value is None:
        return None
    escalations = []
    for i, e in enumerate(value.get("escalations") or []):
        epath = (*path, "escalations", i)
        to = e.get("to")
        escalations.append(
            Escalation(
                after=e["after"],
                action=EscalationAction(e["action"]),
                path=epath,
                to=build_assignee(to, (*epath, "to")) if to is not None else None,
                result=e.get("result"),
            )
        )
    return Sla(
        within=value["within"],
        path=path,
        business_hours=bool(value.get("business_hours", False)),
        escalations=tuple(escalations),
    )


SLA_KEYS = ("within", "business_hours", "escalations")


def _stage_sla(value: Any, path: Path, kind: StageKind, default: Sla | None) -> Sla | None:
    """A stage's SLA: ``false`` is none; absent, a task or approval stage takes
    the process's ``defaults.sla``; given, its keys replace the default's and
    the keys it leaves out (``business_hours``, ``escalations``) are inherited."""
    if value is False:
        return None
    if value is None:
        if default is None or kind not in (StageKind.TASK, StageKind.APPROVAL):
            return None
        return replace(default, inherited=SLA_KEYS)
    own = _sla(value, path)
    if own is None or default is None:
        return own
    inherited = tuple(k for k in SLA_KEYS if k not in value)
    return replace(
        own,
        business_hours=default.business_hours if "business_hours" in inherited
        else own.business_hours,
        escalations=default.escalations if "escalations" in inherited else own.escalations,
        inherited=inherited,
    )


def _notify(data: Any, path: Path) -> tuple[NotifySpec, ...]:
    out = []
    for event, spec in (data or {}).items():
        epath = (*path, event)
        if spec is False:
            out.append(NotifySpec(event=event, path=epath, off=True))
            continue
        to: list[Assignee | str] = [
            t if isinstance(t, str) else build_assignee(t, (*epath, "to", i))
            for i, t in enumerate(spec.get("to") or [])
        ]
        out.append(NotifySpec(event=event, path=epath, to=tuple(to), subject=spec.get("subject"),
                              message=spec.get("message")))
    return tuple(out)


def _stage(s: dict[str, Any], path: Path, types: dict[str, FieldType],
           default_sla: Sla | None = None) -> Stage:
    fields = s.get("fields") or {}
    on_enter = s.get("on_enter") or {}
    tasks = []
    for i, t in enumerate(on_enter.get("tasks") or []):
        tpath = (*path, "on_enter", "tasks", i)
        a = t.get("assignee")
        tasks.append(
            TaskSpec(
                id=t["id"],
                name=t["name"],
                path=tpath,
                assignee=build_assignee(a, (*tpath, "assignee")) if a is not None else None,
                delay=t.get("delay"),
                blocking=bool(t.get("blocking", False)),
                blocks=_strs(t.get("blocks")),
            )
        )
    events = tuple(
        EventSpec(type=e["type"], comment=e.get("comment"), path=(*path, "on_enter", "events", i))
        for i, e in enumerate(on_enter.get("events") or [])
    )
    assignee = s.get("assignee")
    return Stage(
        id=s["id"],
        kind=StageKind(s["kind"]),
        path=path,
        name=s.get("name"),
        description=s.get("description"),
        phase=s.get("phase"),
        start=bool(s.get("start", False)),
        assignee=build_assignee(assignee, (*path, "assignee")) if assignee is not None else None,
        approvers=tuple(
            build_assignee(a, (*path, "approvers", i))
            for i, a in enumerate(s.get("approvers") or [])
        ),
        policy=ApprovalPolicy(s.get("policy", "any")),
        required_fields=_strs(fields.get("required")),
        optional_fields=_strs(fields.get("optional")),
        results=_results(s.get("results"), (*path, "results"), types),
        branches=tuple(
            Branch(when=b["when"], to=b["to"], path=(*path, "branches", i))
            for i, b in enumerate(s.get("branches") or [])
        ) if s["kind"] != "parallel" else (),
        default=s.get("default"),
        wait_for=s.get("for"),
        wait_until=s.get("until"),
        next=s.get("next"),
        process=s.get("process"),
        inputs=tuple((s.get("inputs") or {}).items()),
        wait_child=bool(s.get("wait", True)),
        sla=_stage_sla(s.get("sla"), (*path, "sla"), StageKind(s["kind"]), default_sla),
        tasks=tuple(tasks),
        events=events,
        notify=_notify(s.get("notify"), (*path, "notify")),
        outcome=s.get("outcome"),
        exclude=_strs(s.get("exclude")),
        allow_initiator=bool(s.get("allow_initiator", False)),
        must_change=_strs(s.get("must_change")),
        validate=_checks(s.get("validate"), (*path, "validate")),
        sets=_sets(s.get("set"), (*path, "set"), types),
        **_parallel(s, path),
    )


def _field(name: str, f: dict[str, Any], types: dict[str, FieldType]) -> FieldDef:
    """A field; on a date or datetime field ``minimum``/``maximum`` are date
    limits (``today``, ``today+1y``, a date), kept as text for the engine."""
    dated = f["type"] in (FieldType.DATE, FieldType.DATETIME)
    low, high = f.get("minimum"), f.get("maximum")
    return FieldDef(
        name=name,
        type=FieldType(f["type"]),
        path=("fields", name),
        label=f.get("label"),
        values=_strs(f.get("values")),
        minimum=None if dated else low,
        maximum=None if dated else high,
        pattern=f.get("pattern"),
        format=f.get("format"),
        earliest=low if dated else None,
        latest=high if dated else None,
        role=f.get("role"),
        department=f.get("department"),
        default=build_value(name, f["default"], ("fields", name, "default"), types)
        if "default" in f else None,
    )


def _parallel(s: dict[str, Any], path: Path) -> dict[str, Any]:
    """The keys of a parallel stage (its branches) or of a join."""
    if s["kind"] == "parallel":
        return {"forks": tuple(
            ParallelBranch(name=b["name"], to=b["to"], path=(*path, "branches", i),
                           when=b.get("when"), label=b.get("label"))
            for i, b in enumerate(s.get("branches") or [])
        )}
    if s["kind"] == "join":
        return {"fork": s.get("fork"), "complete": str(s.get("complete", "all")),
                "on_reject": JoinPolicy(s.get("on_reject", "cancel-others"))}
    return {}


def build_process(data: dict[str, Any], source: str = "") -> Process:
    starters = data.get("starters") or {}
    cal = data.get("calendar")
    calendar = None
    if cal is not None:
        calendar = Calendar(
            path=("calendar",),
            timezone=cal.get("timezone", "UTC"),
            workdays=_strs(cal.get("workdays")) or WORKDAYS,
            hours=cal.get("hours", BUSINESS_HOURS),
            holidays=_strs(cal.get("holidays")),
        )
    fields = data.get("fields") or {}
    types = {name: FieldType(f["type"]) for name, f in fields.items()}
    default_sla = _sla((data.get("defaults") or {}).get("sla"), ("defaults", "sla"))
    return Process(
        id=data["id"],
        name=data["name"],
        path=(),
        description=data.get("description"),
        subject=data.get("subject"),
        starters=Starters(
            departments=_strs(starters.get("departments")),
            roles=_strs(starters.get("roles")),
            users=_strs(starters.get("users")),
            exact=bool(starters.get("exact", False)),
        ),
        fields=tuple(_field(name, f, types) for name, f in fields.items()),
        phases=tuple(
            Phase(id=p["id"], name=p.get("name", p["id"]), path=("phases", i))
            for i, p in enumerate(data.get("phases") or [])
        ),
        stages=tuple(
            _stage(s, ("stages", i), types, default_sla)
            for i, s in enumerate(data.get("stages") or [])
        ),
        calendar=calendar,
        default_sla=default_sla,
        notify=_notify(data.get("notify"), ("notify",)),
        source=source,
    )


def build_org(data: dict[str, Any], source: str = "") -> OrgDirectory:
    return OrgDirectory(
        users=tuple(
            User(
                id=u["id"],
                name=u.get("name", u["id"]),
                path=("users", i),
                department=u.get("department"),
                roles=_strs(u.get("roles")),
                email=u.get("email"),
                away_until=u.get("away_until"),
                channels=_strs(u.get("channels")),
                db_login=u.get("db_login"),
            )
            for i, u in enumerate(data.get("users") or [])
        ),
        departments=tuple(
            Department(
                id=d["id"],
                name=d.get("name", d["id"]),
                path=("departments", i),
                head=d.get("head"),
                parent=d.get("parent"),
            )
            for i, d in enumerate(data.get("departments") or [])
        ),
        roles=tuple(
            Role(id=r["id"], name=r.get("name", r["id"]), path=("roles", i))
            for i, r in enumerate(data.get("roles") or [])
        ),
        source=source,
        channels=tuple((str(k), str(v)) for k, v in (data.get("channels") or {}).items()),
    )

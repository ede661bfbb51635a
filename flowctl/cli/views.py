"""Text and JSON for the runtime commands: exact, stable lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flowctl.api.instances import InstanceCard, InstanceView, StepResult
from flowctl.api.records import JournalEntry, NotificationRow
from flowctl.api.timers import Overdue, TaskView, TickReport
from flowctl.cli.output import Cell, Table, echo, print_table, table_lines
from flowctl.text import json_safe, sanitize

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one, reused: journal streams call it per entry


def to_json(value: Any) -> str:
    return json_safe(_ENCODER.encode(value))  # C1, bidi: as \u escapes, never raw


def plain(value: Any) -> Any:
    """A record (and the records in it) as plain dicts and lists, for JSON output."""
    import msgspec

    return msgspec.to_builtins(value)


def entry_dict(e: JournalEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at,
        "instance": e.instance_id,
        "version": e.version,
        "actor": e.actor,
        "kind": e.kind,
        "stage": e.stage,
        "result": e.result,
        "data": e.data,
        "hash": e.hash,
    }


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _who(principals: Iterable[str]) -> str:
    """``user:carol`` -> ``carol``; ``role:logistics`` -> ``any logistics``."""
    out = []
    for p in principals:
        kind, _, name = p.partition(":")
        out.append(f"any {name}" if kind == "role" else name)
    return ", ".join(out)


def _started(d: Mapping[str, Any]) -> str:
    fields = d.get("fields") or {}
    extra = "".join(f" {k}={_value(v)}" for k, v in fields.items())
    return f"{d.get('process')}{extra}"


def _entered(e: JournalEntry) -> str:
    d = e.data
    if "join" in d:  # a parallel stage
        return _forked(e)
    if "child_needed" in d:  # a subprocess stage ("wait" says whether it waits for the child)
        how = "waits for it" if d.get("wait") else "goes on without waiting"
        return f"'{e.stage}': starts child process {d['child_needed']} and {how}"
    if "wait" in d:
        return f"'{e.stage}': waiting {d['wait']} (wakes {d.get('wake_at')})"
    due = f", due {d['due_at']}" if d.get("due_at") else ""
    return f"'{e.stage}' for {_who(d.get('assignees') or [])}{due}{_picked(d)}"


def _picked(d: Mapping[str, Any]) -> str:
    """`` (round-robin among role sales-rep, after alice)`` for an assignment by ``pick``."""
    parts = []
    for p in d.get("picked") or ():
        among = str(p.get("among", "")).replace(":", " ")
        if p.get("after"):
            detail = f", after {p['after']}"
        elif p.get("load"):
            detail = ", open stages " + ", ".join(f"{u}={n}" for u, n in p["load"].items())
        else:
            detail = ""
        parts.append(f"{p.get('user')}: {p.get('pick')} among {among}{detail}")
    return f" ({'; '.join(parts)})" if parts else ""


def _set_by(d: Mapping[str, Any]) -> str:
    """`` (set with result 'approve': actor)`` for a field changed by ``set:`` or a default."""
    why = d.get("set")
    if not why:
        return ""
    value = d.get("value")
    return f" ({why}: {value})" if why == "default" else f" (set {why}: {value})"


def _names(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(n) for n in names]
    if not items:
        return ""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _forked(e: JournalEntry) -> str:
    d = e.data
    started = d.get("branches") or []
    text = (f"'{e.stage}' started {len(started)} branch{'' if len(started) == 1 else 'es'}"
            f" at once ({_names(started)})" if started
            else f"'{e.stage}' started no branch")
    skipped = d.get("skipped") or {}
    if skipped:
        text += "; skipped " + "; ".join(f"{n} ({w} does not hold)" for n, w in skipped.items())
    values = ", ".join(f"{k}={_value(v)}" for k, v in (d.get("values") or {}).items())
    if values:
        text += f" ({values})"
    return f"{text}; '{d.get('join')}' needs {d.get('needed')} of them" if started else text


def _joined(e: JournalEntry) -> str:
    d = e.data
    reached = _names(d.get("branches") or [])
    text = (f"'{e.stage}' is complete: {reached} reached it; on to '{d.get('to')}'" if reached
            else f"'{e.stage}' is complete: no branch was started; on to '{d.get('to')}'")
    if d.get("cancelled"):
        text += f"; cancelled {_names(d['cancelled'])}"
    return text


def _decision(e: JournalEntry) -> str:
    d = e.data
    values = ", ".join(f"{k}={_value(v)}" for k, v in (d.get("values") or {}).items())
    seen = f" ({values})" if values else ""
    if d.get("branch", d.get("choice")) == "default":
        return f"'{e.stage}': no branch applies{seen} -> {d.get('to')}"
    return f"'{e.stage}': {d.get('when')}{seen} -> {d.get('to')}"


def _vote(e: JournalEntry) -> str:
    pending = e.data.get("pending")
    rest = f"; still to sign: {_who(pending)}" if pending else ""
    return f"{e.result} at '{e.stage}'{rest}"


def _comment(d: Mapping[str, Any]) -> str:
    return f": {d['comment']}" if d.get("comment") else ""


_SUMMARIES: dict[str, Callable[[JournalEntry], str]] = {
    "started": lambda e: _started(e.data),
    "stage_entered": _entered,
    "decision": _decision,
    "vote": _vote,
    "result": lambda e: f"{e.result} at '{e.stage}'{_comment(e.data)}",
    "field_changed": lambda e: (
        f"{e.data.get('field')}: {_value(e.data.get('from'))} -> {_value(e.data.get('to'))}"
        + _set_by(e.data)
    ),
    "reassigned": lambda e: (
        f"'{e.stage}' from {_who(e.data.get('from') or [])}"
        f" to {_who([e.data.get('to', '')])}{_comment(e.data)}"
    ),
    "note": lambda e: f"{'appended' if e.data.get('append') else 'set'}: {e.data.get('text')}",
    "link": lambda e: f"{e.data.get('kind')} {e.data.get('ref')}",
    "attached": lambda e: (
        f"{e.data.get('name')} (version {e.data.get('version')}, {size_text(e.data.get('size'))},"
        f" sha256 {str(e.data.get('sha256'))[:12]})"
    ),
    "began": lambda e: f"'{e.stage}'",
    "completed": lambda e: f"at '{e.stage}' (outcome: {e.data.get('outcome')})",
    "cancelled": lambda e: (
        f"at '{e.stage}'" + (f": {e.data['reason']}" if e.data.get("reason") else "")
    ),
    "event": lambda e: f"{e.data.get('type')}" + (
        f": {e.data['comment']}" if e.data.get("comment") else ""
    ),
    "task_created": lambda e: (
        f"'{e.data.get('task')}' {e.data.get('name')} for {_who([e.data.get('assignee', '')])}"
        + (f" (needed before {', '.join(e.data['blocks'])})" if e.data.get("blocks")
           else " (blocking)" if e.data.get("blocking") else "")
    ),
    "task_scheduled": lambda e: (
        f"'{e.data.get('task')}' {e.data.get('name')} for {_who([e.data.get('assignee', '')])},"
        f" appears {e.data.get('at')}"
    ),
    "task_done": lambda e: f"'{e.data.get('task')}' {e.data.get('name')}{_comment(e.data)}",
    "woke": lambda e: f"'{e.stage}' (due {e.data.get('due_at')})",
    "overdue": lambda e: (
        f"'{e.stage}' was due {e.data.get('due_at')}; held by {_who(e.data.get('assignees') or [])}"
    ),
    "escalation": lambda e: _escalation(e),
    "timer_failed": lambda e: f"{e.data.get('kind')} at '{e.stage}': {e.data.get('error')}",
    "paused": lambda e: (
        (f"for {e.data['for']}, until {e.data.get('until')}" if e.data.get("for")
         else "until resumed")
        + (f": {e.data['reason']}" if e.data.get("reason") else "")
    ),
    "resumed": lambda e: (
        f"after {_seconds(int(e.data.get('paused_seconds') or 0))}"
        + (" (automatic)" if e.data.get("auto") else "")
    ),
    "child_started": lambda e: (
        f"{e.data.get('child')} ({e.data.get('process')})"
        + (", waits for it" if e.data.get("wait") else ", runs on its own")
    ),
    "child_ended": lambda e: (
        f"{e.data.get('child')} ended {e.data.get('status')} at '{e.data.get('end')}'"
        + (f" -> result {e.data['result']}" if e.data.get("result") else "")
        + (" (no result for it: a person decides)" if e.data.get("mapped") is False else "")
    ),
    "shared": lambda e: f"with {e.data.get('user')}: they may see it now",
    "branch_joined": lambda e: (
        f"branch {e.data.get('branch')} reached the join '{e.stage}'"
        f" ({e.data.get('joined')} of {e.data.get('needed')} needed)"
    ),
    "branch_ended": lambda e: (
        f"branch {e.data.get('branch')} reached the end '{e.stage}'"
        f" (outcome: {e.data.get('outcome')}); "
        + ("by the join's policy (cancel-others) the branches still open are cancelled"
           if e.data.get("policy") == "cancel-others"
           else "by the join's policy (finish-others) the instance ends there once the"
           " branches still open finish")
    ),
    "branch_cancelled": lambda e: (
        f"branch {e.data.get('branch')} was cancelled at '{e.stage}': {e.data.get('reason')}"
    ),
    "joined": _joined,
    "unshared": lambda e: f"with {e.data.get('user')}: taken back",
    "notification_sent": lambda e: (
        f"{e.data.get('kind')} to {e.data.get('user')} through"
        f" {', '.join(e.data.get('sent') or []) or 'no channel'}"
        f" (attempt {e.data.get('attempt')})"
    ),
    "notification_failed": lambda e: (
        f"to {e.data.get('user')} (attempt {e.data.get('attempt')}): {e.data.get('error')}"
        + ("; gave up" if e.data.get("gave_up") else
           f"; tried again at {e.data['next_attempt_at']}" if e.data.get("next_attempt_at")
           else "")
    ),
}


def _escalation(e: JournalEntry) -> str:
    d = e.data
    text = f"level {d.get('level')} {d.get('action')} at '{e.stage}' after {d.get('after')}"
    if d.get("result"):
        return f"{text}: result {d['result']}"
    if d.get("from") is not None:
        return f"{text}: from {_who(d.get('from') or [])} to {_who(d.get('to') or [])}"
    told = " (told with the overdue notice)" if d.get("told_by") == "overdue" else ""
    return f"{text}: {_who(d.get('to') or [])}{told}"


def _seconds(total: int) -> str:
    """``93784`` -> ``1d 2h 3m``; under a minute: ``42s``."""
    days, rest = divmod(max(0, total), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or f"{seconds}s"


def summary(e: JournalEntry) -> str:
    """One line saying what the entry records."""
    fn = _SUMMARIES.get(e.kind)
    text = fn(e) if fn else _value({k: v for k, v in e.data.items() if k != "by"})
    if e.data.get("branch") and e.kind in _IN_BRANCH and (
            e.kind != "decision" or "choice" in e.data):
        text += f" [branch {e.data['branch']}]"
    if e.data.get("as_admin"):
        text += " [as admin]"
    return sanitize(text, keep="")  # one line, nothing that drives a terminal


# kinds whose text does not name the branch already (a decision's own
# "branch" is its rule; inside a parallel branch it is "choice")
_IN_BRANCH = frozenset(_SUMMARIES) - {"branch_joined", "branch_ended", "branch_cancelled",
                                      "joined"}


def acted(e: JournalEntry) -> str:
    """Who acted: ``carol``, or ``carol (by root)`` when an admin acted for carol
    (the entry's ``by``, identity = "login" and --as)."""
    by = e.data.get("by")
    return e.actor + (sanitize(f" (by {by})", keep="") if isinstance(by, str) and by else "")


def history_line(e: JournalEntry) -> str:
    return f"{e.at}  v{e.version}  {acted(e)}  {e.kind}  {summary(e)}"


def journal_line(e: JournalEntry) -> str:
    return f"{e.seq}  {e.at}  {e.instance_id}  v{e.version}  {acted(e)}  {e.kind}  {summary(e)}"


# ----------------------------------------------------------------- steps


def step_lines(step: StepResult, *, started: bool = False) -> list[str]:
    """What a write command prints: what happened, then where it is now."""
    v = step.instance
    lines = []
    if started:
        lines.append(f"{v.id}: started {v.process_id} (definition {v.definition[:12]})")
    for e in step.entries:
        if e.instance_id != v.id:
            if e.kind in _OTHER_KINDS:
                lines.append(f"{e.instance_id}: {e.kind} {summary(e)}")
            continue
        if e.kind in _STEP_KINDS:
            lines.append(f"{v.id}: {e.kind} {summary(e)}")
        if e.kind == "cancelled":
            lines += _cancel_policy(v.id, e.data)
    lines += [f"{v.id}: {line}" for line in where_lines(v)]
    return lines


def where_lines(v: InstanceView) -> list[str]:
    """Where the instance is: one line, or with an open parallel stage, a line
    for it and one for each branch still running."""
    if not v.branches or v.status in ("completed", "cancelled"):
        return [v.where]
    live = [b for b in v.branches if b.status in ("active", "waiting")]
    head = f"at '{v.stage}', {len(live)} of {len(v.branches)} branches running"
    if v.status == "paused":
        head = f"paused at '{v.stage}' {v.waiting_for}"
    return [head] + [f"  branch {b.where}" for b in live]


_STEP_KINDS = (
    "result", "decision", "vote", "reassigned", "note", "link", "attached", "began", "event",
    "task_created", "task_scheduled", "task_done", "paused", "resumed", "child_started",
    "child_ended", "escalation", "shared", "unshared", "branch_joined", "branch_ended",
    "branch_cancelled", "joined",
)
_OTHER_KINDS = ("started", "completed", "cancelled", "result", "child_started", "child_ended")


def _cancel_policy(iid: str, d: Mapping[str, Any]) -> list[str]:
    out = []
    if d.get("children_cancelled"):
        out.append(f"{iid}: children it waited for are cancelled with it:"
                   f" {', '.join(d['children_cancelled'])}")
    if d.get("children_left_running"):
        out.append(f"{iid}: children it did not wait for keep running:"
                   f" {', '.join(d['children_left_running'])}")
    return out


# ------------------------------------------------------------------ card


def _stage_line(v: InstanceView) -> str:
    if v.stage is None:
        return f"{v.last_stage} (finished)"
    name = f" ({v.stage_name})" if v.stage_name and v.stage_name != v.stage else ""
    phase = f", phase {v.phase}" if v.phase else ""
    return f"{v.stage}{name}{phase}: {v.stage_state}"


def size_text(size: Any) -> str:
    """``812 bytes``, ``1.5 KiB``, ``2.3 MiB``."""
    if not isinstance(size, int):
        return f"{size} bytes"
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def attachment_line(a: Any) -> str:
    """``contract.pdf  v1  1.5 KiB  sha256 3f2a9c0b71de  by dave, 2026-11-23T09:00:00Z``."""
    return (f"{a.name}  v{a.version}  {size_text(a.size)}  sha256 {a.sha256[:12]}"
            f"  by {a.by}, {a.at}")


def card_lines(card: InstanceCard) -> list[str]:
    v = card.instance
    due = v.due_at or "-"
    if v.overdue:
        due += " (overdue)"
    rows = [
        ("process", f"{v.process_id}: {v.process_name} (definition {v.definition[:12]})"),
        ("status", f"{v.status} (version {v.version})"
         + (f", outcome {v.outcome}" if v.outcome else "")),
        ("initiator", v.initiator),
        ("started", v.started_at),
        ("stage", _stage_line(v)),
        ("waiting for", v.waiting_for or "-"),
        ("due", due),
        ("parent", v.parent_id or "-"),
    ]
    lines = [f"{v.id}"] + [f"  {k + ':':<13}{val}" for k, val in rows]
    if v.watchers:
        lines.append(f"  {'shared with:':<13}{', '.join(v.watchers)}")
    live = {c.id: c for c in card.children}
    for c in v.children:
        how = "waited for" if c.wait else "runs on its own"
        child = live.get(c.instance_id or "")
        state = child.where if child else c.status
        lines.append(f"  {'child:':<13}{c.instance_id or c.process} ({c.process}) from"
                     f" '{c.stage}', {how}: {state}")
    if v.branches and v.status not in ("completed", "cancelled"):
        lines.append("branches:")
        lines += [f"  {b.where}" + (" (overdue)" if b.overdue else "") for b in v.branches]
    if v.tasks:
        lines.append("tasks:")
        lines += [f"  {task_line(t)}" for t in v.tasks]
    lines.append("fields:")
    lines += [f"  {f.name} ({f.label}): {_value(f.value)}" for f in card.fields]
    lines.append("note:")
    lines += [f"  {line}" for line in v.note.splitlines()] or ["  -"]
    lines.append("links:")
    lines += [f"  {lk.kind} {lk.ref} (by {lk.by}, {lk.at})" for lk in v.links] or ["  -"]
    lines.append("attachments:")
    lines += [f"  {attachment_line(a)}" for a in v.attachments] or ["  -"]
    lines.append("history:")
    lines += [f"  {history_line(e)}" for e in card.history]
    return [sanitize(line, keep="") for line in lines]  # shown escaped: "\x1b", "\u202e"


# ----------------------------------------------------------------- tables
#
# Listings are ``output.Table``s: ``output.print_table`` draws them as rich
# tables on a terminal and as padded plain lines when piped.

OVERDUE_STYLE = "bold red"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Plain lines: columns padded to their widest cell (display columns, so CJK lines up)."""
    return table_lines(Table(headers, rows))


def print_items(items: Sequence[Any], *, json_out: bool, empty: str,
                as_table: Callable[[Any], Table]) -> None:
    """What a listing command prints: its records as one JSON array, ``empty``
    when there are none, else their table."""
    if json_out:
        echo(to_json([plain(x) for x in items]))
    elif not items:
        echo(empty)
    else:
        print_table(as_table(items))


def due_text(v: InstanceView) -> str:
    if not v.due_at:
        return "-"
    return f"{v.due_at} OVERDUE" if v.overdue else v.due_at


def _time(at: str, style: str = "", text: str | None = None) -> Cell:
    """A time cell; a terminal shows ``2026-11-24 09:00:00Z`` (it can wrap there)."""
    text = at if text is None else text
    return Cell(text, style, text.replace("T", " ", 1) if at else None)


def _due_cell(v: InstanceView) -> Cell:
    if not v.due_at:
        return Cell("-")
    return _time(v.due_at, OVERDUE_STYLE if v.overdue else "", due_text(v))


def task_line(t: Any) -> str:
    """``check-prices: Check the current price list (alice, blocking) open``."""
    flags = ", blocking" if t.blocking else ""
    state = t.status
    if t.status == "scheduled":
        state = f"appears {t.at}"
    elif t.status == "done":
        state = f"done by {t.done_by} {t.done_at}"
    return f"{t.id}: {t.name} ({_who([t.assignee])}{flags}) {state}"


def inbox_table(views: list[InstanceView]) -> Table:
    rows: list[list[str | Cell]] = [
        [v.id, f"{v.stage} (branch {v.branch})" if v.branch else v.stage or "-", v.stage_state,
         _due_cell(v), v.process_name] for v in views
    ]
    return Table(["INSTANCE", "STAGE", "STATE", "DUE", "PROCESS"], rows, prose=["PROCESS"])


def list_table(views: list[InstanceView]) -> Table:
    rows: list[list[str | Cell]] = [
        [
            v.id,
            v.status,
            v.stage or v.last_stage or "-",
            v.waiting_for or (v.outcome or "-"),
            _due_cell(v),
            _time(v.started_at),
        ]
        for v in views
    ]
    return Table(["INSTANCE", "STATUS", "STAGE", "WAITING FOR / OUTCOME", "DUE", "STARTED"], rows,
                 prose=["WAITING FOR / OUTCOME"])


# ------------------------------------------------------------ time, tasks


def tick_dict(r: TickReport) -> dict[str, Any]:
    return {
        "now": r.now,
        "dry_run": r.dry_run,
        "fired": [
            {**{k: v for k, v in plain(f).items() if k != "entries"},
             "entries": [entry_dict(e) for e in f.entries]}
            for f in r.fired
        ],
        "deliveries": [plain(d) for d in r.deliveries],
        "notify_command": r.notify_command,
        "channels": r.channels,
        "undelivered": r.undelivered,
    }


def _fired_text(f: Any) -> str:
    mine = [e for e in f.entries if e.instance_id == f.instance_id]
    head = next((e for e in mine if e.kind not in ("stage_entered",)), None)
    what = f"{head.kind} {summary(head)}" if head else ""
    if f.status == "failed":
        what = f"FAILED: {f.error}"
    elif f.status in ("void", "skipped"):
        what = f"({f.status})"
    return what


def tick_lines(r: TickReport) -> list[str]:
    if r.dry_run:
        rows = [[f.due_at, f.instance_id, f.kind, f.stage, f.key] for f in r.fired]
        head = [f"would fire {len(rows)} timer{'' if len(rows) == 1 else 's'} due at {r.now}"]
        return head + (table(["DUE", "INSTANCE", "KIND", "STAGE", "TIMER"], rows) if rows else [])
    fired = [f for f in r.fired if f.status == "fired"]
    failed = [f for f in r.fired if f.status == "failed"]
    lines = [f"tick {r.now}: fired {len(fired)}"
             + (f", failed {len(failed)}" if failed else "")]
    for f in r.fired:
        if f.status in ("fired", "failed"):
            lines.append(f"  {f.instance_id}  {f.kind}  '{f.stage}'  due {f.due_at}  "
                         f"{_fired_text(f)}")
    return lines + delivery_lines(r)


def delivery_lines(r: TickReport) -> list[str]:
    ok = sum(1 for d in r.deliveries if d.delivered)
    bad = [d for d in r.deliveries if not d.delivered]
    if not r.channels:
        return [f"notifications: {r.undelivered} undelivered (no user has channels and no"
                " FLOWCTL_NOTIFY_COMMAND set)"]
    lines = [f"notifications: delivered {ok}, failed {len(bad)}, {r.undelivered} undelivered"]
    for d in bad:
        lines.append(f"  #{d.notification} to {d.user} ({d.instance_id}): {d.error}"
                     + ("; gave up" if d.gave_up else "; will retry"))
    return lines


def overdue_table(items: list[Overdue]) -> Table:
    rows: list[list[str | Cell]] = [
        [o.instance_id, o.stage, _time(o.due_at), Cell(_seconds(o.late_seconds), OVERDUE_STYLE),
         o.held_by if o.what == "stage" else f"{o.held_by} timer not fired yet (run tick)"]
        for o in items
    ]
    return Table(["INSTANCE", "STAGE", "DUE", "LATE BY", "HELD BY"], rows, prose=["HELD BY"])


def task_table(items: list[TaskView]) -> Table:
    rows: list[list[str | Cell]] = []
    for t in items:
        task = t.task
        state = task.status if task.status != "scheduled" else f"appears {task.at}"
        rows.append([t.instance_id, t.stage, task.id, task.name, _who([task.assignee]),
                     _blocks(task), state])
    return Table(["INSTANCE", "STAGE", "TASK", "NAME", "FOR", "BLOCKING", "STATE"], rows,
                 prose=["NAME", "FOR", "STATE"])


def _blocks(task: Any) -> str | Cell:
    """BLOCKING: the results a task holds back ("accepted"), "yes" for all, "no"."""
    if task.blocks:
        return Cell(", ".join(task.blocks), "bold")
    return Cell("yes", "bold") if task.blocking else "no"


def notification_table(items: list[NotificationRow]) -> Table:
    rows: list[list[str | Cell]] = [
        [str(n.id), _time(n.created_at), n.user, n.kind, n.message,
         "read" if n.read_at else ("delivered" if n.delivered_at else Cell("new", "bold"))]
        for n in items
    ]
    return Table(["ID", "AT", "USER", "KIND", "MESSAGE", "STATE"], rows, prose=["MESSAGE"])


def inbox_task_table(items: list[TaskView]) -> Table:
    rows: list[list[str | Cell]] = [
        [t.instance_id, t.stage, t.task.id, t.task.name,
         _blocks(t.task)] for t in items
    ]
    return Table(["INSTANCE", "STAGE", "TASK", "NAME", "BLOCKING"], rows, prose=["NAME"])

"""Text and JSON for the runtime commands: exact, stable lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from flowctl.api.runtime import InstanceCard, InstanceView, StepResult
from flowctl.store.base import JournalEntry


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


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


def view_dict(v: InstanceView) -> dict[str, Any]:
    return asdict(v)


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
    if "wait" in d:
        return f"'{e.stage}': waiting {d['wait']} ({d.get('wake_at')})"
    if "child_needed" in d:
        how = "waits for it" if d.get("wait") else "goes on"
        return f"'{e.stage}': needs child process {d['child_needed']} ({how})"
    due = f", due {d['due_at']}" if d.get("due_at") else ""
    return f"'{e.stage}' for {_who(d.get('assignees') or [])}{due}"


def _decision(e: JournalEntry) -> str:
    d = e.data
    values = ", ".join(f"{k}={_value(v)}" for k, v in (d.get("values") or {}).items())
    seen = f" ({values})" if values else ""
    if d.get("branch") == "default":
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
    ),
    "reassigned": lambda e: (
        f"'{e.stage}' from {_who(e.data.get('from') or [])}"
        f" to {_who([e.data.get('to', '')])}{_comment(e.data)}"
    ),
    "note": lambda e: f"{'appended' if e.data.get('append') else 'set'}: {e.data.get('text')}",
    "link": lambda e: f"{e.data.get('kind')} {e.data.get('ref')}",
    "began": lambda e: f"'{e.stage}'",
    "completed": lambda e: f"at '{e.stage}' (outcome: {e.data.get('outcome')})",
    "cancelled": lambda e: (
        f"at '{e.stage}'" + (f": {e.data['reason']}" if e.data.get("reason") else "")
    ),
}


def summary(e: JournalEntry) -> str:
    """One line saying what the entry records."""
    fn = _SUMMARIES.get(e.kind)
    text = fn(e) if fn else _value(dict(e.data))
    if e.data.get("as_admin"):
        text += " [as admin]"
    return text


def history_line(e: JournalEntry) -> str:
    return f"{e.at}  v{e.version}  {e.actor}  {e.kind}  {summary(e)}"


def journal_line(e: JournalEntry) -> str:
    return f"{e.seq}  {e.at}  {e.instance_id}  v{e.version}  {e.actor}  {e.kind}  {summary(e)}"


# ----------------------------------------------------------------- steps


def step_lines(step: StepResult, *, started: bool = False) -> list[str]:
    """What a write command prints: what happened, then where it is now."""
    v = step.instance
    lines = []
    if started:
        lines.append(f"{v.id}: started {v.process_id} (definition {v.definition[:12]})")
    for e in step.entries:
        if e.kind in ("result", "decision", "vote", "reassigned", "note", "link", "began"):
            lines.append(f"{v.id}: {e.kind} {summary(e)}")
    lines.append(f"{v.id}: {v.where}")
    return lines


# ------------------------------------------------------------------ card


def _stage_line(v: InstanceView) -> str:
    if v.stage is None:
        return f"{v.last_stage} (finished)"
    name = f" ({v.stage_name})" if v.stage_name and v.stage_name != v.stage else ""
    phase = f", phase {v.phase}" if v.phase else ""
    return f"{v.stage}{name}{phase}: {v.stage_state}"


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
    for c in v.children:
        lines.append(f"  {'child:':<13}{c.process} from '{c.stage}' ({c.status})")
    lines.append("fields:")
    lines += [f"  {f.name} ({f.label}): {_value(f.value)}" for f in card.fields]
    lines.append("note:")
    lines += [f"  {line}" for line in v.note.splitlines()] or ["  -"]
    lines.append("links:")
    lines += [f"  {lk.kind} {lk.ref} (by {lk.by}, {lk.at})" for lk in v.links] or ["  -"]
    lines.append("history:")
    lines += [f"  {history_line(e)}" for e in card.history]
    return lines


# ----------------------------------------------------------------- tables


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell (terminal cells, so CJK lines up)."""
    from rich.cells import cell_len

    widths = [cell_len(h) for h in headers]
    for row in rows:
        widths = [max(w, cell_len(c)) for w, c in zip(widths, row, strict=True)]
    out = []
    for row in [headers, *rows]:
        cells = [c + " " * (w - cell_len(c)) for c, w in zip(row, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
    return out


def due_text(v: InstanceView) -> str:
    if not v.due_at:
        return "-"
    return f"{v.due_at} OVERDUE" if v.overdue else v.due_at


def inbox_lines(views: list[InstanceView]) -> list[str]:
    rows = [
        [v.id, v.stage or "-", v.stage_state, due_text(v), v.process_name] for v in views
    ]
    return table(["INSTANCE", "STAGE", "STATE", "DUE", "PROCESS"], rows)


def list_lines(views: list[InstanceView]) -> list[str]:
    rows = [
        [
            v.id,
            v.status,
            v.stage or v.last_stage or "-",
            v.waiting_for or (v.outcome or "-"),
            due_text(v),
            v.started_at,
        ]
        for v in views
    ]
    return table(["INSTANCE", "STATUS", "STAGE", "WAITING FOR / OUTCOME", "DUE", "STARTED"], rows)

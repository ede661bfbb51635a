"""The journal as an event log: ``flowctl export --format xes|csv|jsonl``.

A case is an instance (``concept:name`` its id, with its process and its
record's fields); its events are the stages it entered (lifecycle ``start``)
and left (``complete``), in journal order: ``stage_entered`` starts a stage;
a ``result``, ``woke``, ``cancelled`` or ``branch_cancelled`` at it
completes it; a decision and an end stage (``decision``, ``completed``,
``branch_joined``, ``branch_ended``) start and complete at once. The
resource is the entry's actor; times are UTC.

XES is IEEE 1849-2016 with the Concept, Time, Lifecycle and Organizational
extensions. Entries are read instance by instance (``JournalFilter.by_instance``)
and written as they come, in chunks: memory stays flat however long the
journal is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Unpack

from flowctl import engine
from flowctl.api import access
from flowctl.api.instances import Context, acting, parse_since
from flowctl.errors import FlowctlError, UsageError
from flowctl.store.analytics import LEAVING_KINDS
from flowctl.store.base import InstanceFilter, JournalEntry, JournalFilter, Store

FORMATS = ("xes", "csv", "jsonl")
CHUNK = 1 << 16  # characters gathered before a write
CSV_COLUMNS = ("case_id", "activity", "lifecycle", "timestamp", "resource", "process",
               "result", "kind", "seq")
# an entry that arrives at a stage and leaves it at once (no time is spent there)
INSTANT_KINDS = ("decision", "completed", "branch_joined", "branch_ended")

Event = tuple[str, str, str, str, str | None, str, int]  # stage, lifecycle, at, actor, result,
# kind, seq


def events_of(e: JournalEntry) -> list[tuple[str, str]]:
    """(stage, lifecycle) of the events a journal entry makes (none for most kinds)."""
    if e.stage is None:
        return []
    if e.kind == "stage_entered" and "join" in e.data:  # a parallel stage: its branches start
        return [(e.stage, "start"), (e.stage, "complete")]
    if e.kind == "stage_entered":
        return [(e.stage, "start")]
    if e.kind in LEAVING_KINDS:
        return [(e.stage, "complete")]
    if e.kind in INSTANT_KINDS:
        return [(e.stage, "start"), (e.stage, "complete")]
    return []


_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """An XML attribute value: escaped, characters XML 1.0 cannot hold as U+FFFD."""
    text = _BAD_XML.sub("\ufffd", text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
            .replace("\t", "&#9;"))


def _xes_time(at: str) -> str:
    # stored as 2026-11-23T09:00:00Z; XES dates are xs:dateTime with an offset
    return at[:-1] + ".000+00:00" if at.endswith("Z") else at


XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="__INVALID__"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="__INVALID__"/>
    <string key="lifecycle:transition" value="complete"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Activity and lifecycle" keys="concept:name lifecycle:transition"/>
  <string key="concept:name" value="flowctl journal"/>
"""
XES_TAIL = "</log>\n"


def _xes_value(key: str, value: Any) -> str:
    k = _x(key)
    if isinstance(value, bool):
        return f'    <boolean key="{k}" value="{"true" if value else "false"}"/>\n'
    if isinstance(value, int):
        return f'    <int key="{k}" value="{value}"/>\n'
    if isinstance(value, float):
        return f'    <float key="{k}" value="{value!r}"/>\n'
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return f'    <string key="{k}" value="{_x(value)}"/>\n'


def _xes_trace_head(instance: str, process: str, record: dict[str, Any]) -> str:
    out = ["  <trace>\n", _xes_value("concept:name", instance), _xes_value("process", process)]
    out += [_xes_value(f"record:{name}", value) for name, value in sorted(record.items())
            if value is not None]
    return "".join(out)


def _xes_event(stage: str, life: str, e: JournalEntry) -> str:
    result = (f'      <string key="result" value="{_x(e.result)}"/>\n'
              if e.result is not None and life == "complete" else "")
    return (
        "    <event>\n"
        f'      <string key="concept:name" value="{_x(stage)}"/>\n'
        f'      <string key="lifecycle:transition" value="{life}"/>\n'
        f'      <date key="time:timestamp" value="{_xes_time(e.at)}"/>\n'
        f'      <string key="org:resource" value="{_x(e.actor)}"/>\n'
        f'      <string key="flowctl:kind" value="{_x(e.kind)}"/>\n'
        f'      <int key="flowctl:seq" value="{e.seq or 0}"/>\n'
        f"{result}"
        "    </event>\n"
    )


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _record(store: Store, instance: str) -> tuple[str, dict[str, Any]]:
    row = store.get_instance(instance)
    if row is None:  # an entry about the store itself (db repair)
        return "", {}
    record = row.state.get("record") or {}
    return row.process_id, dict(record) if isinstance(record, dict) else {}


def _entries(store: Store, processes: tuple[str, ...], since: str | None,
             until: str | None) -> Iterator[JournalEntry]:
    for p in processes or (None,):
        yield from store.journal(JournalFilter(process_id=p, since=since, until=until,
                                               by_instance=True))


def _xes(store: Store, entries: Iterator[JournalEntry]) -> Iterator[str]:
    buf: list[str] = [XES_HEAD]
    size = 0
    case: str | None = None
    for e in entries:
        evs = events_of(e)
        if not evs:
            continue
        if e.instance_id != case:
            if case is not None:
                buf.append("  </trace>\n")
            case = e.instance_id
            process, record = _record(store, case)
            buf.append(_xes_trace_head(case, process, record))
        for stage, life in evs:
            text = _xes_event(stage, life, e)
            buf.append(text)
            size += len(text)
        if size >= CHUNK:
            yield "".join(buf)
            buf, size = [], 0
    if case is not None:
        buf.append("  </trace>\n")
    buf.append(XES_TAIL)
    yield "".join(buf)


def _rows(store: Store, entries: Iterator[JournalEntry]) -> Iterator[tuple[JournalEntry, str,
                                                                           str, str]]:
    case: str | None = None
    process = ""
    for e in entries:
        evs = events_of(e)
        if not evs:
            continue
        if e.instance_id != case:
            case = e.instance_id
            process = _record(store, case)[0]
        for stage, life in evs:
            yield e, stage, life, process


def _csv(store: Store, entries: Iterator[JournalEntry]) -> Iterator[str]:
    buf = [",".join(CSV_COLUMNS) + "\n"]
    size = 0
    for e, stage, life, process in _rows(store, entries):
        result = e.result if e.result is not None and life == "complete" else ""
        line = ",".join((
            _csv_field(e.instance_id), _csv_field(stage), life, e.at, _csv_field(e.actor),
            _csv_field(process), _csv_field(result), e.kind, str(e.seq or 0),
        )) + "\n"
        buf.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(buf)
            buf, size = [], 0
    yield "".join(buf)


def _jsonl(store: Store, entries: Iterator[JournalEntry]) -> Iterator[str]:
    buf: list[str] = []
    size = 0
    for e, stage, life, process in _rows(store, entries):
        line = json.dumps({
            "case_id": e.instance_id, "activity": stage, "lifecycle": life, "timestamp": e.at,
            "resource": e.actor, "process": process,
            "result": e.result if life == "complete" else None, "kind": e.kind, "seq": e.seq,
        }, ensure_ascii=False) + "\n"
        buf.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(buf)
            buf, size = [], 0
    yield "".join(buf)


_WRITERS = {"xes": _xes, "csv": _csv, "jsonl": _jsonl}


def export(
    processes: Sequence[str] = (),
    fmt: str = "xes",
    *,
    since: str | None = None,
    until: str | None = None,
    **context: Unpack[Context],
) -> Iterator[str]:
    """The event log of the named processes (none: all) as chunks of text.

    The checks run when the first chunk is asked for: a time that is not one,
    ``since`` not before ``until``, an unknown format or process (UsageError),
    a user who does not see every instance (refused). Iterate it to the end
    (or close it) to release the database."""
    if fmt not in _WRITERS:
        raise UsageError(f"cannot export as '{fmt}'", hint=f"use {'|'.join(FORMATS)}")
    start = parse_since(since)
    end = parse_since(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {start} is not before --until {end}: the period is empty",
                         hint="give --since an earlier time than --until")
    return _export(tuple(dict.fromkeys(processes)), fmt, start, end, context)


def _export(processes: tuple[str, ...], fmt: str, since: str | None, until: str | None,
            context: Context) -> Iterator[str]:
    with acting(**context) as s:
        if not access.sees_all(s.user, s.org):
            admins = [u.id for u in s.org.members(engine.ADMIN_ROLE)]
            raise engine.NotPermitted(
                f"{s.user} may not export the journal: an event log holds every instance of "
                "a process, and only admins and auditors see every instance",
                hint=f"ask an admin ({', '.join(admins) or 'none'}) or an auditor; "
                     "`flowctl journal` shows the entries you may see",
            )
        for p in processes:
            if not any(True for _ in s.store.list_instances(
                    InstanceFilter(process_id=p, limit=1))):
                raise _unknown(p, s.store)
        yield from _WRITERS[fmt](s.store, _entries(s.store, processes, since, until))


def _unknown(p: str, store: Store) -> FlowctlError:
    known = sorted({r.process_id for r in store.list_instances(InstanceFilter(limit=1000))})
    return UsageError(
        f"no instance of process '{p}' in the store (processes with instances: "
        f"{', '.join(known) or 'none'})",
        hint="name a process that was started (`flowctl list` shows them)",
    )

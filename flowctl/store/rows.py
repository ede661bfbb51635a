"""Rows as both backends store them: the column lists, and the conversions
between a table's row (a tuple) and the store's records. Both backends keep
the same texts (canonical JSON, ISO-8601 UTC times), so that the journal's
hash chain is the same on either."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from flowctl.store.base import InstanceRow, JournalEntry, NotificationRow, StoreError
from flowctl.store.chain import canonical_json

INSTANCE_COLUMNS = (
    "id, process_id, definition_digest, status, stage, initiator, started_at, updated_at, "
    "version, due_at, assignees, parent_id, state"
)
JOURNAL_COLUMNS = (
    "seq, instance_id, at, actor, kind, version, stage, result, data, prev_hash, hash"
)

_DECODE = msgspec.json.Decoder().decode


def loads(text: str) -> Any:
    """``json.loads`` of a stored JSON text, by msgspec's faster decoder: the
    same values for the JSON the store writes (whatever it refuses, such as a
    lone surrogate escape, goes through ``json.loads``)."""
    if text == "{}":
        return {}
    try:
        return _DECODE(text)
    except msgspec.DecodeError:
        return json.loads(text)


def row_to_instance(row: tuple[Any, ...]) -> InstanceRow:
    return InstanceRow(
        id=row[0],
        process_id=row[1],
        definition_digest=row[2],
        status=row[3],
        stage=row[4],
        initiator=row[5],
        started_at=row[6],
        updated_at=row[7],
        version=row[8],
        due_at=row[9],
        assignees=tuple(loads(row[10])),
        parent_id=row[11],
        state=loads(row[12]),
    )


def row_to_entry(row: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(
        seq=row[0],
        instance_id=row[1],
        at=row[2],
        actor=row[3],
        kind=row[4],
        version=row[5],
        stage=row[6],
        result=row[7],
        data=loads(row[8]),
        prev_hash=row[9],
        hash=row[10],
    )


def row_to_notification(row: tuple[Any, ...]) -> NotificationRow:
    """A row of ``id, instance_id, user, kind, stage, message, created_at,
    delivered_at, read_at, attempts, last_error, next_attempt_at, subject,
    channels_done`` (the last a JSON list, or NULL)."""
    return NotificationRow(
        id=row[0], instance_id=row[1], user=row[2], kind=row[3], stage=row[4], message=row[5],
        created_at=row[6], delivered_at=row[7], read_at=row[8], attempts=row[9],
        last_error=row[10], next_attempt_at=row[11], subject=row[12],
        channels_done=tuple(loads(row[13])) if row[13] else (),
    )


def to_json(value: Any, what: str) -> str:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored: it is not plain JSON data ({exc})") from None


def instance_params(row: InstanceRow) -> tuple[Any, ...]:
    """The row's values in the order of ``INSTANCE_COLUMNS``."""
    return (
        row.id,
        row.process_id,
        row.definition_digest,
        row.status,
        row.stage,
        row.initiator,
        row.started_at,
        row.updated_at,
        row.version,
        row.due_at,
        to_json(list(row.assignees), f"the assignees of instance {row.id}"),
        row.parent_id,
        to_json(row.state, f"the state of instance {row.id}"),
    )


def same_identity(before: InstanceRow, row: InstanceRow) -> bool:
    """The columns a step does not change are the same in both rows."""
    return (
        before.process_id == row.process_id
        and before.definition_digest == row.definition_digest
        and before.initiator == row.initiator
        and before.started_at == row.started_at
        and before.parent_id == row.parent_id
    )


def filled(entry: JournalEntry, seq: int, prev_hash: str, digest: str) -> JournalEntry:
    """``entry`` as appended: with its seq, prev_hash and hash."""
    return JournalEntry(
        instance_id=entry.instance_id,
        at=entry.at,
        actor=entry.actor,
        kind=entry.kind,
        version=entry.version,
        stage=entry.stage,
        result=entry.result,
        data=entry.data,
        seq=seq,
        prev_hash=prev_hash,
        hash=digest,
    )

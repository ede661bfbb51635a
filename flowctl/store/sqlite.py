"""The SQLite store: one file, WAL, one write path, an append-only journal.

Usage (the api's side)::

    store = SqliteStore.open(".flowctl/flowctl.db")
    with store.transaction() as tx:          # BEGIN IMMEDIATE, retried
        row = tx.get_instance(instance_id)   # read inside the lock
        ...                                  # pure engine work
        tx.update_instance(new_row, expected_version=row.version)
        tx.append_journal(entries)
    store.close()

Every connection runs in WAL mode with ``synchronous=FULL`` (a commit survives
power loss), a busy timeout and foreign keys on. Python's own transaction
handling is off (``isolation_level=None``): this module issues ``BEGIN
IMMEDIATE`` itself, so every read a write depends on happens under the write
lock. Lock contention is retried with jittered backoff under an overall
deadline and surfaces as ``ConflictError``, never as "database is locked".
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from flowctl.store import analytics
from flowctl.store import migrations as schema
from flowctl.store.analytics import ReportData, ReportFilter
from flowctl.store.attachments import check_attachments, recorded_attachment
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
    RepairReport,
    StoreError,
    StoreMissing,
    TimerRow,
    VerifyReport,
)
from flowctl.store.chain import (
    STORE_ENTRY_ID,
    BadText,
    StoredEntry,
    Tail,
    canonical_json,
    describe_value,
    entry_hash_text,
    new_checker,
)
from flowctl.store.rows import INSTANCE_COLUMNS as _INSTANCE_COLUMNS
from flowctl.store.rows import JOURNAL_COLUMNS as _JOURNAL_COLUMNS
from flowctl.store.rows import filled as _filled
from flowctl.store.rows import instance_params as _instance_params
from flowctl.store.rows import row_to_entry as _row_to_entry
from flowctl.store.rows import row_to_instance as _row_to_instance
from flowctl.store.rows import row_to_notification as _row_to_notification
from flowctl.store.rows import same_identity as _same_identity
from flowctl.store.rows import to_json as _to_json

BUSY_TIMEOUT_MS = 5000
LOCK_DEADLINE_S = 30.0
FETCH_SIZE = 500
_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_T = TypeVar("_T")

_ORDER_COLUMNS = ("started_at", "updated_at")
_TIMER_COLUMNS = "instance_id, key, kind, stage, due_at, status, fired_at"
_NOTIFICATION_COLUMNS = (
    "id, instance_id, user, kind, stage, message, created_at, delivered_at, read_at, attempts, "
    "last_error, next_attempt_at, subject, channels_done"
)


def _row_to_timer(row: tuple[Any, ...]) -> TimerRow:
    return TimerRow(*row)


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc)
    return "locked" in text or "busy" in text


def _backoff(attempt: int) -> float:
    """Full jitter: a random pause up to 2 ms * 2**attempt, capped at 100 ms."""
    import random  # only under contention: not on every command's start-up

    return random.uniform(0.0, min(0.1, 0.002 * (2**attempt)))


def _retry_locked(what: Callable[[], _T], *, path: str, doing: str, deadline_s: float) -> _T:
    """Run ``what`` until it does not fail with BUSY/LOCKED, up to ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    attempt = 0
    while True:
        try:
            return what()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise ConflictError(
                    f"database {path} stayed locked by other writers for {deadline_s:g} s "
                    f"while {doing}; nothing was written",
                    hint="try again; if it persists, look for a process holding the database",
                ) from None
            time.sleep(_backoff(attempt))
            attempt = min(attempt + 1, 10)


def _changing_params(row: InstanceRow) -> tuple[Any, ...]:
    return (
        row.status,
        row.stage,
        row.updated_at,
        row.version,
        row.due_at,
        _to_json(list(row.assignees), f"the assignees of instance {row.id}"),
        _to_json(row.state, f"the state of instance {row.id}"),
    )


def _fetch_stream(cursor: sqlite3.Cursor, size: int = FETCH_SIZE) -> Iterator[tuple[Any, ...]]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield from rows


class SqliteTransaction:
    """The write side, valid only inside ``SqliteStore.transaction()``."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._process_of: dict[str, str] = {}
        # The rows as read or written in this transaction (under the write lock),
        # so that an update writes only what changed.
        self._seen: dict[str, InstanceRow] = {}
        self.closed = False

    def _live(self) -> sqlite3.Connection:
        if self.closed:
            raise StoreError("this transaction has ended; open a new one with store.transaction()")
        return self._conn

    # -- reads ---------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        row = self._live().execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            return None
        found = _row_to_instance(row)
        self._process_of[found.id] = found.process_id
        self._seen[found.id] = found
        return found

    # -- writes --------------------------------------------------------------

    def insert_instance(self, row: InstanceRow) -> None:
        conn = self._live()
        try:
            conn.execute(
                f"INSERT INTO instances ({_INSTANCE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _instance_params(row),
            )
        except sqlite3.IntegrityError as exc:
            if self._exists(row.id):
                raise ConflictError(
                    f"instance {row.id} already exists; nothing was written"
                ) from None
            raise StoreError(f"instance {row.id} cannot be stored: {exc}") from None
        self._set_principals(row, ())
        self._set_timers(row)
        self._process_of[row.id] = row.process_id
        self._seen[row.id] = row

    def update_instance(self, row: InstanceRow, *, expected_version: int) -> None:
        if row.version != expected_version + 1:
            raise ValueError(
                f"instance {row.id}: the new row must carry version {expected_version + 1} "
                f"(expected_version + 1), not {row.version}"
            )
        conn = self._live()
        before = self._seen.get(row.id)
        if before is not None and _same_identity(before, row):
            # Only the columns a step changes: the indexes on the others
            # (process, initiator, start time, parent) are left untouched.
            cursor = conn.execute(
                "UPDATE instances SET status = ?, stage = ?, updated_at = ?, version = ?, "
                "due_at = ?, assignees = ?, state = ? WHERE id = ? AND version = ?",
                (*_changing_params(row), row.id, expected_version),
            )
        else:
            params = _instance_params(row)
            cursor = conn.execute(
                "UPDATE instances SET process_id = ?, definition_digest = ?, status = ?, "
                "stage = ?, initiator = ?, started_at = ?, updated_at = ?, version = ?, "
                "due_at = ?, assignees = ?, parent_id = ?, state = ? WHERE id = ? AND version = ?",
                (*params[1:], row.id, expected_version),
            )
        if cursor.rowcount == 0:
            found = conn.execute(
                "SELECT version FROM instances WHERE id = ?", (row.id,)
            ).fetchone()
            if found is None:
                raise StoreError(f"instance {row.id} does not exist; nothing was written")
            raise ConflictError(
                f"instance {row.id} changed: expected version {expected_version}, "
                f"found {found[0]}; nothing was written",
                hint=f"look at it again (flowctl show {row.id}) and retry",
            )
        known = before.assignees if before is not None and before.version == expected_version \
            else None
        self._set_principals(row, known)
        self._set_timers(row, _timer_keys(before) if known is not None else None)
        self._process_of[row.id] = row.process_id
        self._seen[row.id] = row

    def append_journal(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        if not entries:
            return []
        conn = self._live()
        tail = conn.execute("SELECT seq, hash FROM journal_tail WHERE id = 1").fetchone()
        seq, prev_hash = (0, "") if tail is None else (int(tail[0]), str(tail[1]))
        written: list[JournalEntry] = []
        params: list[tuple[Any, ...]] = []
        for entry in entries:
            seq += 1
            process_id = self._process_id(entry.instance_id)
            data_text = _to_json(entry.data, f"journal data for instance {entry.instance_id}")
            digest = entry_hash_text(seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                                     entry.version, entry.stage, entry.result, data_text,
                                     prev_hash)
            params.append((seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                           entry.version, entry.stage, entry.result, data_text, prev_hash,
                           digest, process_id))
            written.append(_filled(entry, seq, prev_hash, digest))
            prev_hash = digest
        conn.executemany(
            f"INSERT INTO journal ({_JOURNAL_COLUMNS}, process_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params,
        )
        conn.execute(
            "INSERT INTO journal_tail (id, seq, hash) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, prev_hash),
        )
        return written

    def put_definition(self, definition: Definition) -> None:
        self._live().execute(
            "INSERT INTO definitions (digest, process_id, source, stored_at, names) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
            (definition.digest, definition.process_id, definition.source, definition.stored_at,
             definition.names),
        )

    def new_instance_id(self, process_id: str) -> str:
        conn = self._live()
        while True:
            row = conn.execute(
                "INSERT INTO id_counters (process_id, last) VALUES (?, 1) "
                "ON CONFLICT (process_id) DO UPDATE SET last = last + 1 RETURNING last",
                (process_id,),
            ).fetchone()
            candidate = f"{process_id}-{int(row[0])}"
            if not self._exists(candidate):
                return candidate

    def get_timer(self, instance_id: str, key: str) -> TimerRow | None:
        row = self._live().execute(
            f"SELECT {_TIMER_COLUMNS} FROM timers WHERE instance_id = ? AND key = ?",
            (instance_id, key),
        ).fetchone()
        return None if row is None else _row_to_timer(row)

    def mark_timer(self, instance_id: str, key: str, *, status: str, at: str) -> None:
        self._live().execute(
            "UPDATE timers SET status = ?, fired_at = ? WHERE instance_id = ? AND key = ?",
            (status, at, instance_id, key),
        )

    def add_notifications(self, rows: list[NotificationRow]) -> None:
        self._live().executemany(
            "INSERT INTO notifications (instance_id, user, kind, stage, message, created_at, "
            "next_attempt_at, subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(n.instance_id, n.user, n.kind, n.stage, n.message, n.created_at,
              n.next_attempt_at or n.created_at, n.subject) for n in rows],
        )

    def add_attachment(self, row: AttachmentRow, content: bytes) -> None:
        conn = self._live()
        conn.execute(
            "INSERT OR IGNORE INTO attachment_blobs (sha256, size, content) VALUES (?, ?, ?)",
            (row.sha256, row.size, content),
        )
        conn.execute(
            "INSERT INTO attachments (instance_id, name, version, sha256, size, added_by,"
            " added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.instance_id, row.name, row.version, row.sha256, row.size, row.added_by,
             row.added_at),
        )

    def claim_notifications(
        self, *, now: str, lease_until: str, max_attempts: int, limit: int
    ) -> list[NotificationRow]:
        conn = self._live()
        rows = conn.execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE delivered_at IS NULL "
            "AND next_attempt_at <= ? AND attempts < ? "
            "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY next_attempt_at, id "
            "LIMIT ?",
            (now, max_attempts, now, limit),
        ).fetchall()
        conn.executemany(
            "UPDATE notifications SET claimed_until = ? WHERE id = ?",
            [(lease_until, r[0]) for r in rows],
        )
        return [_row_to_notification(r) for r in rows]

    def finish_notification(
        self, notification_id: int, *, delivered_at: str | None, error: str | None,
        next_attempt_at: str | None, channels_done: tuple[str, ...] = (),
    ) -> NotificationRow:
        conn = self._live()
        done = json.dumps(list(channels_done)) if channels_done else None
        if delivered_at is not None:
            conn.execute(
                "UPDATE notifications SET delivered_at = ?, attempts = attempts + 1, "
                "last_error = NULL, claimed_until = NULL, channels_done = ? WHERE id = ?",
                (delivered_at, done, notification_id),
            )
        else:
            conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, claimed_until = NULL, channels_done = ? WHERE id = ?",
                (error, next_attempt_at, done, notification_id),
            )
        row = conn.execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()
        return _row_to_notification(row)

    def mark_read(self, user: str, ids: tuple[int, ...], *, at: str) -> int:
        conn = self._live()
        sql = "UPDATE notifications SET read_at = ? WHERE user = ? AND read_at IS NULL"
        params: list[Any] = [at, user]
        if ids:
            sql += f" AND id IN ({', '.join('?' * len(ids))})"
            params.extend(ids)
        return conn.execute(sql, params).rowcount

    # -- helpers -------------------------------------------------------------

    def open_load(self, users: Sequence[str], *,
                  excluding: str | None = None) -> dict[str, int]:
        # One index range of instance_principals per user: as fast as their load is small.
        out: dict[str, int] = {}
        for user in users:
            row = self._live().execute(
                "SELECT count(*) FROM instance_principals WHERE principal = ?"
                " AND instance_id IS NOT ?",
                (f"user:{user}", excluding),
            ).fetchone()
            if row[0]:
                out[user] = int(row[0])
        return out

    def pick_turns(self) -> dict[str, str]:
        rows = self._live().execute("SELECT pool, user FROM pick_turns").fetchall()
        return {str(pool): str(user) for pool, user in rows}

    def set_pick_turn(self, pool: str, user: str, *, at: str) -> None:
        self._live().execute(
            "INSERT INTO pick_turns (pool, user, at) VALUES (?, ?, ?)"
            " ON CONFLICT (pool) DO UPDATE SET user = excluded.user, at = excluded.at",
            (pool, user, at),
        )

    def _set_timers(self, row: InstanceRow, before: frozenset[str] | None = None) -> None:
        """Make the pending rows of ``timers`` equal to the row's timers; ``before``
        (the keys of the timers stored with the row until now, if known) skips
        voiding when none of them is gone: only those can be pending."""
        conn = self._conn
        keys = [t.key for t in row.timers]
        if before is None or not before <= set(keys):
            conn.execute(
                "UPDATE timers SET status = 'void' WHERE instance_id = ? AND status = 'pending' "
                f"AND key NOT IN ({', '.join('?' * len(keys))})",
                (row.id, *keys),
            )
        if not row.timers:
            return
        conn.executemany(
            f"INSERT INTO timers ({_TIMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', NULL) "
            "ON CONFLICT (instance_id, key) DO UPDATE SET kind = excluded.kind, "
            "stage = excluded.stage, due_at = excluded.due_at, status = 'pending', "
            "fired_at = NULL WHERE timers.status != 'fired'",
            [(row.id, t.key, t.kind, t.stage, t.due_at) for t in row.timers],
        )

    def _exists(self, instance_id: str) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
        return found is not None

    def _set_principals(self, row: InstanceRow, before: tuple[str, ...] | None) -> None:
        """Make ``instance_principals`` equal to the row's assignees; ``before``
        (the assignees stored until now, if known) limits it to the difference."""
        conn = self._conn
        now = set(row.assignees)
        if before is None:
            conn.execute("DELETE FROM instance_principals WHERE instance_id = ?", (row.id,))
            added = now
        else:
            gone = set(before) - now
            added = now - set(before)
            if gone:
                conn.executemany(
                    "DELETE FROM instance_principals WHERE principal = ? AND instance_id = ?",
                    [(principal, row.id) for principal in sorted(gone)],
                )
        if added:
            conn.executemany(
                "INSERT OR IGNORE INTO instance_principals (principal, instance_id) "
                "VALUES (?, ?)",
                [(principal, row.id) for principal in sorted(added)],
            )

    def _process_id(self, instance_id: str) -> str:
        known = self._process_of.get(instance_id)
        if known is not None:
            return known
        row = self._conn.execute(
            "SELECT process_id FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            raise StoreError(
                f"journal entry for instance {instance_id}, which does not exist: "
                "insert the instance before its journal entries"
            )
        self._process_of[instance_id] = row[0]
        return str(row[0])


def _timer_keys(row: InstanceRow | None) -> frozenset[str] | None:
    """The keys of the timers in a stored row's state (each write makes the
    pending rows of ``timers`` a subset of them); None when one has no key (a
    state older than keys) or the row is not known."""
    if row is None:
        return None
    keys = [t.get("key") if isinstance(t, dict) else None
            for t in row.state.get("timers") or ()]
    if not all(isinstance(k, str) and k for k in keys):
        return None
    return frozenset(k for k in keys if isinstance(k, str))


def _instance_query(flt: InstanceFilter) -> tuple[str, list[Any]]:
    statuses = tuple(dict.fromkeys(flt.status))
    if len(statuses) < 2 or flt.principals:
        return _instance_select(flt, statuses)
    # Several statuses: one range of the (status, order, id) index per status,
    # each already in order and cut at the limit, merged. (One query with
    # ``status IN`` would read every match and sort it; one that walks the
    # order index would read past every instance of the other statuses.)
    parts: list[str] = []
    params: list[Any] = []
    for status in statuses:
        sql, more = _instance_select(flt, (status,))
        parts.append(f"SELECT * FROM ({sql})")
        params.extend(more)
    sql = " UNION ALL ".join(parts) + _order_limit(flt, params)
    return sql, params


_SEARCHED = ("names", "record", "notes", "comments")


def _search_query(text: str, flt: InstanceFilter) -> tuple[str, list[Any]]:
    """FTS5 (trigram) for the words of three characters or more, ranked by
    bm25; a shorter word (two Chinese characters are a whole word) cannot use
    the trigram index, so it is matched with LIKE on the indexed text."""
    words = text.split()
    longer = [w for w in words if len(w) >= 3]
    where: list[str] = []
    params: list[Any] = []
    if longer:
        where.append("instance_search MATCH ?")
        params.append(" ".join('"' + w.replace('"', '""') + '"' for w in longer))
    for word in words:
        if len(word) < 3:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            where.append(
                "(" + " OR ".join(f"s.{c} LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
            params.extend([pattern] * len(_SEARCHED))
    statuses = tuple(dict.fromkeys(flt.status))
    if statuses:
        where.append(f"i.status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    for column, value in (
        ("i.process_id = ?", flt.process_id),
        ("i.initiator = ?", flt.initiator),
        ("i.started_at >= ?", flt.started_since),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    columns = ", ".join(f"i.{c.strip()}" for c in _INSTANCE_COLUMNS.split(","))
    order = "s.rank, " if longer else ""
    sql = (
        f"SELECT {columns} FROM instance_search AS s JOIN instances AS i ON i.rowid = s.rowid"
        f" WHERE {' AND '.join(where) or '1'}"
        f" ORDER BY {order}i.started_at DESC, i.id DESC"
    )
    if flt.limit is not None:
        sql += " LIMIT ?"
        params.append(max(0, flt.limit))
    return sql, params


def _order_limit(flt: InstanceFilter, params: list[Any]) -> str:
    order = getattr(flt, "order_by", None) or "started_at"
    if order not in _ORDER_COLUMNS:
        raise ValueError(f"cannot order instances by {order!r}; allowed: {_ORDER_COLUMNS}")
    direction = "ASC" if flt.oldest_first else "DESC"
    sql = f" ORDER BY {order} {direction}, id {direction}"
    if flt.limit is not None:
        sql += " LIMIT ?"
        params.append(max(0, flt.limit))
    return sql


def _instance_select(flt: InstanceFilter, statuses: tuple[str, ...]) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if len(statuses) == 1:
        where.append("status = ?")  # the (status, order, id) index: no sort
        params.extend(statuses)
    elif statuses:  # the inbox's few rows, filtered
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    for column, value in (
        ("process_id = ?", flt.process_id),
        ("initiator = ?", flt.initiator),
        ("started_at >= ?", flt.started_since),
        ("parent_id = ?", flt.parent_id),
        ("due_at < ?", flt.due_before),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    sql = f"SELECT {_INSTANCE_COLUMNS} FROM instances"
    if flt.principals:
        # The inbox: start from the principals' few rows, not from every active
        # instance (CROSS JOIN keeps SQLite from reordering the join).
        marks = ", ".join("?" * len(flt.principals))
        sql = (
            f"SELECT {_INSTANCE_COLUMNS} FROM (SELECT DISTINCT instance_id FROM "
            f"instance_principals WHERE principal IN ({marks})) AS mine "
            "CROSS JOIN instances ON instances.id = mine.instance_id"
        )
        params[:0] = flt.principals
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + _order_limit(flt, params), params


def _journal_query(flt: JournalFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("instance_id", flt.instance_id),
        ("process_id", flt.process_id),
        ("actor", flt.actor),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if flt.since is not None:
        where.append("at >= ?")
        params.append(flt.since)
    if flt.until is not None:
        where.append("at < ?")
        params.append(flt.until)
    sql = f"SELECT {_JOURNAL_COLUMNS} FROM journal"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + (" ORDER BY instance_id, seq" if flt.by_instance else " ORDER BY seq"), params


class SqliteStore:
    """A flowctl database in one SQLite file (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, path: str, *, lock_deadline_s: float) -> None:
        self._conn = conn
        self.path = path
        self._lock_deadline_s = lock_deadline_s
        # What this open created (the folders, then the file) when asked to
        # discard an unused new store: removed on close unless a write committed.
        self._created: list[str] = []
        self._committed = False
        self._stamp: tuple[int, int, int] | None = None  # see open_readonly
        self._temp: str | None = None  # a private copy open_readonly read instead
        self._intact_at: int | None = None  # schema version the triggers were intact at

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        lock_deadline_s: float = LOCK_DEADLINE_S,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        migrations: tuple[schema.Migration, ...] | None = None,
        durable: bool = True,
        create: bool = True,
        discard_unused: bool = False,
    ) -> SqliteStore:
        """Open (creating it and its parent folders if missing) and upgrade the database.

        With ``create=False`` a missing file is refused (:class:`StoreMissing`)
        instead: commands that only read never create a store. With
        ``discard_unused``, a store this call created is removed again by
        :meth:`close` (the file and the folders made for it) unless a write
        transaction committed: a refused first command leaves nothing behind.

        Raises StoreError if the file is not a SQLite database, is not flowctl's,
        or was written by a newer flowctl; ConflictError if other writers keep it
        locked past ``lock_deadline_s`` (each attempt waits up to
        ``busy_timeout_ms`` inside SQLite first). ``migrations`` is for tests.

        ``durable=False`` (``synchronous=OFF``) lets a commit return before the
        disk has it: the same rows, written faster, but a crash or power loss
        can lose or corrupt the file. Only for building a new, throwaway
        database in bulk (benchmark data); never for one people work in.
        """
        name = os.fspath(path)
        created: list[str] = []
        if name != ":memory:":
            if not create and not os.path.exists(name):
                raise StoreMissing(f"no store at {name}")
            created = _check_file(name)
        try:
            conn = sqlite3.connect(
                name, isolation_level=None, timeout=busy_timeout_ms / 1000
            )
        except sqlite3.Error as exc:
            if discard_unused:
                _remove(created)
            raise StoreError(f"cannot open database {name}: {exc}") from None
        store = cls(conn, name, lock_deadline_s=lock_deadline_s)
        if discard_unused:
            store._created = created
        try:
            store._prepare(
                schema.MIGRATIONS if migrations is None else migrations, busy_timeout_ms,
                "FULL" if durable else "OFF",
            )
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(
        cls, path: str | os.PathLike[str], *, immutable: bool | None = None
    ) -> SqliteStore:
        """Open an existing store only to read it, writing nothing beside it.

        When no write-ahead log with changes lies beside the file (a copy, or a
        store nobody has open), SQLite opens it ``immutable``: no ``-wal`` or
        ``-shm`` file is made and no lock taken, so a copy in a read-only
        folder can be read. Otherwise ``mode=ro``, which reads the log too.
        :meth:`changed_since_open` says whether a writer came meanwhile (then
        read it again: the immutable read may have missed their changes);
        ``immutable=False`` asks for ``mode=ro`` whatever lies beside it."""
        from urllib.parse import quote

        name = os.fspath(path)
        if not os.path.exists(name):
            raise StoreMissing(f"no store at {name}")
        if os.path.isdir(name):
            raise StoreError(f"{name} is a directory, not a database file")
        _check_header(name)
        stamp = _stamp(name)
        if immutable is None:
            immutable = stamp[2] == 0
        uri = f"file:{quote(os.path.abspath(name))}?" + ("immutable=1" if immutable else "mode=ro")
        temp = None
        try:
            conn, version, tables = _connect_readonly(uri)
        except sqlite3.Error as exc:
            if immutable:
                raise StoreError(f"cannot open database {name} to read it: {exc}") from None
            # mode=ro needs a -shm file beside a database whose -wal holds
            # changes, which a read-only folder cannot take: read a private copy
            # of the database and its -wal instead.
            temp, conn, version, tables = _read_a_copy(name, exc)
        store = cls(conn, name, lock_deadline_s=LOCK_DEADLINE_S)
        store._stamp = stamp if immutable else None
        store._temp = temp
        if version > schema.SCHEMA_VERSION:
            store.close()
            raise store._newer(version, schema.SCHEMA_VERSION)
        if version == 0 and tables:
            store.close()
            raise StoreError(f"{name} is a SQLite database but not a flowctl one")
        return store

    def copy_in_memory(self, *, search_index: bool = True) -> SqliteStore:
        """A new store in memory holding a copy of this one's database (``flowctl
        test`` starts each scenario from one empty store, made and migrated once).
        Without ``search_index`` the copy does not keep the full-text index of
        instances current (``flowctl list --search`` would not find them): a
        scenario never searches, and keeping it costs a fifth of each step."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        self._conn.backup(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        if not search_index:
            for name in schema.SEARCH_TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        return SqliteStore(conn, ":memory:", lock_deadline_s=self._lock_deadline_s)

    def changed_since_open(self) -> bool:
        """For a store opened immutable: whether the file or its log changed since."""
        return self._stamp is not None and _stamp(self.path) != self._stamp

    def _prepare(
        self, migrations: tuple[schema.Migration, ...], busy_timeout_ms: int, synchronous: str
    ) -> None:
        conn = self._conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {synchronous}")  # FULL or OFF, ours
            if self.path != ":memory:":
                self._ensure_wal()
            version = schema.read_version(conn)
            known = len(migrations)
            if version > known:
                raise self._newer(version, known)
            if version < known:
                self._migrate(migrations)
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None

    def _ensure_wal(self) -> None:
        conn = self._conn

        def switch() -> str:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode != "wal":
                mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            return mode

        mode = _retry_locked(
            switch, path=self.path, doing="switching it to WAL mode",
            deadline_s=self._lock_deadline_s,
        )
        if mode != "wal":
            raise StoreError(
                f"database {self.path} cannot use WAL journaling (it stays in {mode!r} mode); "
                "flowctl needs a local file system",
            )

    def _migrate(self, migrations: tuple[schema.Migration, ...]) -> None:
        conn = self._conn
        self._begin()
        try:
            version = schema.read_version(conn)  # another process may have migrated meanwhile
            known = len(migrations)
            if version > known:
                raise self._newer(version, known)
            if version == 0 and schema.has_tables(conn):
                raise StoreError(
                    f"{self.path} is a SQLite database but not a flowctl one "
                    "(it has tables and no flowctl schema version); refusing to change it",
                    hint="point flowctl at a new file or at an existing flowctl database",
                )
            if version < known:
                schema.apply_migrations(conn, version, migrations)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _newer(self, version: int, known: int) -> StoreError:
        return StoreError(
            f"database {self.path} was written by a newer flowctl (schema {version}; "
            f"this flowctl knows up to {known}); upgrade flowctl",
        )

    def _store_error(self, exc: sqlite3.Error) -> StoreError | ConflictError:
        text = str(exc)
        if _is_busy(exc):
            return ConflictError(
                f"database {self.path} is busy with other writers; nothing was written",
                hint="try again",
            )
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"{self.path} is not a usable flowctl database: {text}",
                hint="point flowctl at a new file or at an existing flowctl database",
            )
        return StoreError(f"database {self.path}: {text}")

    # -- transactions --------------------------------------------------------

    def _begin(self) -> None:
        conn = self._conn
        _retry_locked(
            lambda: conn.execute("BEGIN IMMEDIATE"),
            path=self.path,
            doing="starting a write",
            deadline_s=self._lock_deadline_s,
        )

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        conn = self._conn
        if conn.in_transaction:
            raise StoreError(
                "a transaction is already open on this store; transactions do not nest"
            )
        try:
            self._begin()
            # the triggers are looked at again only when the schema changed since
            # they were last found intact (any change to a trigger changes it)
            version = conn.execute("PRAGMA schema_version").fetchone()[0]
            unprotected = [] if version == self._intact_at else trigger_problems(conn)
            if not unprotected:
                self._intact_at = version
        except sqlite3.Error as exc:
            self._rollback()
            raise self._store_error(exc) from None
        if unprotected:
            self._rollback()
            raise StoreError(
                f"database {self.path}: {'; '.join(unprotected)}: the journal is not protected "
                "against changes, so flowctl writes nothing to it",
                hint="restore the triggers with `flowctl db repair` (it is journalled), then "
                     "check what happened meanwhile with `flowctl journal verify`",
            )
        tx = SqliteTransaction(conn, self.path)
        try:
            yield tx
        except BaseException as exc:
            tx.closed = True
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise self._store_error(exc) from None
            raise
        tx.closed = True
        try:
            conn.execute("COMMIT")
            self._committed = True
        except sqlite3.IntegrityError as exc:
            self._rollback()
            raise StoreError(
                f"database {self.path}: nothing was written: an instance refers to a definition "
                f"or a parent instance that is not stored ({exc})"
            ) from None
        except sqlite3.Error as exc:
            self._rollback()
            raise self._store_error(exc) from None

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. after an I/O error)

    # -- reads ---------------------------------------------------------------

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None

    def _stream(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        cursor = self._query(sql, params)
        try:
            yield from _fetch_stream(cursor)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None
        finally:
            cursor.close()

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        row = self._query(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE id = ?", (instance_id,)
        ).fetchone()
        return None if row is None else _row_to_instance(row)

    def get_definition(self, digest: str) -> Definition | None:
        row = self._query(
            "SELECT digest, process_id, source, stored_at FROM definitions WHERE digest = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        return Definition(digest=row[0], process_id=row[1], source=row[2], stored_at=row[3])

    def list_instances(self, flt: InstanceFilter) -> Iterator[InstanceRow]:
        """Newest first by ``started_at`` (then id); ``oldest_first`` reverses it.

        A filter with an ``order_by`` attribute ("started_at" or "updated_at")
        orders by that column instead. ``principals`` matches instances with any
        of them among their current assignees; ``started_since`` is inclusive.
        """
        sql, params = _instance_query(flt)
        for row in self._stream(sql, params):
            yield _row_to_instance(row)

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of one of the store's tables (``flowctl db copy``), streamed."""
        from flowctl.store.copy import TABLES  # only when copying

        columns, order = TABLES[table]
        return self._stream(f"SELECT {columns} FROM {table} ORDER BY {order}", [])

    def definition_digests(self) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT process_id, digest FROM definitions ORDER BY stored_at, digest", ()
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def search_instances(self, text: str, flt: InstanceFilter) -> Iterator[InstanceRow]:
        sql, params = _search_query(text, flt)
        for row in self._stream(sql, params):
            yield _row_to_instance(row)

    def journal(self, flt: JournalFilter) -> Iterator[JournalEntry]:
        """Oldest first (by seq), streamed; ``since`` is inclusive, ``until`` exclusive."""
        sql, params = _journal_query(flt)
        for row in self._stream(sql, params):
            yield _row_to_entry(row)

    def report(
        self, flt: ReportFilter, working_seconds: analytics.WorkingSeconds | None = None
    ) -> ReportData:
        """Process analytics (see :mod:`flowctl.store.analytics`): the visits and
        instances go into temporary tables of this connection, read in one
        snapshot, and only the aggregates come back. ``working_seconds`` is
        registered as the SQL function that counts a visit's working time."""
        conn = self._conn
        d = analytics.SQLITE
        try:
            if working_seconds is not None and d.working:
                conn.create_function(d.working, 4, working_seconds, deterministic=True)
            conn.execute("BEGIN")
            try:
                return self._report(flt, d, working=working_seconds is not None)
            finally:
                conn.execute("ROLLBACK")
                for name in analytics.TEMPORARY:
                    kind = "VIEW" if name in ("report_visits", "report_open") else "TABLE"
                    conn.execute(f"DROP {kind} IF EXISTS temp.{name}")
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None

    def _report(self, flt: ReportFilter, d: analytics.Dialect, *, working: bool) -> ReportData:
        conn = self._conn
        parts = set(flt.parts)

        def rows(query: analytics.Query | str, part: str) -> list[tuple[Any, ...]]:
            if part not in parts:
                return []
            sql, params = (query, ()) if isinstance(query, str) else query
            return conn.execute(sql, params).fetchall()

        if parts & {"stages", "results", "rounds", "wip", "breakdown"}:
            conn.execute(*analytics.visits_table(d, flt, working=working))
            for view in analytics.VIEWS:
                conn.execute(view)
        if parts & {"processes", "histogram"}:
            conn.execute(*analytics.instances_table(d, flt))
            conn.execute(*analytics.cycles_table(d, flt))
        n = flt.histogram_buckets
        stages = tuple(analytics.StageStat(*r)
                       for r in rows(analytics.stage_stats(d, flt), "stages"))
        # by stage, the breakdown's figures are the stage statistics' own
        breakdown = analytics.stage_breakdown(stages) \
            if flt.by == "stage" and "stages" in parts and "breakdown" in parts \
            else tuple(analytics.BreakdownStat(*r)
                       for r in rows(analytics.breakdown_stats(d, flt), "breakdown"))
        return analytics.ReportData(
            stages=stages,
            results=tuple(analytics.ResultStat(*r)
                          for r in rows(analytics.result_stats(), "results")),
            rounds=tuple(analytics.RoundsStat(*r)
                         for r in rows(analytics.rounds_stats(), "rounds")),
            processes=tuple(analytics.ProcessStat(*r)
                            for r in rows(analytics.process_stats(d, flt), "processes")),
            outcomes=tuple(analytics.OutcomeStat(*r)
                           for r in rows(analytics.outcome_stats(d, flt), "processes")),
            wip=tuple(
                analytics.WipStat(r[0], r[1], r[2], (r[3], r[4], r[5], r[6]), r[7], r[8])
                for r in rows(analytics.wip_stats(d), "wip")
            ),
            breakdown=breakdown,
            edges=tuple(analytics.EdgeCount(*r)
                        for r in rows(analytics.edge_counts(d, flt), "edges")),
            histogram=tuple(
                analytics.HistogramBin(r[0], r[1] * r[2] / n, r[1] * (r[2] + 1) / n, r[3])
                for r in rows(analytics.histogram(d, n), "histogram")
            ),
            days=tuple(analytics.DayCount(*r) for r in rows(analytics.day_counts(), "histogram")),
            heat=tuple(analytics.HeatStat(*r) for r in rows(analytics.heat_stats(d, flt), "heat")),
        )

    def verify_journal(
        self, checkpoints: Sequence[tuple[int, Checkpoint]] = (), key: bytes | None = None
    ) -> VerifyReport:
        """Recompute the hash chain over the whole journal, streaming; check the
        append-only triggers, each instance against its journal, and the
        journal against ``checkpoints`` (see :func:`flowctl.store.chain.new_checker`).

        A tampered row never stops it: a value of the wrong type is reported,
        and text that is not UTF-8 is read again with escapes and reported."""
        conn = self._conn
        try:
            return self._verify(checkpoints, key)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise self._store_error(exc) from None
        conn.text_factory = _tolerant_text
        try:
            return self._verify(checkpoints, key, careful=True)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None
        finally:
            conn.text_factory = str

    def _verify(
        self, checkpoints: Sequence[tuple[int, Checkpoint]], key: bytes | None,
        *, careful: bool = False,
    ) -> VerifyReport:
        conn = self._conn
        checker = new_checker(checkpoints, key)
        checker.careful = careful
        tables = {str(r[0]) for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table'")}
        for table in ("journal", "journal_tail", "instances"):
            if table not in tables:
                checker.problem(f"the {table} table is missing (dropped outside flowctl)")
        for text in trigger_problems(conn):
            checker.problem(f"{text}: the journal is not protected against changes "
                            "(restore it with `flowctl db repair`)")
        tail = None
        if "journal_tail" in tables:
            for row in conn.execute("SELECT id, seq, hash FROM journal_tail ORDER BY id"):
                if row[0] == 1 and type(row[1]) is int and type(row[2]) is str:
                    tail = Tail(seq=row[1], hash=row[2])
                else:
                    checker.problem(
                        "the record of the journal's last entry holds "
                        + ", ".join(describe_value(v) for v in row) + " (changed outside flowctl)")
        if "journal" in tables:
            cursor = conn.execute(f"SELECT {_JOURNAL_COLUMNS} FROM journal ORDER BY seq")
            try:
                for row in _fetch_stream(cursor):
                    checker.check(StoredEntry(*row))
            finally:
                cursor.close()
        if "instances" in tables:
            checker.check_instances(
                conn.execute("SELECT id, version, status, stage FROM instances"))
        return checker.finish(tail)

    def repair_journal(self, *, actor: str, at: str) -> RepairReport:
        """Put back the journal's append-only triggers that are missing or changed
        (and drop any other trigger on the journal), then journal the repair (an
        entry of the store itself, kind ``store_repaired``), in one transaction.
        Nothing is written when they are in place."""
        conn = self._conn
        try:
            conn.execute("PRAGMA foreign_keys = OFF")  # the entry is the store's, no instance's
            self._begin()
            try:
                problems = trigger_problems(conn)
                if not problems:
                    conn.execute("ROLLBACK")
                    return RepairReport(problems=())
                entry = _restore_triggers(conn, problems, actor=actor, at=at)
                conn.execute("COMMIT")
                self._committed = True
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None
        finally:
            conn.execute("PRAGMA foreign_keys = ON")
        return RepairReport(problems=tuple(entry.data["found"]), entry=entry)

    def attachments(self, instance_id: str) -> list[AttachmentRow]:
        rows = self._query(
            "SELECT instance_id, name, version, sha256, size, added_by, added_at"
            " FROM attachments WHERE instance_id = ? ORDER BY id", (instance_id,),
        ).fetchall()
        return [AttachmentRow(*row) for row in rows]

    def attachment_content(self, sha256: str) -> bytes | None:
        row = self._query(
            "SELECT content FROM attachment_blobs WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def verify_attachments(self) -> tuple[int, tuple[str, ...]]:
        """Each attachment's bytes re-hashed, and compared with the journal's
        ``attached`` entry (streamed: one file's bytes in memory at a time).
        A store from before attachments (opened read-only, so not upgraded) has none."""
        if self._query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = "
                       "'attachments'", ()).fetchone() is None:
            return 0, ()
        recorded: dict[tuple[str, str, int], tuple[str, int]] = {}
        for instance_id, data in self._stream(
            "SELECT instance_id, data FROM journal WHERE kind = 'attached' ORDER BY seq", []
        ):
            what = recorded_attachment(data)
            if what is not None:
                recorded[(str(instance_id), what[0], what[1])] = (what[2], what[3])
        cursor = self._query(
            "SELECT a.instance_id, a.name, a.version, a.sha256, a.size, b.content"
            " FROM attachments a LEFT JOIN attachment_blobs b ON b.sha256 = a.sha256"
            " ORDER BY a.id", (),
        )
        try:  # one row at a time: a row holds up to a whole file
            count, problems = check_attachments(_fetch_stream(cursor, 1), recorded)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None
        finally:
            cursor.close()
        return count, tuple(problems)

    def due_timers(self, now: str, *, limit: int | None = None) -> list[TimerRow]:
        """Pending timers due at or before ``now``, earliest first (the partial index)."""
        sql = (
            f"SELECT {_TIMER_COLUMNS} FROM timers WHERE status = 'pending' AND due_at <= ? "
            "ORDER BY due_at, instance_id, key"
        )
        params: list[Any] = [now]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        return [_row_to_timer(r) for r in self._query(sql, params).fetchall()]

    def notifications(
        self, user: str | None, *, unread_only: bool = True, limit: int | None = None
    ) -> list[NotificationRow]:
        where: list[str] = []
        params: list[Any] = []
        if user is not None:
            where.append("user = ?")
            params.append(user)
        if unread_only:
            where.append("read_at IS NULL")
        sql = f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        return [_row_to_notification(r) for r in self._query(sql, params).fetchall()]

    def undelivered_count(self) -> int:
        row = self._query(
            "SELECT count(*) FROM notifications WHERE delivered_at IS NULL", ()
        ).fetchone()
        return int(row[0])

    def settings(self) -> dict[str, Any]:
        """This connection's journal_mode, synchronous, busy_timeout, foreign_keys,
        schema version (for diagnostics and tests)."""
        names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "user_version")
        return {name: self._query(f"PRAGMA {name}", ()).fetchone()[0] for name in names}

    def check_integrity(self) -> tuple[str, ...]:
        """SQLite's ``PRAGMA integrity_check``: ``("ok",)`` when the file is sound."""
        rows = self._query("PRAGMA integrity_check", ()).fetchall()
        return tuple(str(row[0]) for row in rows)

    def login(self) -> str | None:
        """None: a file has no logins (the operating-system login counts)."""
        return None

    def close(self) -> None:
        self._conn.close()
        if self._created and not self._committed:
            _remove(self._created)
        self._created = []
        if self._temp is not None:
            import shutil

            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tolerant_text(raw: bytes) -> str:
    """A stored text as Python text; one that is not UTF-8 as :class:`BadText`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BadText(raw.decode("utf-8", "backslashreplace"))


def _normal_sql(sql: object) -> str:
    return " ".join(str(sql).split())


def trigger_problems(conn: sqlite3.Connection) -> list[str]:
    """What is wrong with the journal's append-only triggers: missing, changed,
    or another trigger on the journal tables; ``[]`` when they are as created."""
    marks = ", ".join("?" * len(schema.JOURNAL_TABLES))
    found = {
        str(name): sql for name, sql in conn.execute(
            f"SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN ({marks})",
            schema.JOURNAL_TABLES,
        )
    }
    indexed = conn.execute(  # a store older than the search index (read, not upgraded)
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'instance_search'"
    ).fetchone() is not None
    expected = schema.JOURNAL_ALL_TRIGGERS if indexed else schema.JOURNAL_TRIGGERS
    out: list[str] = []
    for name, sql in expected.items():
        have = found.pop(name, None)
        what = "append-only" if name in schema.JOURNAL_TRIGGERS else "search index's"
        if have is None:
            out.append(f"the {what} trigger {name} is missing")
        elif _normal_sql(have) != _normal_sql(sql):
            out.append(f"the {what} trigger {name} was changed")
    out += [f"an unexpected trigger {name} is on the journal" for name in sorted(found)]
    return out


def _restore_triggers(
    conn: sqlite3.Connection, problems: list[str], *, actor: str, at: str
) -> JournalEntry:
    marks = ", ".join("?" * len(schema.JOURNAL_TABLES))
    for (name,) in conn.execute(
        f"SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN ({marks})",
        schema.JOURNAL_TABLES,
    ).fetchall():
        quoted = str(name).replace('"', '""')
        conn.execute(f'DROP TRIGGER "{quoted}"')
    if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = "
                    "'journal_tail'").fetchone() is None:
        problems = [*problems, "the journal_tail table is missing"]
        conn.execute(schema.JOURNAL_TAIL_TABLE)
    for sql in schema.JOURNAL_ALL_TRIGGERS.values():
        conn.execute(sql)
    last = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    tail = conn.execute("SELECT seq, hash FROM journal_tail WHERE id = 1").fetchone()
    seq, prev = (0, "") if last is None else (int(last[0]), str(last[1]))
    if tail is not None and int(tail[0]) > seq:  # entries missing at the end: verify says so
        seq, prev = int(tail[0]), str(tail[1])
    seq += 1
    data = {"triggers_restored": list(schema.JOURNAL_ALL_TRIGGERS), "found": problems}
    data_text = canonical_json(data)
    digest = entry_hash_text(seq, STORE_ENTRY_ID, at, actor, "store_repaired", 0, None, None,
                             data_text, prev)
    conn.execute(
        f"INSERT INTO journal ({_JOURNAL_COLUMNS}, process_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, STORE_ENTRY_ID, at, actor, "store_repaired", 0, None, None, data_text, prev,
         digest, ""),
    )
    conn.execute(
        "INSERT INTO journal_tail (id, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )
    return JournalEntry(instance_id=STORE_ENTRY_ID, at=at, actor=actor, kind="store_repaired",
                        version=0, data=data, seq=seq, prev_hash=prev, hash=digest)


def _connect_readonly(uri: str) -> tuple[sqlite3.Connection, int, bool]:
    """A read-only connection, the schema version and whether it has tables."""
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        return conn, schema.read_version(conn), schema.has_tables(conn)
    except BaseException:
        conn.close()
        raise


def _read_a_copy(
    name: str, first: sqlite3.Error
) -> tuple[str, sqlite3.Connection, int, bool]:
    """Copy the database and its -wal into a private folder and open the copy
    read-only there (SQLite makes its -shm beside the copy, not the original)."""
    import shutil
    import tempfile
    from urllib.parse import quote

    temp = tempfile.mkdtemp(prefix="flowctl-read-")
    copy = os.path.join(temp, "copy.db")
    try:
        shutil.copyfile(name, copy)
        shutil.copyfile(name + "-wal", copy + "-wal")
        conn, version, tables = _connect_readonly(f"file:{quote(copy)}?mode=ro")
    except (OSError, sqlite3.Error) as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise StoreError(
            f"cannot open database {name} to read it: {first}; nor a copy of it: {exc}",
            hint=f"{name}-wal holds changes not yet in {name}: copy the database with its "
                 "-wal file into a folder you can write, or open the store with flowctl once "
                 "where it is written (that folds the -wal in) before copying it",
        ) from None
    return temp, conn, version, tables


def _stamp(path: str) -> tuple[int, int, int]:
    """The file's modification time and size, and the size of its -wal (0: none)."""
    info = os.stat(path)
    try:
        wal = os.stat(path + "-wal").st_size
    except OSError:
        wal = 0
    return info.st_mtime_ns, info.st_size, wal


def _check_header(path: str) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read database {path}: {exc.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a flowctl database: it is not a SQLite file",
            hint="point flowctl at a new file or at an existing flowctl database",
        )


def _check_file(path: str) -> list[str]:
    """Refuse, with a clear message, what SQLite would report obscurely; make the
    missing folders. Returns what will be new: those folders, outermost first,
    then the file itself when it does not exist yet.

    (``os.path``, not ``pathlib``: pathlib costs every command ~8 ms of imports.)
    """
    if os.path.isdir(path):
        raise StoreError(f"{path} is a directory, not a database file")
    parent = os.path.dirname(path)
    made = [folder for folder in reversed(list(_parents(path))) if not os.path.exists(folder)]
    try:
        if parent:
            os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        for folder in _parents(path):
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise StoreError(
                    f"cannot create database {path}: {folder} is a file, not a folder"
                ) from None
        raise StoreError(f"cannot create the folder for database {path}: {exc.strerror}") from None
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return [*made, path]
    except OSError as exc:
        raise StoreError(f"cannot read database {path}: {exc.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(
            f"{path} is not a flowctl database: it is not a SQLite file",
            hint="point flowctl at a new file or at an existing flowctl database",
        )
    return made


def _remove(created: list[str]) -> None:
    """Remove what opening a new store created: the file (with SQLite's -wal and
    -shm beside it), then the folders made for it, innermost first, if empty."""
    for item in reversed(created):
        try:
            if os.path.isdir(item):
                os.rmdir(item)
            else:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    if os.path.exists(item + suffix):
                        os.unlink(item + suffix)
        except OSError:
            pass  # not empty, or already gone: leave it


def _parents(path: str) -> Iterator[str]:
    """The folders above ``path``, nearest first."""
    folder = os.path.dirname(path)
    while folder:
        yield folder
        above = os.path.dirname(folder)
        if above == folder:
            return
        folder = above

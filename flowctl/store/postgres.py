"""The PostgreSQL store: the same contract as the SQLite one, for a team's server.

Usage is the SQLite store's (see :mod:`flowctl.store.sqlite`)::

    store = PostgresStore.open("postgresql://flowctl.example.com/approvals")
    with store.transaction() as tx:          # BEGIN ... COMMIT
        row = tx.get_instance(instance_id)   # SELECT ... FOR UPDATE: the instance's row lock
        ...
        tx.update_instance(new_row, expected_version=row.version)
        tx.append_journal(entries)           # the journal's tail row, locked to commit

A step locks its instance row (``SELECT ... FOR UPDATE``); the journal is one
hash chain, so appending locks its one tail row until the commit (the chain
is extended by one writer at a time, in commit order). Tick claims a due
timer with ``FOR UPDATE SKIP LOCKED`` over the timer and its instance, so
ticks on several machines fire each timer once and never wait for each
other. A lock held past the deadline, a deadlock, or a concurrent writer that
won surface as ``ConflictError`` (exit 5): nothing was written.

Connections come from a ``postgresql://`` URL; the password, if any, from
libpq's own sources (``~/.pgpass``, ``PGPASSWORD``, a service file) or the
URL, and it is never shown: every message names the server by
:func:`display_url`. psycopg is imported only here, when a command opens a
PostgreSQL store (~150 ms of imports a SQLite workspace never pays).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from flowctl.store import analytics
from flowctl.store import pg_schema as schema
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
    StoredEntry,
    Tail,
    canonical_json,
    entry_hash_text,
    new_checker,
)
from flowctl.store.rows import (
    INSTANCE_COLUMNS,
    JOURNAL_COLUMNS,
    filled,
    instance_params,
    loads,
    row_to_entry,
    row_to_instance,
    row_to_notification,
    same_identity,
    to_json,
)
from flowctl.store.urls import display_url, server_of

if TYPE_CHECKING:
    import psycopg

LOCK_DEADLINE_S = 30.0
CONNECT_TIMEOUT_S = 10
FETCH_SIZE = 500
# How often a connection looks at the journal's triggers again before a write
# (the catalog query costs ~0.7 ms; only the schema's owner can drop them).
TRIGGER_CHECK_S = 5.0
_ORDER_COLUMNS = ("started_at", "updated_at")
_TIMER_COLUMNS = "instance_id, key, kind, stage, due_at, status, fired_at"
_NOTIFICATION_COLUMNS = (
    'id, instance_id, "user", kind, stage, message, created_at, delivered_at, read_at, '
    "attempts, last_error, next_attempt_at, subject, channels_done"
)
# SQLSTATEs that mean "another writer got there first": retrying may succeed.
_CONFLICT_STATES = {
    "40001": "a concurrent transaction changed the same rows",
    "40P01": "a deadlock with another writer",
    "55P03": "another writer held the lock past the deadline",
}


def _conflict_or_error(exc: Exception, where: str) -> StoreError | ConflictError:
    state = getattr(exc, "sqlstate", None)
    reason = _CONFLICT_STATES.get(state or "")
    if reason is not None:
        return ConflictError(
            f"database {where}: {reason}; nothing was written",
            hint="try again",
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if state == "42501":
        return StoreError(
            f"database {where}: permission denied: {text}",
            hint="ask the store's admin to run `flowctl db grant YOUR_LOGIN` (docs/team.md)",
        )
    if state is None or state.startswith("08"):
        return StoreError(
            f"cannot reach the PostgreSQL server of {where}: {text}; nothing was written",
            hint="check that the server is running and reachable from here (docs/team.md)",
        )
    return StoreError(f"database {where}: {text}")


def _psycopg() -> Any:
    import psycopg  # the driver: only for a PostgreSQL store (see the module doc)

    return psycopg


def _number_loader() -> Any:
    """NUMERIC (what SUM of integers and AVG return) as SQLite gives it: an int
    when the text has no decimal point, else a float."""
    from psycopg.types.numeric import FloatLoader

    class NumberLoader(FloatLoader):
        def load(self, data: Any) -> Any:
            text = bytes(data)
            return int(text) if b"." not in text and text.lstrip(b"-").isdigit() \
                else float(text)

    return NumberLoader


def _stream_pages(conn: psycopg.Connection[Any], sql: str, params: list[Any],
                  where: str) -> Iterator[tuple[Any, ...]]:
    """``sql`` (ordered by seq, the first column; it ends with ``seq > %s ORDER BY
    seq LIMIT %s``) read page by page: the connection stays free between pages."""
    last = 0
    while True:
        try:
            rows = conn.execute(sql, [*params, last, FETCH_SIZE]).fetchall()
        except Exception as exc:
            raise _conflict_or_error(exc, where) from None
        yield from rows
        if len(rows) < FETCH_SIZE:
            return
        last = int(rows[-1][0])


# Voids an instance's pending timers that are not among the given keys, in the
# same statement (one round trip) as what follows it: (instance id, keys).
_VOID_TIMERS = (
    "WITH voided AS (UPDATE flowctl.timers SET status = 'void' WHERE instance_id = %s "
    "AND status = 'pending' AND key <> ALL(%s)) "
)


class PostgresTransaction:
    """The write side, valid only inside ``PostgresStore.transaction()``."""

    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self._where = where
        self._process_of: dict[str, str] = {}
        self._seen: dict[str, InstanceRow] = {}
        self.closed = False

    def _live(self) -> psycopg.Connection[Any]:
        if self.closed:
            raise StoreError("this transaction has ended; open a new one with store.transaction()")
        return self._conn

    def _one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._live().execute(sql, params).fetchone()
        return row

    # -- reads ---------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        row = self._one(
            f"SELECT {INSTANCE_COLUMNS} FROM flowctl.instances WHERE id = %s FOR UPDATE",
            (instance_id,),
        )
        if row is None:
            return None
        found = row_to_instance(row)
        self._process_of[found.id] = found.process_id
        self._seen[found.id] = found
        return found

    def get_timer(self, instance_id: str, key: str) -> TimerRow | None:
        """The timer, locked with its instance; None when another transaction
        holds either (SKIP LOCKED: another tick is firing it, or a step is
        moving its instance on; the next tick looks again)."""
        row = self._one(
            "SELECT t.instance_id, t.key, t.kind, t.stage, t.due_at, t.status, t.fired_at "
            "FROM flowctl.timers t JOIN flowctl.instances i ON i.id = t.instance_id "
            "WHERE t.instance_id = %s AND t.key = %s FOR UPDATE SKIP LOCKED",
            (instance_id, key),
        )
        return None if row is None else TimerRow(*row)

    # -- writes --------------------------------------------------------------

    def insert_instance(self, row: InstanceRow) -> None:
        cursor = self._live().execute(
            f"INSERT INTO flowctl.instances ({INSTANCE_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            instance_params(row),
        )
        if cursor.rowcount == 0:
            raise ConflictError(f"instance {row.id} already exists; nothing was written")
        self._set_principals(row, ())
        self._set_timers(row)
        self._set_search(row, None)
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
        params = instance_params(row)
        if before is not None and same_identity(before, row):
            cursor = conn.execute(
                _VOID_TIMERS + "UPDATE flowctl.instances SET status = %s, stage = %s, "
                "updated_at = %s, version = %s, due_at = %s, assignees = %s, state = %s "
                "WHERE id = %s AND version = %s",
                (row.id, [t.key for t in row.timers], params[3], params[4], params[7],
                 params[8], params[9], params[10], params[12], row.id, expected_version),
            )
        else:
            cursor = conn.execute(
                _VOID_TIMERS + "UPDATE flowctl.instances SET process_id = %s, "
                "definition_digest = %s, status = %s, stage = %s, initiator = %s, "
                "started_at = %s, updated_at = %s, version = %s, due_at = %s, assignees = %s, "
                "parent_id = %s, state = %s WHERE id = %s AND version = %s",
                (row.id, [t.key for t in row.timers], *params[1:], row.id, expected_version),
            )
        if cursor.rowcount == 0:
            found = self._one("SELECT version FROM flowctl.instances WHERE id = %s", (row.id,))
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
        self._set_timers(row, voided=True)
        self._set_search(row, before)
        self._process_of[row.id] = row.process_id
        self._seen[row.id] = row

    def append_journal(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        if not entries:
            return []
        conn = self._live()
        # The tail row is the chain's lock: held until this transaction ends.
        tail = self._one("SELECT seq, hash FROM flowctl.journal_tail WHERE id = 1 FOR UPDATE",
                         ())
        seq, prev_hash = (0, "") if tail is None else (int(tail[0]), str(tail[1]))
        written: list[JournalEntry] = []
        params: list[tuple[Any, ...]] = []
        for entry in entries:
            seq += 1
            process_id = self._process_id(entry.instance_id)
            data_text = to_json(entry.data, f"journal data for instance {entry.instance_id}")
            digest = entry_hash_text(seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                                     entry.version, entry.stage, entry.result, data_text,
                                     prev_hash)
            params.append((seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                           entry.version, entry.stage, entry.result, data_text, prev_hash,
                           digest, process_id))
            written.append(filled(entry, seq, prev_hash, digest))
            prev_hash = digest
        # the entries and the tail in one statement (one round trip to the server)
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(params))
        conn.execute(
            f"WITH appended AS (INSERT INTO flowctl.journal ({JOURNAL_COLUMNS}, process_id) "
            f"VALUES {values} RETURNING seq) "
            "INSERT INTO flowctl.journal_tail (id, seq, hash) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            [value for row in params for value in row] + [seq, prev_hash],
        )
        comments = [(e.instance_id, e.data["comment"]) for e in entries
                    if isinstance(e.data, dict) and isinstance(e.data.get("comment"), str)]
        for instance_id, comment in comments:
            conn.execute(
                "UPDATE flowctl.instance_search SET comments = comments || %s "
                "WHERE instance_id = %s", ("\n" + searchable(comment), instance_id))
        return written

    def put_definition(self, definition: Definition) -> None:
        self._live().execute(
            "INSERT INTO flowctl.definitions (digest, process_id, source, stored_at, names) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO NOTHING",
            (definition.digest, definition.process_id, definition.source, definition.stored_at,
             definition.names),
        )

    def new_instance_id(self, process_id: str) -> str:
        while True:
            row = self._one(
                "INSERT INTO flowctl.id_counters (process_id, last) VALUES (%s, 1) "
                "ON CONFLICT (process_id) DO UPDATE SET last = flowctl.id_counters.last + 1 "
                "RETURNING last",
                (process_id,),
            )
            assert row is not None  # INSERT ... RETURNING returns its row
            candidate = f"{process_id}-{int(row[0])}"
            if self._one("SELECT 1 FROM flowctl.instances WHERE id = %s", (candidate,)) is None:
                return candidate

    def mark_timer(self, instance_id: str, key: str, *, status: str, at: str) -> None:
        self._live().execute(
            "UPDATE flowctl.timers SET status = %s, fired_at = %s "
            "WHERE instance_id = %s AND key = %s",
            (status, at, instance_id, key),
        )

    def add_notifications(self, rows: list[NotificationRow]) -> None:
        if not rows:
            return
        with self._live().cursor() as cursor:
            cursor.executemany(
                'INSERT INTO flowctl.notifications (instance_id, "user", kind, stage, message, '
                "created_at, next_attempt_at, subject) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(n.instance_id, n.user, n.kind, n.stage, n.message, n.created_at,
                  n.next_attempt_at or n.created_at, n.subject) for n in rows],
            )

    def add_attachment(self, row: AttachmentRow, content: bytes) -> None:
        conn = self._live()
        conn.execute(
            "INSERT INTO flowctl.attachment_blobs (sha256, size, content) VALUES (%s, %s, %s) "
            "ON CONFLICT (sha256) DO NOTHING",
            (row.sha256, row.size, content),
        )
        exists = self._one(
            "SELECT 1 FROM flowctl.attachments WHERE instance_id = %s AND name = %s "
            "AND version = %s", (row.instance_id, row.name, row.version))
        if exists is not None:
            raise StoreError("attachments are append-only: an attachment cannot be replaced")
        conn.execute(
            "INSERT INTO flowctl.attachments (instance_id, name, version, sha256, size, "
            "added_by, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (row.instance_id, row.name, row.version, row.sha256, row.size, row.added_by,
             row.added_at),
        )

    def claim_notifications(
        self, *, now: str, lease_until: str, max_attempts: int, limit: int
    ) -> list[NotificationRow]:
        conn = self._live()
        rows = conn.execute(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM flowctl.notifications "
            "WHERE delivered_at IS NULL AND next_attempt_at <= %s AND attempts < %s "
            "AND (claimed_until IS NULL OR claimed_until <= %s) ORDER BY next_attempt_at, id "
            "LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, max_attempts, now, limit),
        ).fetchall()
        if rows:
            conn.execute(
                "UPDATE flowctl.notifications SET claimed_until = %s WHERE id = ANY(%s)",
                (lease_until, [r[0] for r in rows]),
            )
        return [row_to_notification(r) for r in rows]

    def finish_notification(
        self, notification_id: int, *, delivered_at: str | None, error: str | None,
        next_attempt_at: str | None, channels_done: tuple[str, ...] = (),
    ) -> NotificationRow:
        conn = self._live()
        done = to_json(list(channels_done), "channels") if channels_done else None
        if delivered_at is not None:
            conn.execute(
                "UPDATE flowctl.notifications SET delivered_at = %s, attempts = attempts + 1, "
                "last_error = NULL, claimed_until = NULL, channels_done = %s WHERE id = %s",
                (delivered_at, done, notification_id),
            )
        else:
            conn.execute(
                "UPDATE flowctl.notifications SET attempts = attempts + 1, last_error = %s, "
                "next_attempt_at = %s, claimed_until = NULL, channels_done = %s WHERE id = %s",
                (error, next_attempt_at, done, notification_id),
            )
        row = self._one(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM flowctl.notifications WHERE id = %s",
            (notification_id,),
        )
        assert row is not None  # updated just above
        return row_to_notification(row)

    def mark_read(self, user: str, ids: tuple[int, ...], *, at: str) -> int:
        sql = ('UPDATE flowctl.notifications SET read_at = %s WHERE "user" = %s '
               "AND read_at IS NULL")
        params: list[Any] = [at, user]
        if ids:
            sql += " AND id = ANY(%s)"
            params.append(list(ids))
        return int(self._live().execute(sql, params).rowcount)

    def open_load(self, users: Sequence[str], *,
                  excluding: str | None = None) -> dict[str, int]:
        """One query: the principals' index ranges of ``users`` (as SQLite's)."""
        if not users:
            return {}
        rows = self._live().execute(
            "SELECT substr(principal, 6), count(*) FROM flowctl.instance_principals"
            " WHERE principal = ANY(%s) AND instance_id IS DISTINCT FROM %s"
            " GROUP BY principal",
            ([f"user:{u}" for u in users], excluding),
        ).fetchall()
        return {str(user): int(n) for user, n in rows if n}

    def pick_turns(self) -> dict[str, str]:
        """The turns, locked until this transaction ends: concurrent steps that
        assign from a pool take their turns one after the other."""
        rows = self._live().execute(
            'SELECT pool, "user" FROM flowctl.pick_turns FOR UPDATE').fetchall()
        return {str(pool): str(user) for pool, user in rows}

    def set_pick_turn(self, pool: str, user: str, *, at: str) -> None:
        self._live().execute(
            'INSERT INTO flowctl.pick_turns (pool, "user", at) VALUES (%s, %s, %s)'
            ' ON CONFLICT (pool) DO UPDATE SET "user" = excluded."user", at = excluded.at',
            (pool, user, at),
        )

    # -- helpers -------------------------------------------------------------

    def _set_timers(self, row: InstanceRow, *, voided: bool = False) -> None:
        """Make the pending timers of the row's instance its ``timers`` (``voided``:
        the others were voided already, by :data:`_VOID_TIMERS`)."""
        conn = self._conn
        if not voided:
            conn.execute(_VOID_TIMERS + "SELECT 1", (row.id, [t.key for t in row.timers]))
        if not row.timers:
            return
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO flowctl.timers ({_TIMER_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, 'pending', NULL) "
                "ON CONFLICT (instance_id, key) DO UPDATE SET kind = excluded.kind, "
                "stage = excluded.stage, due_at = excluded.due_at, status = 'pending', "
                "fired_at = NULL WHERE flowctl.timers.status <> 'fired'",
                [(row.id, t.key, t.kind, t.stage, t.due_at) for t in row.timers],
            )

    def _set_search(self, row: InstanceRow, before: InstanceRow | None) -> None:
        """Keep the row's search text current (only when what it holds changed)."""
        if before is not None and before.stage == row.stage \
                and before.definition_digest == row.definition_digest \
                and before.state.get("record") == row.state.get("record") \
                and before.state.get("note") == row.state.get("note"):
            return
        names = self._one("SELECT names FROM flowctl.definitions WHERE digest = %s",
                          (row.definition_digest,))
        body = search_body(row, str(names[0]) if names else "{}")
        self._conn.execute(
            "INSERT INTO flowctl.instance_search (instance_id, body) VALUES (%s, %s) "
            "ON CONFLICT (instance_id) DO UPDATE SET body = excluded.body",
            (row.id, body))

    def _set_principals(self, row: InstanceRow, before: tuple[str, ...] | None) -> None:
        conn = self._conn
        now = set(row.assignees)
        if before is None:
            conn.execute("DELETE FROM flowctl.instance_principals WHERE instance_id = %s",
                         (row.id,))
            added = now
        else:
            gone = set(before) - now
            added = now - set(before)
            if gone:
                conn.execute(
                    "DELETE FROM flowctl.instance_principals WHERE instance_id = %s "
                    "AND principal = ANY(%s)", (row.id, sorted(gone)))
        if added:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO flowctl.instance_principals (principal, instance_id) "
                    "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    [(principal, row.id) for principal in sorted(added)],
                )

    def _process_id(self, instance_id: str) -> str:
        known = self._process_of.get(instance_id)
        if known is not None:
            return known
        row = self._one("SELECT process_id FROM flowctl.instances WHERE id = %s", (instance_id,))
        if row is None:
            raise StoreError(
                f"journal entry for instance {instance_id}, which does not exist: "
                "insert the instance before its journal entries"
            )
        self._process_of[instance_id] = str(row[0])
        return str(row[0])


def search_body(row: InstanceRow, names_text: str) -> str:
    """What an instance is found by, in lower case (as SQLite's index holds it:
    process id and name, stage id and name, record text values, the note)."""
    try:
        names = loads(names_text)
    except ValueError:
        names = {}
    if not isinstance(names, dict):
        names = {}
    stages = names.get("stages") if isinstance(names, dict) else None
    if not isinstance(stages, dict):
        stages = {}
    parts = [row.process_id, str(names.get("process") or ""), row.stage or "",
             str(stages.get(row.stage or "", "") or "")]
    record = row.state.get("record")
    if isinstance(record, dict):
        parts += [v for v in record.values() if isinstance(v, str)]
    note = row.state.get("note")
    if isinstance(note, str):
        parts.append(note)
    return searchable("\n".join(parts))


# Characters of scripts written without spaces between words (CJK ideographs,
# kana, hangul): stored and looked for one per word, so that a word of them
# is found inside a longer run as a phrase.
_UNSPACED = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")


def searchable(text: str) -> str:
    """Text as the search index holds it: lower case, each CJK character a word."""
    return _UNSPACED.sub(r" \1 ", text.lower())


def _tsquery(word: str) -> str | None:
    """One word of a search as a tsquery: its parts in a row (a phrase), the
    last one as a prefix; None when it has no letter or digit."""
    parts = re.findall(r"\w+", searchable(word))
    if not parts:
        return None
    quoted = ["'" + p.replace("\\", "\\\\").replace("'", "''") + "'" for p in parts]
    quoted[-1] += ":*"
    return "(" + " <-> ".join(quoted) + ")"


def _search_query(text: str, flt: InstanceFilter) -> tuple[str, list[Any]]:
    """Every word of ``text`` in the instance's search document (GIN-indexed
    tsvector; a word matches the words that begin with it), best ranked
    first (ts_rank), then the newest."""
    terms = [q for q in map(_tsquery, text.split()) if q is not None]
    where: list[str] = []
    params: list[Any] = []
    query = " & ".join(terms)
    if query:
        where.append("s.words @@ to_tsquery('simple', %s)")
        params.append(query)
    else:  # nothing to look for (punctuation only): nothing is found
        where.append("FALSE")
    statuses = tuple(dict.fromkeys(flt.status))
    if statuses:
        where.append("i.status = ANY(%s)")
        params.append(list(statuses))
    for column, value in (
        ("i.process_id = %s", flt.process_id),
        ("i.initiator = %s", flt.initiator),
        ("i.started_at >= %s", flt.started_since),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    columns = ", ".join(f"i.{c.strip()}" for c in INSTANCE_COLUMNS.split(","))
    sql = (
        f"SELECT {columns} FROM flowctl.instance_search AS s JOIN flowctl.instances AS i "
        f"ON i.id = s.instance_id WHERE {' AND '.join(where)} "
        "ORDER BY ts_rank(s.words, to_tsquery('simple', %s)) DESC, i.started_at DESC, "
        "i.id DESC"
    )
    params.append(query or "x")
    if flt.limit is not None:
        sql += " LIMIT %s"
        params.append(max(0, flt.limit))
    return sql, params


def _instance_query(flt: InstanceFilter) -> tuple[str, list[Any]]:
    statuses = tuple(dict.fromkeys(flt.status))
    if len(statuses) < 2 or flt.principals:
        return _instance_select(flt, statuses)
    # Several statuses: one range of the (status, order, id) index per status,
    # each in order and cut at the limit, merged (as on SQLite).
    parts: list[str] = []
    params: list[Any] = []
    for n, status in enumerate(statuses):
        sql, more = _instance_select(flt, (status,))
        parts.append(f"SELECT * FROM ({sql}) AS part{n}")
        params.extend(more)
    sql = " UNION ALL ".join(parts) + _order_limit(flt, params)
    return sql, params


def _order_limit(flt: InstanceFilter, params: list[Any]) -> str:
    order = flt.order_by or "started_at"
    if order not in _ORDER_COLUMNS:
        raise ValueError(f"cannot order instances by {order!r}; allowed: {_ORDER_COLUMNS}")
    direction = "ASC" if flt.oldest_first else "DESC"
    sql = f" ORDER BY {order} {direction}, id {direction}"
    if flt.limit is not None:
        sql += " LIMIT %s"
        params.append(max(0, flt.limit))
    return sql


def _instance_select(flt: InstanceFilter, statuses: tuple[str, ...]) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if len(statuses) == 1:
        where.append("status = %s")
        params.extend(statuses)
    elif statuses:
        where.append("status = ANY(%s)")
        params.append(list(statuses))
    for column, value in (
        ("process_id = %s", flt.process_id),
        ("initiator = %s", flt.initiator),
        ("started_at >= %s", flt.started_since),
        ("parent_id = %s", flt.parent_id),
        ("due_at < %s", flt.due_before),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    sql = f"SELECT {INSTANCE_COLUMNS} FROM flowctl.instances"
    if flt.principals:
        # The inbox: the principals' few rows first, then their instances.
        sql = (
            f"SELECT {INSTANCE_COLUMNS} FROM (SELECT DISTINCT instance_id FROM "
            "flowctl.instance_principals WHERE principal = ANY(%s)) AS mine "
            "JOIN flowctl.instances ON flowctl.instances.id = mine.instance_id"
        )
        params[:0] = [list(flt.principals)]
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
            where.append(f"{column} = %s")
            params.append(value)
    if flt.since is not None:
        where.append("at >= %s")
        params.append(flt.since)
    if flt.until is not None:
        where.append("at < %s")
        params.append(flt.until)
    where.append("seq > %s")
    sql = f"SELECT {JOURNAL_COLUMNS} FROM flowctl.journal WHERE " + " AND ".join(where)
    return sql + " ORDER BY seq LIMIT %s", params


class PostgresStore:
    """A flowctl store in the ``flowctl`` schema of a PostgreSQL database."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self._conn = conn
        self.url = url
        self.path = display_url(url)  # what messages show: never the password
        self._in_transaction = False
        self._protected_at = -TRIGGER_CHECK_S  # when the triggers were last seen in place
        self._login: str | None = None

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = True,
        migrate: bool = True,
        lock_deadline_s: float = LOCK_DEADLINE_S,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
        migrations: tuple[tuple[str, ...], ...] | None = None,
        allow_behind: bool = False,
    ) -> PostgresStore:
        """Connect and bring the schema up to date.

        ``create=False``: a database without flowctl's schema is refused
        (:class:`StoreMissing`). A store whose schema is behind is migrated
        (``migrate``; the role must own the schema, else the refusal says to
        run ``flowctl db migrate`` as its owner); one written by a newer
        flowctl is refused. An unreachable server is a :class:`StoreError`
        naming the host (exit 4). ``migrations`` is for tests; ``allow_behind``
        opens a store that is behind without migrating it (``db migrate`` then
        calls :meth:`migrate`).
        """
        psycopg = _psycopg()
        shown = display_url(url)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s,
                                   application_name="flowctl")
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreError(
                f"cannot reach the PostgreSQL server at {server_of(url)} ({shown}): {reason}; "
                "nothing was done",
                hint="check that the server is running and reachable from here, and your "
                     "login and password (~/.pgpass, PGPASSWORD, a service file); see "
                     "docs/team.md",
            ) from None
        conn.adapters.register_loader("numeric", _number_loader())
        store = cls(conn, url)
        try:
            milliseconds = int(lock_deadline_s * 1000)
            # the analytics' SQL names its tables without the schema
            conn.execute(f"SET lock_timeout = {milliseconds}; SET search_path = flowctl, public")
            store._prepare(schema.MIGRATIONS if migrations is None else migrations,
                           create=create, migrate=migrate, allow_behind=allow_behind)
        except psycopg.Error as exc:
            store.close()
            raise _conflict_or_error(exc, shown) from None
        except BaseException:
            store.close()
            raise
        return store

    def _version(self) -> int | None:
        """The schema version; None when the database has no flowctl schema."""
        row = self._conn.execute(
            "SELECT to_regclass('flowctl.schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return None
        found = self._conn.execute("SELECT version FROM flowctl.schema_version").fetchone()
        return 0 if found is None else int(found[0])

    def _prepare(self, migrations: tuple[tuple[str, ...], ...], *, create: bool,
                 migrate: bool, allow_behind: bool = False) -> None:
        version = self._version()
        known = len(migrations)
        if version is None and not create:
            raise StoreMissing(f"no flowctl store in {self.path} (the database has no "
                               "flowctl schema)")
        if version is not None and version > known:
            raise self._newer(version, known)
        if (version is None or version < known) and not allow_behind:
            if not migrate:
                raise StoreError(
                    f"database {self.path} has schema {version or 0}; this flowctl needs {known}",
                    hint="run `flowctl db migrate` as the schema's owner",
                )
            self.migrate(migrations)

    def migrate(self, migrations: tuple[tuple[str, ...], ...] | None = None) -> tuple[int, int]:
        """Apply the pending migrations in one transaction: (from, to) versions."""
        psycopg = _psycopg()
        steps = schema.MIGRATIONS if migrations is None else migrations
        conn = self._conn
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.LOCK_KEY,))
                version = self._version()  # another client may have migrated meanwhile
                start = 0 if version is None else version
                if start > len(steps):
                    raise self._newer(start, len(steps))
                if version is None:
                    taken = conn.execute(
                        "SELECT 1 FROM pg_namespace WHERE nspname = 'flowctl'").fetchone()
                    if taken is not None:
                        raise StoreError(
                            f"{self.path}: the database has a schema named flowctl that is not "
                            "a flowctl store; refusing to change it",
                            hint="point flowctl at another database",
                        )
                for statements in steps[start:]:
                    for statement in statements:
                        if statement == schema.BACKFILL_SEARCH:
                            backfill_search(conn)
                        else:
                            conn.execute(statement)  # ours, not input
                conn.execute("UPDATE flowctl.schema_version SET version = %s", (len(steps),))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(
                f"database {self.path} needs its schema created or upgraded to version "
                f"{len(steps)}, and your role may not: {str(exc).splitlines()[0]}",
                hint="ask the store's admin (the schema's owner) to run `flowctl db migrate`",
            ) from None
        return start, len(steps)

    def schema_version(self) -> int:
        return self._version() or 0

    def _newer(self, version: int, known: int) -> StoreError:
        return StoreError(
            f"database {self.path} was written by a newer flowctl (schema {version}; "
            f"this flowctl knows up to {known}); upgrade flowctl",
        )

    def login(self) -> str:
        """The database login this connection authenticated as (asked once)."""
        if self._login is None:
            row = self._conn.execute("SELECT session_user").fetchone()
            self._login = str(row[0]) if row else ""
        return self._login

    def changed_since_open(self) -> bool:
        """Always False: a server's reads see every committed write."""
        return False

    # -- transactions --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        psycopg = _psycopg()
        if self._in_transaction:
            raise StoreError(
                "a transaction is already open on this store; transactions do not nest"
            )
        conn = self._conn
        self._in_transaction = True
        tx = PostgresTransaction(conn, self.path)
        try:
            try:
                with conn.transaction():
                    unprotected = self._unprotected(conn)
                    if unprotected:
                        raise StoreError(
                            f"database {self.path}: {'; '.join(unprotected)}: the journal is not "
                            "protected against changes, so flowctl writes nothing to it",
                            hint="restore the triggers with `flowctl db repair` (it is "
                                 "journalled), then check what happened meanwhile with "
                                 "`flowctl journal verify`",
                        )
                    try:
                        yield tx
                    finally:
                        tx.closed = True
            except psycopg.errors.IntegrityError as exc:
                if getattr(exc, "sqlstate", "") == "23503":
                    raise StoreError(
                        f"database {self.path}: nothing was written: an instance refers to a "
                        "definition or a parent instance that is not stored "
                        f"({str(exc).splitlines()[0]})"
                    ) from None
                raise StoreError(f"database {self.path}: nothing was written: "
                                 f"{str(exc).splitlines()[0]}") from None
            except psycopg.Error as exc:
                raise _conflict_or_error(exc, self.path) from None
        finally:
            self._in_transaction = False

    def _unprotected(self, conn: psycopg.Connection[Any]) -> list[str]:
        """The trigger problems (see :func:`trigger_problems`), looked at on the
        connection's first write and again every ``TRIGGER_CHECK_S`` seconds."""
        now = time.monotonic()
        if now - self._protected_at < TRIGGER_CHECK_S:
            return []
        found = trigger_problems(conn)
        if not found:
            self._protected_at = now
        return found

    # -- reads ---------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
        except _psycopg().Error as exc:
            raise _conflict_or_error(exc, self.path) from None
        return rows

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        rows = self._rows(f"SELECT {INSTANCE_COLUMNS} FROM flowctl.instances WHERE id = %s",
                          (instance_id,))
        return row_to_instance(rows[0]) if rows else None

    def get_definition(self, digest: str) -> Definition | None:
        rows = self._rows(
            "SELECT digest, process_id, source, stored_at FROM flowctl.definitions "
            "WHERE digest = %s", (digest,))
        if not rows:
            return None
        row = rows[0]
        return Definition(digest=row[0], process_id=row[1], source=row[2], stored_at=row[3])

    def list_instances(self, flt: InstanceFilter) -> Iterator[InstanceRow]:
        """As :meth:`SqliteStore.list_instances` (the same orders and filters)."""
        sql, params = _instance_query(flt)
        for row in self._rows(sql, params):
            yield row_to_instance(row)

    def definition_digests(self) -> list[tuple[str, str]]:
        rows = self._rows(
            "SELECT process_id, digest FROM flowctl.definitions ORDER BY stored_at, digest", ())
        return [(str(r[0]), str(r[1])) for r in rows]

    def search_instances(self, text: str, flt: InstanceFilter) -> Iterator[InstanceRow]:
        """As :meth:`SqliteStore.search_instances`, over ``flowctl.instance_search``."""
        sql, params = _search_query(text, flt)
        for row in self._rows(sql, params):
            yield row_to_instance(row)

    def journal(self, flt: JournalFilter) -> Iterator[JournalEntry]:
        """Oldest first, in pages by seq (with ``by_instance``: by instance, then
        seq): never the whole journal in memory."""
        if flt.by_instance:
            yield from self._journal_by_instance(flt)
            return
        sql, params = _journal_query(flt)
        for row in _stream_pages(self._conn, sql, params, self.path):
            yield row_to_entry(row)

    def _journal_by_instance(self, flt: JournalFilter) -> Iterator[JournalEntry]:
        sql, params = _journal_query(replace(flt, by_instance=False))
        head, _, _ = sql.partition(" seq > %s")
        sql = head + " (instance_id, seq) > (%s, %s) ORDER BY instance_id, seq LIMIT %s"
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self._rows(sql, [*params, *after, FETCH_SIZE])
            for row in rows:
                yield row_to_entry(row)
            if len(rows) < FETCH_SIZE:
                return
            after = (str(rows[-1][1]), int(rows[-1][0]))

    def report(
        self, flt: ReportFilter, working_seconds: analytics.WorkingSeconds | None = None
    ) -> ReportData:
        """Process analytics (see :mod:`flowctl.store.analytics`), aggregated by
        the server in temporary tables of one transaction, rolled back after.
        ``working_seconds`` cannot be called from the server's SQL: it is called
        here over the streamed visits of the stages with business hours, and
        their working time goes back to the server, which aggregates it."""
        psycopg = _psycopg()
        conn = self._conn
        d = analytics.POSTGRES
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                return self._report(flt, d, working_seconds)
        except psycopg.Error as exc:
            raise _conflict_or_error(exc, self.path) from None

    def _report(self, flt: ReportFilter, d: analytics.Dialect,
                working_seconds: analytics.WorkingSeconds | None) -> ReportData:
        conn = self._conn
        if "heat" in flt.parts:  # a heat map: its lean query and the arrows, nothing else
            heat_rows = conn.execute(*analytics.heat_stats(d, flt)).fetchall()
            edge_rows = conn.execute(*analytics.edge_counts(d, flt)).fetchall() \
                if "edges" in flt.parts else []
            return analytics.ReportData(
                heat=tuple(analytics.HeatStat(*r) for r in heat_rows),
                edges=tuple(analytics.EdgeCount(*r) for r in edge_rows))
        conn.execute(*analytics.visits_table(d, flt))
        if working_seconds is not None:
            self._working_time(working_seconds)
        for view in analytics.VIEWS:
            conn.execute(view)
        conn.execute(*analytics.instances_table(d, flt))
        conn.execute(*analytics.cycles_table(d, flt))

        def rows(query: analytics.Query | str) -> list[tuple[Any, ...]]:
            sql, params = (query, ()) if isinstance(query, str) else query
            return conn.execute(sql, params).fetchall()

        stages = tuple(analytics.StageStat(*r) for r in rows(analytics.stage_stats(d, flt)))
        results = tuple(analytics.ResultStat(*r) for r in rows(analytics.result_stats()))
        rounds = tuple(analytics.RoundsStat(*r) for r in rows(analytics.rounds_stats()))
        processes = tuple(analytics.ProcessStat(*r) for r in rows(analytics.process_stats(d, flt)))
        outcomes = tuple(analytics.OutcomeStat(*r) for r in rows(analytics.outcome_stats(d, flt)))
        wip = tuple(
            analytics.WipStat(r[0], r[1], r[2], (r[3], r[4], r[5], r[6]), r[7], r[8])
            for r in rows(analytics.wip_stats(d))
        )
        breakdown = tuple(
            analytics.BreakdownStat(*r) for r in rows(analytics.breakdown_stats(d, flt))
        )
        edges = tuple(analytics.EdgeCount(*r) for r in rows(analytics.edge_counts(d, flt)))
        n = flt.histogram_buckets
        histogram = tuple(
            analytics.HistogramBin(r[0], r[1] * r[2] / n, r[1] * (r[2] + 1) / n, r[3])
            for r in rows(analytics.histogram(d, n))
        )
        days = tuple(analytics.DayCount(*r) for r in rows(analytics.day_counts()))
        return analytics.ReportData(
            stages=stages, results=results, rounds=rounds, processes=processes,
            outcomes=outcomes, wip=wip, breakdown=breakdown, edges=edges, histogram=histogram,
            days=days,
        )

    def _working_time(self, working_seconds: analytics.WorkingSeconds) -> None:
        """Fill report_all's working_s: each closed visit of a stage with business
        hours, read through a server-side cursor a page at a time, timed by
        ``working_seconds`` and copied back page by page; memory stays one page."""
        conn = self._conn
        conn.execute(analytics.WORKING_TABLE)
        copy_sql = ("COPY report_working (process_id, stage, instance_id, branch, visit, "
                    "seconds) FROM STDIN")
        visits_sql = analytics.WORKING_VISITS.format(p="%s")
        counted = False
        for process_id, stage, first in conn.execute(analytics.WORKING_STAGES).fetchall():
            if working_seconds(process_id, stage, first, first) is None:
                continue  # no business hours at this stage
            counted = True
            with conn.cursor(name="report_working_visits") as visits:
                visits.execute(visits_sql, (process_id, stage))
                while page := visits.fetchmany(FETCH_SIZE):
                    with conn.cursor() as out, out.copy(copy_sql) as copy:
                        for instance_id, branch, visit, entered, left in page:
                            seconds = working_seconds(process_id, stage, entered, left)
                            if seconds is not None:
                                copy.write_row((process_id, stage, instance_id, branch, visit,
                                                seconds))
        if counted:
            conn.execute(analytics.SET_WORKING)

    def verify_journal(
        self, checkpoints: Sequence[tuple[int, Checkpoint]] = (), key: bytes | None = None
    ) -> VerifyReport:
        """The chain over the whole journal (streamed), the append-only triggers,
        each instance against its journal, and the checkpoints."""
        try:
            return self._verify(checkpoints, key)
        except _psycopg().Error as exc:
            raise _conflict_or_error(exc, self.path) from None

    def _verify(
        self, checkpoints: Sequence[tuple[int, Checkpoint]], key: bytes | None
    ) -> VerifyReport:
        conn = self._conn
        checker = new_checker(checkpoints, key)
        tables = {str(r[0]) for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'flowctl'").fetchall()}
        for table in ("journal", "journal_tail", "instances"):
            if table not in tables:
                checker.problem(f"the {table} table is missing (dropped outside flowctl)")
        for text in trigger_problems(conn):
            checker.problem(f"{text}: the journal is not protected against changes "
                            "(restore it with `flowctl db repair`)")
        tail = None
        if "journal_tail" in tables:
            for row in conn.execute(
                    "SELECT id, seq, hash FROM flowctl.journal_tail ORDER BY id").fetchall():
                tail = Tail(seq=int(row[1]), hash=str(row[2]))
        if "journal" in tables:
            sql = (f"SELECT {JOURNAL_COLUMNS} FROM flowctl.journal WHERE seq > %s "
                   "ORDER BY seq LIMIT %s")
            for row in _stream_pages(conn, sql, [], self.path):
                checker.check(StoredEntry(*row))
        if "instances" in tables:
            checker.check_instances(conn.execute(
                "SELECT id, version, status, stage FROM flowctl.instances").fetchall())
        return checker.finish(tail)

    def repair_journal(self, *, actor: str, at: str) -> RepairReport:
        """Put back missing or changed append-only triggers (the schema's owner
        only) and journal it (``store_repaired``); nothing when they are in place."""
        psycopg = _psycopg()
        conn = self._conn
        try:
            with conn.transaction():
                problems = trigger_problems(conn)
                if not problems:
                    return RepairReport(problems=())
                entry = _restore_triggers(conn, problems, actor=actor, at=at)
        except psycopg.errors.InsufficientPrivilege:
            raise StoreError(
                f"database {self.path}: only the schema's owner can restore the journal's "
                "triggers; nothing was written",
                hint="run `flowctl db repair` as the store's admin role",
            ) from None
        except psycopg.Error as exc:
            raise _conflict_or_error(exc, self.path) from None
        return RepairReport(problems=tuple(entry.data["found"]), entry=entry)

    def attachments(self, instance_id: str) -> list[AttachmentRow]:
        rows = self._rows(
            "SELECT instance_id, name, version, sha256, size, added_by, added_at"
            " FROM flowctl.attachments WHERE instance_id = %s ORDER BY id", (instance_id,))
        return [AttachmentRow(*row) for row in rows]

    def attachment_content(self, sha256: str) -> bytes | None:
        rows = self._rows("SELECT content FROM flowctl.attachment_blobs WHERE sha256 = %s",
                          (sha256,))
        return bytes(rows[0][0]) if rows else None

    def verify_attachments(self) -> tuple[int, tuple[str, ...]]:
        recorded: dict[tuple[str, str, int], tuple[str, int]] = {}
        sql = ("SELECT seq, instance_id, data FROM flowctl.journal WHERE kind = 'attached' "
               "AND seq > %s ORDER BY seq LIMIT %s")
        for _, instance_id, data in _stream_pages(self._conn, sql, [], self.path):
            what = recorded_attachment(data)
            if what is not None:
                recorded[(str(instance_id), what[0], what[1])] = (what[2], what[3])
        ids = [r[0] for r in self._rows("SELECT id FROM flowctl.attachments ORDER BY id", ())]

        def one_at_a_time() -> Iterator[tuple[Any, ...]]:  # a row holds up to a whole file
            for attachment_id in ids:
                yield from self._rows(
                    "SELECT a.instance_id, a.name, a.version, a.sha256, a.size, b.content"
                    " FROM flowctl.attachments a LEFT JOIN flowctl.attachment_blobs b"
                    " ON b.sha256 = a.sha256 WHERE a.id = %s", (attachment_id,))

        count, problems = check_attachments(
            ((*r[:5], None if r[5] is None else bytes(r[5])) for r in one_at_a_time()),
            recorded)
        return count, tuple(problems)

    def due_timers(self, now: str, *, limit: int | None = None) -> list[TimerRow]:
        sql = (f"SELECT {_TIMER_COLUMNS} FROM flowctl.timers WHERE status = 'pending' "
               "AND due_at <= %s ORDER BY due_at, instance_id, key")
        params: list[Any] = [now]
        if limit is not None:
            sql += " LIMIT %s"
            params.append(max(0, limit))
        return [TimerRow(*r) for r in self._rows(sql, params)]

    def notifications(
        self, user: str | None, *, unread_only: bool = True, limit: int | None = None
    ) -> list[NotificationRow]:
        where: list[str] = []
        params: list[Any] = []
        if user is not None:
            where.append('"user" = %s')
            params.append(user)
        if unread_only:
            where.append("read_at IS NULL")
        sql = f"SELECT {_NOTIFICATION_COLUMNS} FROM flowctl.notifications"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(max(0, limit))
        return [row_to_notification(r) for r in self._rows(sql, params)]

    def undelivered_count(self) -> int:
        rows = self._rows(
            "SELECT count(*) FROM flowctl.notifications WHERE delivered_at IS NULL", ())
        return int(rows[0][0])

    # -- administration ------------------------------------------------------

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of one of the store's tables (``flowctl db copy``), in pages."""
        from flowctl.store.copy import TABLES  # only when copying

        columns, order = TABLES[table]
        first = order.split(",")[0].strip()
        if table == "journal" or order == "id":  # one integer key: pages by it
            sql = (f"SELECT {columns}, {first} FROM flowctl.{table} WHERE {first} > %s "
                   f"ORDER BY {first} LIMIT %s")
            last = 0
            while True:
                rows = self._rows(sql, [last, FETCH_SIZE])
                for row in rows:
                    yield row[:-1]
                if len(rows) < FETCH_SIZE:
                    return
                last = int(rows[-1][-1])
        yield from self._rows(f"SELECT {columns} FROM flowctl.{table} ORDER BY {order}", ())

    def is_empty(self) -> bool:
        """No instance and no journal entry (definitions alone do not count)."""
        rows = self._rows("SELECT (SELECT count(*) FROM (SELECT 1 FROM flowctl.instances "
                          "LIMIT 1) a) + (SELECT count(*) FROM (SELECT 1 FROM flowctl.journal "
                          "LIMIT 1) b)", ())
        return int(rows[0][0]) == 0

    def load_tables(self, tables: Iterator[tuple[str, Iterator[tuple[Any, ...]]]]) -> None:
        """Fill the empty store from ``(table, rows)`` in one transaction (COPY),
        then its search text, tail and id sequences; an exception rolls it all back."""
        from flowctl.store.copy import TABLES  # only when copying

        psycopg = _psycopg()
        conn = self._conn
        try:
            with conn.transaction():
                conn.execute("SET CONSTRAINTS ALL DEFERRED")
                conn.execute("DELETE FROM flowctl.definitions")  # only definitions: see is_empty
                for table, rows in tables:
                    columns, _ = TABLES[table]
                    with conn.cursor().copy(
                            f"COPY flowctl.{table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                last = conn.execute(
                    "SELECT seq, hash FROM flowctl.journal ORDER BY seq DESC LIMIT 1").fetchone()
                if last is not None:
                    conn.execute("INSERT INTO flowctl.journal_tail (id, seq, hash) "
                                 "VALUES (1, %s, %s)", (last[0], last[1]))
                for table in ("notifications", "attachments"):
                    conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('flowctl.{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM flowctl.{table}), 0) + 1, false)")
                conn.execute("DELETE FROM flowctl.instance_search")
                backfill_search(conn, names_too=False)
        except psycopg.Error as exc:
            raise _conflict_or_error(exc, self.path) from None

    def grant(self, role: str, *, create_login: bool = True) -> tuple[bool, list[str]]:
        """Let ``role`` work as an operator: (whether the role was created, the
        statements run), in one transaction. The journal, attachments and
        definitions get SELECT and INSERT only."""
        psycopg = _psycopg()
        conn = self._conn
        created = False
        statements = schema.grant_statements(role)
        try:
            with conn.transaction():
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                      (role,)).fetchone()
                if exists is None:
                    if not create_login:
                        raise StoreError(f"there is no role {role!r} on the server")
                    statements = [f"CREATE ROLE {schema.quote_ident(role)} LOGIN", *statements]
                    created = True
                for statement in statements:
                    conn.execute(statement)  # quoted identifiers
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(
                f"cannot grant {role!r} access to {self.path}: {str(exc).splitlines()[0]}; "
                "nothing was changed",
                hint="run `flowctl db grant` as the schema's owner (and, to create a role, "
                     "as a role with CREATEROLE)",
            ) from None
        except psycopg.Error as exc:
            raise _conflict_or_error(exc, self.path) from None
        return created, statements

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing to add
            pass

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backfill_search(conn: psycopg.Connection[Any], *, names_too: bool = True) -> None:
    """The v5 migration's own step: each definition's names (read from its YAML,
    as the SQLite migration does) and each instance's search text and comments."""
    from flowctl.store.migrations import definition_names  # the same reading as SQLite's

    for digest, source in conn.execute(
            "SELECT digest, source FROM flowctl.definitions").fetchall() if names_too else ():
        conn.execute("UPDATE flowctl.definitions SET names = %s WHERE digest = %s",
                     (definition_names(str(source)), digest))
    names = dict(conn.execute("SELECT digest, names FROM flowctl.definitions").fetchall())
    comments: dict[str, list[str]] = {}
    for instance_id, data in conn.execute(
            "SELECT instance_id, data FROM flowctl.journal WHERE data LIKE '%%\"comment\"%%' "
            "ORDER BY seq").fetchall():
        value = loads(data)
        if isinstance(value, dict) and isinstance(value.get("comment"), str):
            comments.setdefault(str(instance_id), []).append(value["comment"])
    rows = conn.execute(f"SELECT {INSTANCE_COLUMNS} FROM flowctl.instances").fetchall()
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO flowctl.instance_search (instance_id, body, comments) "
            "VALUES (%s, %s, %s)",
            [(row.id, search_body(row, str(names.get(row.definition_digest, "{}"))),
              "".join("\n" + searchable(c) for c in comments.get(row.id, ())))
             for row in map(row_to_instance, rows)])


def trigger_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """What is wrong with the journal's append-only triggers (missing, disabled,
    changed, or an unexpected one on the journal tables); ``[]`` when intact."""
    rows = conn.execute(
        "SELECT t.tgname, t.tgenabled, c.relname, p.proname, p.prosrc "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE n.nspname = 'flowctl' AND c.relname = ANY(%s) AND NOT t.tgisinternal",
        (list(schema.JOURNAL_TABLES),),
    ).fetchall()
    found = {str(r[0]): r for r in rows}
    out: list[str] = []
    for name, (table, _) in schema.JOURNAL_TRIGGERS.items():
        have = found.pop(name, None)
        if have is None:
            out.append(f"the append-only trigger {name} is missing")
        elif have[1] == "D":
            out.append(f"the append-only trigger {name} is disabled")
        elif have[2] != table or _normal(str(have[4])) != _normal(
                _function_body(str(have[3]))):
            out.append(f"the append-only trigger {name} was changed")
    out += [f"an unexpected trigger {name} is on the journal" for name in sorted(found)]
    return out


def _function_body(name: str) -> str:
    sql = schema.FUNCTIONS.get(name, "")
    _, _, rest = sql.partition("$$")
    body, _, _ = rest.partition("$$")
    return body


def _normal(text: str) -> str:
    return " ".join(text.split())


def _restore_triggers(
    conn: psycopg.Connection[Any], problems: list[str], *, actor: str, at: str
) -> JournalEntry:
    for name, table in conn.execute(
        "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'flowctl' AND c.relname = ANY(%s) AND NOT t.tgisinternal",
        (list(schema.JOURNAL_TABLES),),
    ).fetchall():
        conn.execute(f"DROP TRIGGER {schema.quote_ident(str(name))} "
                     f"ON flowctl.{schema.quote_ident(str(table))}")
    if conn.execute("SELECT to_regclass('flowctl.journal_tail')").fetchone() == (None,):
        problems = [*problems, "the journal_tail table is missing"]
        conn.execute(schema.JOURNAL_TAIL_TABLE)
    for sql in schema.FUNCTIONS.values():
        conn.execute(sql)
    for _, sql in schema.JOURNAL_TRIGGERS.values():
        conn.execute(sql)
    last = conn.execute(
        "SELECT seq, hash FROM flowctl.journal ORDER BY seq DESC LIMIT 1").fetchone()
    tail = conn.execute("SELECT seq, hash FROM flowctl.journal_tail WHERE id = 1").fetchone()
    seq, prev = (0, "") if last is None else (int(last[0]), str(last[1]))
    if tail is not None and int(tail[0]) > seq:
        seq, prev = int(tail[0]), str(tail[1])
    seq += 1
    data = {"triggers_restored": list(schema.JOURNAL_TRIGGERS), "found": problems}
    data_text = canonical_json(data)
    digest = entry_hash_text(seq, STORE_ENTRY_ID, at, actor, "store_repaired", 0, None, None,
                             data_text, prev)
    conn.execute(
        f"INSERT INTO flowctl.journal ({JOURNAL_COLUMNS}, process_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (seq, STORE_ENTRY_ID, at, actor, "store_repaired", 0, None, None, data_text, prev,
         digest, ""),
    )
    conn.execute(
        "INSERT INTO flowctl.journal_tail (id, seq, hash) VALUES (1, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )
    return JournalEntry(instance_id=STORE_ENTRY_ID, at=at, actor=actor, kind="store_repaired",
                        version=0, data=data, seq=seq, prev_hash=prev, hash=digest)

"""The SQLite schema of the store and its forward migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``; the store applies the pending ones
in order inside one ``BEGIN IMMEDIATE`` transaction when it opens a database
that is behind, and refuses a database whose version is higher than
``SCHEMA_VERSION`` (written by a newer flowctl).

A migration runs statements one by one with ``conn.execute`` (never
``executescript``, which would commit the transaction half-way). A later
migration that must rebuild a table can use sqlite-utils' ``transform()`` on
the same connection (import it inside the migration: it costs ~110 ms).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]

# The journal's append-only triggers (created by v1; `flowctl db repair` puts
# back any that are missing or changed, and every write refuses to run
# without them). Append-only, whatever the connection's settings. UPDATE and
# DELETE abort; the INSERT guard stops INSERT OR REPLACE / REPLACE INTO over
# an existing entry (with recursive_triggers off, REPLACE's implicit delete
# does not fire the DELETE trigger) and any insert that does not extend the
# journal. The tail (the last entry written) only moves forward.
JOURNAL_NO_UPDATE = """CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN
        SELECT RAISE(ABORT, 'the journal is append-only: entries cannot be changed');
    END"""

JOURNAL_NO_DELETE = """CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN
        SELECT RAISE(ABORT, 'the journal is append-only: entries cannot be deleted');
    END"""

JOURNAL_APPEND_ONLY = """CREATE TRIGGER journal_append_only BEFORE INSERT ON journal
    WHEN NEW.seq IS NULL OR NEW.seq <= (SELECT coalesce(max(seq), 0) FROM journal)
    BEGIN
        SELECT RAISE(ABORT,
            'the journal is append-only: a new entry must come after the last one');
    END"""

JOURNAL_TAIL_FORWARD = """CREATE TRIGGER journal_tail_forward BEFORE UPDATE ON journal_tail
    WHEN NEW.seq <= OLD.seq OR NEW.id IS NOT OLD.id
    BEGIN
        SELECT RAISE(ABORT, 'the journal tail only moves forward');
    END"""

JOURNAL_TAIL_NO_DELETE = """CREATE TRIGGER journal_tail_no_delete BEFORE DELETE ON journal_tail
    BEGIN
        SELECT RAISE(ABORT, 'the journal tail cannot be deleted');
    END"""

# The last entry written (db repair makes it again when it was dropped).
JOURNAL_TAIL_TABLE = """CREATE TABLE journal_tail (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    )"""

JOURNAL_TRIGGERS: dict[str, str] = {
    "journal_no_update": JOURNAL_NO_UPDATE,
    "journal_no_delete": JOURNAL_NO_DELETE,
    "journal_append_only": JOURNAL_APPEND_ONLY,
    "journal_tail_forward": JOURNAL_TAIL_FORWARD,
    "journal_tail_no_delete": JOURNAL_TAIL_NO_DELETE,
}
JOURNAL_TABLES = ("journal", "journal_tail")


_V1_STATEMENTS: tuple[str, ...] = (
    # Definitions are content-addressed: an instance points at the exact text it runs on.
    """CREATE TABLE definitions (
        digest TEXT PRIMARY KEY,
        process_id TEXT NOT NULL,
        source TEXT NOT NULL,
        stored_at TEXT NOT NULL
    )""",
    """CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        process_id TEXT NOT NULL,
        definition_digest TEXT NOT NULL
            REFERENCES definitions(digest) DEFERRABLE INITIALLY DEFERRED,
        status TEXT NOT NULL,
        stage TEXT,
        initiator TEXT NOT NULL,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        due_at TEXT,
        assignees TEXT NOT NULL DEFAULT '[]',
        parent_id TEXT REFERENCES instances(id) DEFERRABLE INITIALLY DEFERRED,
        state TEXT NOT NULL DEFAULT '{}'
    )""",
    # Listing orders by (started_at or updated_at, id); ``id`` in the index lets
    # ``--limit`` stop early without sorting.
    "CREATE INDEX instances_status_started ON instances(status, started_at, id)",
    "CREATE INDEX instances_status_updated ON instances(status, updated_at, id)",
    "CREATE INDEX instances_process_started ON instances(process_id, started_at, id)",
    "CREATE INDEX instances_initiator_started ON instances(initiator, started_at, id)",
    "CREATE INDEX instances_started ON instances(started_at, id)",
    "CREATE INDEX instances_updated ON instances(updated_at, id)",
    "CREATE INDEX instances_parent ON instances(parent_id) WHERE parent_id IS NOT NULL",
    # The current assignees, one row per (principal, instance): the inbox index.
    # Rebuilt by the store on every insert/update of the instance.
    """CREATE TABLE instance_principals (
        principal TEXT NOT NULL,
        instance_id TEXT NOT NULL REFERENCES instances(id),
        PRIMARY KEY (principal, instance_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX instance_principals_instance ON instance_principals(instance_id)",
    # Per-process counters behind ids like ``key-account-filing-approval-42``.
    """CREATE TABLE id_counters (
        process_id TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    )""",
    # The journal: append-only, hash-chained over the whole table (see chain.py).
    """CREATE TABLE journal (
        seq INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL REFERENCES instances(id),
        process_id TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        stage TEXT,
        result TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "CREATE INDEX journal_instance ON journal(instance_id, seq)",
    "CREATE INDEX journal_actor ON journal(actor, seq)",
    "CREATE INDEX journal_process ON journal(process_id, seq)",
    "CREATE INDEX journal_at ON journal(at)",
    # Append-only, whatever the connection's settings. UPDATE and DELETE abort;
    # the INSERT guard stops INSERT OR REPLACE / REPLACE INTO over an existing
    # entry (with recursive_triggers off, REPLACE's implicit delete does not fire
    # the DELETE trigger) and any insert that does not extend the journal.
    JOURNAL_NO_UPDATE,
    JOURNAL_NO_DELETE,
    JOURNAL_APPEND_ONLY,
    # The last entry written (seq and hash), updated in the same transaction as
    # the append, so that removing entries at the end of the journal is detected.
    JOURNAL_TAIL_TABLE,
    JOURNAL_TAIL_FORWARD,
    JOURNAL_TAIL_NO_DELETE,
)


def _v1_initial(conn: sqlite3.Connection) -> None:
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


_V2_STATEMENTS: tuple[str, ...] = (
    # The instances' pending timers, indexed on due_at for tick; the store
    # rewrites an instance's rows in the same transaction as the instance.
    """CREATE TABLE timers (
        instance_id TEXT NOT NULL REFERENCES instances(id),
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        stage TEXT NOT NULL,
        due_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'fired', 'void')),
        fired_at TEXT,
        PRIMARY KEY (instance_id, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX timers_pending_due ON timers(due_at, instance_id, key)"
    " WHERE status = 'pending'",
    """CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL REFERENCES instances(id),
        user TEXT NOT NULL,
        kind TEXT NOT NULL,
        stage TEXT,
        message TEXT NOT NULL,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        read_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        claimed_until TEXT
    )""",
    "CREATE INDEX notifications_user ON notifications(user, id)",
    "CREATE INDEX notifications_undelivered ON notifications(next_attempt_at, id)"
    " WHERE delivered_at IS NULL",
    # flowctl overdue: active instances by due time.
    "CREATE INDEX instances_status_due ON instances(status, due_at) WHERE due_at IS NOT NULL",
)


def _v2_timers_notifications(conn: sqlite3.Connection) -> None:
    """Timers and notifications tables; the pending timers of existing
    instances (in their state since v1) are copied into ``timers`` with the
    key the engine derives for them: ``kind:stage:index:vN``, N the
    instance's version."""
    import json

    for statement in _V2_STATEMENTS:
        conn.execute(statement)
    rows = conn.execute(
        "SELECT id, version, state FROM instances WHERE status NOT IN ('completed', 'cancelled')"
    ).fetchall()
    for instance_id, version, state_text in rows:
        state = json.loads(state_text or "{}")
        for t in state.get("timers") or ():
            key = t.get("key") or f"{t['kind']}:{t['stage']}:{int(t.get('index', 0))}:v{version}"
            conn.execute(
                "INSERT OR IGNORE INTO timers (instance_id, key, kind, stage, due_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (instance_id, key, t["kind"], t["stage"], t["at"]),
            )


def _v3_unread_notifications(conn: sqlite3.Connection) -> None:
    """An index of each user's unread notifications: ``inbox`` counts them on
    every call, and a user who has read tens of thousands still has few unread."""
    conn.execute(
        "CREATE INDEX notifications_unread ON notifications(user, id) WHERE read_at IS NULL"
    )


_ATTACHMENT_STATEMENTS: tuple[str, ...] = (
    # A file's bytes, once per content: addressed by their SHA-256 (hex).
    """CREATE TABLE attachment_blobs (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL CHECK (size >= 0),
        content BLOB NOT NULL,
        CHECK (length(CAST(content AS BLOB)) = size)
    )""",
    # Which instance has which file under which name; a name attached again
    # is its next version. The journal's ``attached`` entry says the same.
    """CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        instance_id TEXT NOT NULL REFERENCES instances(id),
        name TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        sha256 TEXT NOT NULL REFERENCES attachment_blobs(sha256),
        size INTEGER NOT NULL CHECK (size >= 0),
        added_by TEXT NOT NULL,
        added_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX attachments_instance_name ON attachments(instance_id, name, version)",
)

# Attachments are append-only, as the journal: no UPDATE, no DELETE, and no
# REPLACE over an existing row (a blob inserted again is skipped: same
# address, same bytes). By name, for a check or a repair that restores them.
ATTACHMENT_TRIGGERS: dict[str, str] = {
    "attachments_no_update": """CREATE TRIGGER attachments_no_update
    BEFORE UPDATE ON attachments
    BEGIN
        SELECT RAISE(ABORT, 'attachments are append-only: they cannot be changed');
    END""",
    "attachments_no_delete": """CREATE TRIGGER attachments_no_delete
    BEFORE DELETE ON attachments
    BEGIN
        SELECT RAISE(ABORT, 'attachments are append-only: they cannot be deleted');
    END""",
    "attachments_append_only": """CREATE TRIGGER attachments_append_only
    BEFORE INSERT ON attachments
    WHEN EXISTS (SELECT 1 FROM attachments WHERE instance_id = NEW.instance_id
                 AND name = NEW.name AND version = NEW.version)
        OR EXISTS (SELECT 1 FROM attachments WHERE id = NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'attachments are append-only: an attachment cannot be replaced');
    END""",
    "attachment_blobs_no_update": """CREATE TRIGGER attachment_blobs_no_update
    BEFORE UPDATE ON attachment_blobs
    BEGIN
        SELECT RAISE(ABORT, 'attachment contents are append-only: they cannot be changed');
    END""",
    "attachment_blobs_no_delete": """CREATE TRIGGER attachment_blobs_no_delete
    BEFORE DELETE ON attachment_blobs
    BEGIN
        SELECT RAISE(ABORT, 'attachment contents are append-only: they cannot be deleted');
    END""",
    "attachment_blobs_once": """CREATE TRIGGER attachment_blobs_once
    BEFORE INSERT ON attachment_blobs
    WHEN EXISTS (SELECT 1 FROM attachment_blobs WHERE sha256 = NEW.sha256)
    BEGIN
        SELECT RAISE(IGNORE);
    END""",
}


def _v4_attachments(conn: sqlite3.Connection) -> None:
    """Attachments: files' bytes by SHA-256, and which instance has them under
    which name and version; append-only like the journal."""
    for statement in (*_ATTACHMENT_STATEMENTS, *ATTACHMENT_TRIGGERS.values()):
        conn.execute(statement)


# Full-text search over instances (``flowctl list --search``): one FTS5 row per
# instance, its rowid the instance's rowid, kept current by triggers in the
# same transaction as every write. The trigram tokenizer matches any part of a
# word in any script (Chinese has no spaces between words; Russian inflects).
# What is indexed: the process id and name, the current stage's id and name
# (a definition's ``names``, JSON ``{"process": name, "stages": {id: name}}``,
# written by whoever stores it), the record's text values and the note (from
# the instance's state), and the comments (from the journal).
_SEARCH_NAMES = (
    "new.process_id || ' ' || coalesce(new.stage, '') || ' ' || coalesce(("
    "SELECT json_extract(names, '$.process') || ' ' || coalesce(json_extract("
    "names, '$.stages.\"' || new.stage || '\"'), '') "
    "FROM definitions WHERE digest = new.definition_digest), '')"
)
_SEARCH_RECORD = (
    "coalesce((SELECT group_concat(value, ' ') FROM json_each(new.state, '$.record') "
    "WHERE type = 'text'), '')"
)
_SEARCH_NOTE = "coalesce(json_extract(new.state, '$.note'), '')"
SEARCH_TRIGGERS: dict[str, str] = {
    "instance_search_insert": f"""CREATE TRIGGER instance_search_insert
    AFTER INSERT ON instances
    BEGIN
        INSERT INTO instance_search (rowid, names, record, notes, comments)
        VALUES (new.rowid, {_SEARCH_NAMES}, {_SEARCH_RECORD}, {_SEARCH_NOTE}, '');
    END""",
    # Only when what is searched changed: a step that moves the stage only
    # leaves the index alone.
    "instance_search_update": f"""CREATE TRIGGER instance_search_update
    AFTER UPDATE OF state, stage, definition_digest ON instances
    WHEN old.definition_digest IS NOT new.definition_digest OR old.stage IS NOT new.stage
        OR json_extract(old.state, '$.record') IS NOT json_extract(new.state, '$.record')
        OR json_extract(old.state, '$.note') IS NOT json_extract(new.state, '$.note')
    BEGIN
        UPDATE instance_search SET names = {_SEARCH_NAMES}, record = {_SEARCH_RECORD},
            notes = {_SEARCH_NOTE}
        WHERE rowid = new.rowid;
    END""",
    "instance_search_delete": """CREATE TRIGGER instance_search_delete
    AFTER DELETE ON instances
    BEGIN
        DELETE FROM instance_search WHERE rowid = old.rowid;
    END""",
}
# The one trigger on the journal besides the append-only ones: it only adds a
# new entry's comment to the search index. The journal's trigger check and
# `flowctl db repair` know it (``JOURNAL_ALL_TRIGGERS``), so any other is still
# reported as unexpected.
JOURNAL_SEARCH_TRIGGER = """CREATE TRIGGER instance_search_comment
    AFTER INSERT ON journal
    WHEN json_extract(new.data, '$.comment') IS NOT NULL
    BEGIN
        UPDATE instance_search
        SET comments = comments || char(10) || json_extract(new.data, '$.comment')
        WHERE rowid = (SELECT rowid FROM instances WHERE id = new.instance_id);
    END"""
JOURNAL_ALL_TRIGGERS: dict[str, str] = {
    **JOURNAL_TRIGGERS, "instance_search_comment": JOURNAL_SEARCH_TRIGGER,
}


def definition_names(source: str) -> str:
    """The ``names`` of a definition stored before v5 (newer ones are stored
    with them), read from its YAML text."""
    import json

    from ruamel.yaml import YAML  # only when migrating an older store
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe", pure=True).load(source)
    except YAMLError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    stages = doc.get("stages")
    if not isinstance(stages, list):
        stages = []
    return json.dumps({
        "process": doc.get("name") if isinstance(doc.get("name"), str) else "",
        "stages": {
            st["id"]: st["name"] for st in stages
            if isinstance(st, dict) and isinstance(st.get("id"), str)
            and isinstance(st.get("name"), str)
        },
    }, ensure_ascii=False)


def _v5_search(conn: sqlite3.Connection) -> None:
    """Full-text search: definitions' names, the FTS5 table and its triggers,
    filled from the instances and comments already stored."""
    conn.execute("ALTER TABLE definitions ADD COLUMN names TEXT NOT NULL DEFAULT '{}'")
    for digest, source in conn.execute("SELECT digest, source FROM definitions").fetchall():
        conn.execute("UPDATE definitions SET names = ? WHERE digest = ?",
                     (definition_names(source), digest))
    conn.execute(
        "CREATE VIRTUAL TABLE instance_search USING fts5("
        "names, record, notes, comments, tokenize = 'trigram')"
    )
    for statement in (*SEARCH_TRIGGERS.values(), JOURNAL_SEARCH_TRIGGER):
        conn.execute(statement)
    record = _SEARCH_RECORD.replace("new.", "instances.")
    conn.execute(
        "INSERT INTO instance_search (rowid, names, record, notes, comments) "
        f"SELECT instances.rowid, {_SEARCH_NAMES.replace('new.', 'instances.')}, {record}, "
        f"{_SEARCH_NOTE.replace('new.', 'instances.')}, coalesce(("
        "SELECT group_concat(json_extract(data, '$.comment'), char(10)) FROM journal "
        "WHERE journal.instance_id = instances.id "
        "AND json_extract(data, '$.comment') IS NOT NULL), '') FROM instances"
    )


def _v6_pick_turns(conn: sqlite3.Connection) -> None:
    """Round-robin assignment: the member each pool (``role:sales-rep``,
    ``department:sales``) gave a stage to last, written in the transaction
    that assigns the stage, so concurrent operators take turns."""
    conn.execute(
        """CREATE TABLE pick_turns (
            pool TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            at TEXT NOT NULL
        ) WITHOUT ROWID"""
    )


def _v7_notification_channels(conn: sqlite3.Connection) -> None:
    """A notification's subject (from the definition's templates), and the
    channels that already took it: a retry goes only to the others."""
    conn.execute("ALTER TABLE notifications ADD COLUMN subject TEXT")
    conn.execute("ALTER TABLE notifications ADD COLUMN channels_done TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_initial, _v2_timers_notifications, _v3_unread_notifications, _v4_attachments,
    _v5_search,
    _v6_pick_turns,
    _v7_notification_channels,
)
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migrations(
    conn: sqlite3.Connection, current: int, migrations: tuple[Migration, ...]
) -> int:
    """Run ``migrations[current:]`` in order and record the new version.

    The caller holds the write transaction; return the version reached.
    """
    for migration in migrations[current:]:
        migration(conn)
    target = len(migrations)
    # PRAGMA takes no parameters; ``target`` is an int we computed.
    conn.execute(f"PRAGMA user_version = {int(target)}")
    return target


def read_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return int(row[0]) > 0

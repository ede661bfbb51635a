"""The PostgreSQL schema of the store and its forward migrations.

Everything lives in one schema, ``flowctl``, owned by the role that created
it (the team's admin role). The schema version is the one row of
``flowctl.schema_version``. ``MIGRATIONS[i]`` takes a store from version
``i`` to ``i + 1``, with the same numbering as the SQLite migrations
(:mod:`flowctl.store.migrations`): the same tables, columns and indexes, in
PostgreSQL's types. The store applies the pending ones in one transaction,
under an advisory lock so that two first commands do not both create it.

Timestamps stay ISO-8601 UTC text and JSON stays canonical text, exactly as
on SQLite: the journal's hash is computed over those texts, so a journal
copied from one backend to the other verifies with the same head. The
append-only rules are triggers (as on SQLite) plus privileges
(:func:`grant_statements`): an operator's role may insert journal entries,
never update, delete or truncate them.
"""

from __future__ import annotations

SCHEMA = "flowctl"
LOCK_KEY = 0x666C6F77  # "flow": the advisory lock taken while migrating

# Raised by the journal's triggers; TG_ARGV[0] is the message.
REFUSE_FUNCTION = """CREATE OR REPLACE FUNCTION flowctl.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
    END
    $$"""

APPEND_FUNCTION = """CREATE OR REPLACE FUNCTION flowctl.journal_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq IS NULL OR NEW.seq <= (SELECT coalesce(max(seq), 0) FROM flowctl.journal) THEN
            RAISE EXCEPTION 'the journal is append-only: a new entry must come after the last one'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$"""

TAIL_FUNCTION = """CREATE OR REPLACE FUNCTION flowctl.journal_tail_forward() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq <= OLD.seq OR NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'the journal tail only moves forward'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$"""

FUNCTIONS: dict[str, str] = {
    "refuse_change": REFUSE_FUNCTION,
    "journal_append_only": APPEND_FUNCTION,
    "journal_tail_forward": TAIL_FUNCTION,
}

# name -> (table, CREATE TRIGGER statement)
JOURNAL_TRIGGERS: dict[str, tuple[str, str]] = {
    "journal_no_update": ("journal", """CREATE TRIGGER journal_no_update
        BEFORE UPDATE ON flowctl.journal FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('the journal is append-only: entries cannot be changed')"""),
    "journal_no_delete": ("journal", """CREATE TRIGGER journal_no_delete
        BEFORE DELETE ON flowctl.journal FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('the journal is append-only: entries cannot be deleted')"""),
    "journal_no_truncate": ("journal", """CREATE TRIGGER journal_no_truncate
        BEFORE TRUNCATE ON flowctl.journal FOR EACH STATEMENT EXECUTE FUNCTION
        flowctl.refuse_change('the journal is append-only: it cannot be truncated')"""),
    "journal_append_only": ("journal", """CREATE TRIGGER journal_append_only
        BEFORE INSERT ON flowctl.journal FOR EACH ROW EXECUTE FUNCTION
        flowctl.journal_append_only()"""),
    "journal_tail_forward": ("journal_tail", """CREATE TRIGGER journal_tail_forward
        BEFORE UPDATE ON flowctl.journal_tail FOR EACH ROW EXECUTE FUNCTION
        flowctl.journal_tail_forward()"""),
    "journal_tail_no_delete": ("journal_tail", """CREATE TRIGGER journal_tail_no_delete
        BEFORE DELETE ON flowctl.journal_tail FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('the journal tail cannot be deleted')"""),
    "journal_tail_no_truncate": ("journal_tail", """CREATE TRIGGER journal_tail_no_truncate
        BEFORE TRUNCATE ON flowctl.journal_tail FOR EACH STATEMENT EXECUTE FUNCTION
        flowctl.refuse_change('the journal tail cannot be truncated')"""),
}
JOURNAL_TABLES = ("journal", "journal_tail")

JOURNAL_TAIL_TABLE = """CREATE TABLE flowctl.journal_tail (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        hash TEXT COLLATE "C" NOT NULL
    )"""

_V1: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS flowctl",
    "CREATE TABLE flowctl.schema_version (version INTEGER NOT NULL)",
    "INSERT INTO flowctl.schema_version (version) VALUES (0)",
    """CREATE TABLE flowctl.definitions (
        digest TEXT COLLATE "C" PRIMARY KEY,
        process_id TEXT COLLATE "C" NOT NULL,
        source TEXT COLLATE "C" NOT NULL,
        stored_at TEXT COLLATE "C" NOT NULL
    )""",
    """CREATE TABLE flowctl.instances (
        id TEXT COLLATE "C" PRIMARY KEY,
        process_id TEXT COLLATE "C" NOT NULL,
        definition_digest TEXT COLLATE "C" NOT NULL
            REFERENCES flowctl.definitions(digest) DEFERRABLE INITIALLY DEFERRED,
        status TEXT COLLATE "C" NOT NULL,
        stage TEXT COLLATE "C",
        initiator TEXT COLLATE "C" NOT NULL,
        started_at TEXT COLLATE "C" NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        due_at TEXT COLLATE "C",
        assignees TEXT COLLATE "C" NOT NULL DEFAULT '[]',
        parent_id TEXT COLLATE "C" REFERENCES flowctl.instances(id) DEFERRABLE INITIALLY DEFERRED,
        state TEXT COLLATE "C" NOT NULL DEFAULT '{}'
    )""",
    #: ids and ISO times compare byte by byte, as on SQLite.
    'CREATE INDEX instances_status_started ON flowctl.instances'
    '(status, started_at, id)',
    'CREATE INDEX instances_status_updated ON flowctl.instances'
    '(status, updated_at, id)',
    'CREATE INDEX instances_process_started ON flowctl.instances'
    '(process_id, started_at, id)',
    'CREATE INDEX instances_initiator_started ON flowctl.instances'
    '(initiator, started_at, id)',
    'CREATE INDEX instances_started ON flowctl.instances(started_at, id)',
    'CREATE INDEX instances_updated ON flowctl.instances(updated_at, id)',
    "CREATE INDEX instances_parent ON flowctl.instances(parent_id) WHERE parent_id IS NOT NULL",
    """CREATE TABLE flowctl.instance_principals (
        principal TEXT COLLATE "C" NOT NULL,
        instance_id TEXT COLLATE "C" NOT NULL REFERENCES flowctl.instances(id),
        PRIMARY KEY (principal, instance_id)
    )""",
    "CREATE INDEX instance_principals_instance ON flowctl.instance_principals(instance_id)",
    """CREATE TABLE flowctl.id_counters (
        process_id TEXT COLLATE "C" PRIMARY KEY,
        last BIGINT NOT NULL
    )""",
    """CREATE TABLE flowctl.journal (
        seq BIGINT PRIMARY KEY,
        instance_id TEXT COLLATE "C" NOT NULL,
        process_id TEXT COLLATE "C" NOT NULL,
        at TEXT COLLATE "C" NOT NULL,
        actor TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL,
        stage TEXT COLLATE "C",
        result TEXT COLLATE "C",
        data TEXT COLLATE "C" NOT NULL DEFAULT '{}',
        prev_hash TEXT COLLATE "C" NOT NULL,
        hash TEXT COLLATE "C" NOT NULL
    )""",
    "CREATE INDEX journal_instance ON flowctl.journal(instance_id, seq)",
    "CREATE INDEX journal_actor ON flowctl.journal(actor, seq)",
    "CREATE INDEX journal_process ON flowctl.journal(process_id, seq)",
    'CREATE INDEX journal_at ON flowctl.journal(at)',
    JOURNAL_TAIL_TABLE,
    *FUNCTIONS.values(),
    *(sql for _, sql in JOURNAL_TRIGGERS.values()),
)

_V2: tuple[str, ...] = (
    """CREATE TABLE flowctl.timers (
        instance_id TEXT COLLATE "C" NOT NULL REFERENCES flowctl.instances(id),
        key TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        stage TEXT COLLATE "C" NOT NULL,
        due_at TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'fired', 'void')),
        fired_at TEXT COLLATE "C",
        PRIMARY KEY (instance_id, key)
    )""",
    'CREATE INDEX timers_pending_due ON flowctl.timers'
    '(due_at, instance_id, key) WHERE status = \'pending\'',
    """CREATE TABLE flowctl.notifications (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        instance_id TEXT COLLATE "C" NOT NULL REFERENCES flowctl.instances(id),
        "user" TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        stage TEXT COLLATE "C",
        message TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        delivered_at TEXT COLLATE "C",
        read_at TEXT COLLATE "C",
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT COLLATE "C",
        next_attempt_at TEXT COLLATE "C",
        claimed_until TEXT COLLATE "C"
    )""",
    'CREATE INDEX notifications_user ON flowctl.notifications("user", id)',
    'CREATE INDEX notifications_undelivered ON flowctl.notifications'
    '(next_attempt_at, id) WHERE delivered_at IS NULL',
    'CREATE INDEX instances_status_due ON flowctl.instances(status, due_at)'
    " WHERE due_at IS NOT NULL",
)

_V3: tuple[str, ...] = (
    'CREATE INDEX notifications_unread ON flowctl.notifications("user", id)'
    " WHERE read_at IS NULL",
)

ATTACHMENT_TRIGGERS: dict[str, str] = {
    "attachments_no_update": """CREATE TRIGGER attachments_no_update
        BEFORE UPDATE ON flowctl.attachments FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('attachments are append-only: they cannot be changed')""",
    "attachments_no_delete": """CREATE TRIGGER attachments_no_delete
        BEFORE DELETE ON flowctl.attachments FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('attachments are append-only: they cannot be deleted')""",
    "attachments_no_truncate": """CREATE TRIGGER attachments_no_truncate
        BEFORE TRUNCATE ON flowctl.attachments FOR EACH STATEMENT EXECUTE FUNCTION
        flowctl.refuse_change('attachments are append-only: they cannot be truncated')""",
    "attachment_blobs_no_update": """CREATE TRIGGER attachment_blobs_no_update
        BEFORE UPDATE ON flowctl.attachment_blobs FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('attachment contents are append-only: they cannot be changed')""",
    "attachment_blobs_no_delete": """CREATE TRIGGER attachment_blobs_no_delete
        BEFORE DELETE ON flowctl.attachment_blobs FOR EACH ROW EXECUTE FUNCTION
        flowctl.refuse_change('attachment contents are append-only: they cannot be deleted')""",
    "attachment_blobs_no_truncate": """CREATE TRIGGER attachment_blobs_no_truncate
        BEFORE TRUNCATE ON flowctl.attachment_blobs FOR EACH STATEMENT EXECUTE FUNCTION
        flowctl.refuse_change('attachment contents are append-only: they cannot be truncated')""",
}

_V4: tuple[str, ...] = (
    """CREATE TABLE flowctl.attachment_blobs (
        sha256 TEXT COLLATE "C" PRIMARY KEY,
        size BIGINT NOT NULL CHECK (size >= 0),
        content BYTEA NOT NULL,
        CHECK (octet_length(content) = size)
    )""",
    """CREATE TABLE flowctl.attachments (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        instance_id TEXT COLLATE "C" NOT NULL REFERENCES flowctl.instances(id),
        name TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        sha256 TEXT COLLATE "C" NOT NULL REFERENCES flowctl.attachment_blobs(sha256),
        size BIGINT NOT NULL CHECK (size >= 0),
        added_by TEXT COLLATE "C" NOT NULL,
        added_at TEXT COLLATE "C" NOT NULL
    )""",
    "CREATE UNIQUE INDEX attachments_instance_name ON flowctl.attachments"
    "(instance_id, name, version)",
    *ATTACHMENT_TRIGGERS.values(),
)

# A step of a migration that the store runs in Python (not a statement).
BACKFILL_SEARCH = "-- fill flowctl.instance_search and definitions.names"

# Search (``flowctl list --search``): one row per instance holding, in lower
# case, the words it is found by (process id and name, stage id and name, the
# record's text values, the note, the comments); the store rewrites it in the
# same transaction as the instance, and adds each comment as it is journalled.
# ``words`` is PostgreSQL's full-text document of it (the 'simple'
# configuration: no stemming, any language), indexed by GIN; Chinese and
# Japanese characters are stored one per word (they have no spaces between
# words), so a word of them is found as a phrase.
_V5: tuple[str, ...] = (
    "ALTER TABLE flowctl.definitions ADD COLUMN names TEXT NOT NULL DEFAULT '{}'",
    """CREATE TABLE flowctl.instance_search (
        instance_id TEXT COLLATE "C" PRIMARY KEY REFERENCES flowctl.instances(id),
        body TEXT COLLATE "C" NOT NULL DEFAULT '',
        comments TEXT COLLATE "C" NOT NULL DEFAULT '',
        words tsvector GENERATED ALWAYS AS
            (to_tsvector('simple'::regconfig, body || ' ' || comments)) STORED
    )""",
    "CREATE INDEX instance_search_words ON flowctl.instance_search USING GIN (words)",
    # filled from what is stored already, by the store (see postgres.backfill_search)
    BACKFILL_SEARCH,
)

# Round-robin assignment: the member each pool gave a stage to last.
_V6: tuple[str, ...] = (
    """CREATE TABLE flowctl.pick_turns (
        pool TEXT COLLATE "C" PRIMARY KEY,
        "user" TEXT COLLATE "C" NOT NULL,
        at TEXT COLLATE "C" NOT NULL
    )""",
)

# A notification's subject, and the channels that already took it.
_V7: tuple[str, ...] = (
    "ALTER TABLE flowctl.notifications ADD COLUMN subject TEXT COLLATE \"C\"",
    "ALTER TABLE flowctl.notifications ADD COLUMN channels_done TEXT COLLATE \"C\"",
)

# MIGRATIONS[i]: the statements that take a store from version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
SCHEMA_VERSION = len(MIGRATIONS)

# What an operator's role may do, table by table (``flowctl db grant USER``).
# The journal, its tail's history, attachments and definitions only grow:
# no UPDATE, DELETE or TRUNCATE is granted on them (the tail's one row moves
# forward, which its trigger checks).
OPERATOR_PRIVILEGES: dict[str, str] = {
    "schema_version": "SELECT",
    "definitions": "SELECT, INSERT",
    "instances": "SELECT, INSERT, UPDATE",
    "instance_principals": "SELECT, INSERT, DELETE",
    "id_counters": "SELECT, INSERT, UPDATE",
    "journal": "SELECT, INSERT",
    "journal_tail": "SELECT, INSERT, UPDATE",
    "timers": "SELECT, INSERT, UPDATE",
    "notifications": "SELECT, INSERT, UPDATE",
    "attachment_blobs": "SELECT, INSERT",
    "attachments": "SELECT, INSERT",
    "instance_search": "SELECT, INSERT, UPDATE",
    "pick_turns": "SELECT, INSERT, UPDATE",
}


def quote_ident(name: str) -> str:
    """An SQL identifier, double-quoted (a role name may hold any character)."""
    return '"' + name.replace('"', '""') + '"'


def grant_statements(role: str) -> list[str]:
    """The statements that let ``role`` work as an operator (and nothing more)."""
    who = quote_ident(role)
    out = [f"GRANT USAGE ON SCHEMA flowctl TO {who}"]
    for table, privileges in OPERATOR_PRIVILEGES.items():
        out.append(f"REVOKE ALL ON flowctl.{table} FROM {who}")
        out.append(f"GRANT {privileges} ON flowctl.{table} TO {who}")
    out.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA flowctl TO {who}")
    return out

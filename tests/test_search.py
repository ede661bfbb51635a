"""``flowctl list --where`` (record conditions) and ``--search`` (the store's
full-text index): what matches, in which order, within what the user may see,
and the refusals, which write nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl.store import migrations as schema
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"
KEY = "key-account-filing-approval"
CONTRACT = "contract-approval"


class Cli:
    def __init__(self, tmp_path: Path, db: str | None = None) -> None:
        self.db = db or str(tmp_path / "flowctl.db")
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": self.db, "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None, "FLOWCTL_USER": None, "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, user: str = "grace", code: int = 0) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def ids(self, *args: str, user: str = "grace") -> list[str]:
        rows = json.loads(self("list", *args, "--json", user=user).stdout)
        return [row["id"] for row in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """Three instances, on each backend (PostgreSQL: the server the tests start)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return _three(Cli(tmp_path, url))


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    return _three(Cli(tmp_path))


def _three(c: Cli) -> Cli:
    # 1: at edit-customer, record owner=alice, a note about a trade fair
    c("start", KEY, "--set", "owner=alice", "--note", "Met at the trade fair; retail chain",
      user="alice")
    # 2: moved on to level-approval with a comment; level=key
    c("start", KEY, "--set", "owner=alice", "--note", "ACME Corp: 合同审批 pending",
      user="alice")
    c("advance", f"{KEY}-2", "--result", "done", "--set", "level=key", "--set", "type=retail",
      "--comment", "Strategic partner since 2019", user="alice")
    # 3: bob's, level normal
    c("start", KEY, "--set", "owner=bob", user="bob")
    c("advance", f"{KEY}-3", "--result", "done", "--set", "level=normal", "--set",
      "type=wholesale", user="bob")
    return c


def test_search_finds_notes_comments_record_and_stage_names(cli: Cli) -> None:
    assert cli.ids("--search", "trade fair") == [f"{KEY}-1"]
    assert cli.ids("--search", "STRATEGIC") == [f"{KEY}-2"]  # any case
    assert cli.ids("--search", "wholesale") == [f"{KEY}-3"]  # a record text value
    assert cli.ids("--search", "Level approval") == [f"{KEY}-2"]  # its current stage's name
    assert cli.ids("--search", "Edit customer") == [f"{KEY}-1"]
    # two Chinese characters are a whole word: matched without spaces around them
    assert cli.ids("--search", "合同") == [f"{KEY}-2"]
    assert sorted(cli.ids("--search", "大客户备案")) == [f"{KEY}-1", f"{KEY}-2", f"{KEY}-3"]
    # every word must match, wherever it is
    assert cli.ids("--search", "acme strategic") == [f"{KEY}-2"]
    assert cli.ids("--search", "acme fair") == []


def test_search_ranks_the_best_match_first(cli: Cli) -> None:
    cli("note", f"{KEY}-3", "retail retail retail: the retail chain of the year", user="bob")
    # 3 says "retail" five times (note and record), 1 and 2 once or twice
    assert cli.ids("--search", "retail")[0] == f"{KEY}-3"


def test_search_keeps_other_filters_and_what_the_user_may_see(cli: Cli) -> None:
    assert cli.ids("--search", "key", "--status", "completed") == [f"{KEY}-3"]
    assert len(cli.ids("--search", "key", "--limit", "2")) == 2
    # bob started only 3 and holds nothing else: alice's instances stay hidden
    assert cli.ids("--search", "Key Account", user="bob") == [f"{KEY}-3"]
    assert cli.ids("--search", "trade", user="bob") == []


def test_the_index_follows_changes_of_note_and_record(cli: Cli) -> None:
    cli("note", f"{KEY}-1", "Now: a bakery", user="alice")
    assert cli.ids("--search", "trade fair") == []
    assert cli.ids("--search", "bakery") == [f"{KEY}-1"]


def test_where_filters_on_record_fields_with_the_condition_language(cli: Cli) -> None:
    assert cli.ids("--where", 'record.owner == "alice"') == [f"{KEY}-2", f"{KEY}-1"]
    assert cli.ids("--where", 'record.level == "key" or record.type == "wholesale"') == [
        f"{KEY}-3", f"{KEY}-2"]
    # a field with no value yet does not match an order or truth test
    assert cli.ids("--where", 'record.level != "normal"', "--status", "active") == [
        f"{KEY}-2", f"{KEY}-1"]
    assert cli.ids("--where", 'record.owner == "alice"', "--search", "acme") == [f"{KEY}-2"]
    assert cli.ids("--where", 'record.owner == "alice"', "--limit", "1") == [f"{KEY}-2"]


@pytest.mark.parametrize(("where", "message"), [
    ('record.ownr == "alice"',
     "flowctl: error: --where 'record.ownr == \"alice\"': no field 'ownr' in any process in "
     "the store\nflowctl: hint: did you mean 'record.owner'?\n"),
    ("record.owner > 3",
     "flowctl: error: --where 'record.owner > 3': record.owner (a user field) cannot be ordered "
     "with >: a user field has no order; compare with == or in (process "
     "key-account-filing-approval, FL304)\n"),
    ("record.owner ==",
     "flowctl: error: --where 'record.owner ==': syntax error: the condition ends too early "
     "(at character 16)\nflowctl: hint: see docs/conditions.md; e.g. --where "
     "'record.amount > 100000'\n"),
])
def test_where_is_checked_like_a_decision_before_anything_is_read(
    cli: Cli, where: str, message: str
) -> None:
    result = cli("list", "--where", where, code=2)
    assert (result.stdout, result.stderr) == ("", message)


def test_where_names_the_fields_of_the_process_asked_about(cli: Cli) -> None:
    result = cli("list", "--process", KEY, "--where", "record.amount > 1", code=2)
    assert result.stderr == (
        "flowctl: error: --where 'record.amount > 1': no field 'amount' in "
        "key-account-filing-approval\nflowctl: hint: fields: approved_by, level, note, owner,"
        " previous_owner, type\n")
    result = cli("list", "--process", CONTRACT, "--where", "record.amount > 1", code=2)
    assert result.stderr.endswith("flowctl: hint: fields: (none: no instances yet)\n")


def test_empty_search_is_refused(cli: Cli) -> None:
    result = cli("list", "--search", "  ", code=2)
    assert result.stderr == (
        "flowctl: error: --search needs a word to look for\nflowctl: hint: e.g. --search ACME\n")


def test_refused_filters_create_no_store(tmp_path: Path) -> None:
    c = Cli(tmp_path)
    c("list", "--search", "acme", code=4)
    c("list", "--where", 'record.owner == "x"', code=4)
    assert list(tmp_path.iterdir()) == []


def test_the_journal_still_verifies_and_repair_keeps_the_search_trigger(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("journal", "verify").exit_code == 0
    with sqlite3.connect(cli.db) as conn:
        conn.execute("CREATE TRIGGER sneaky AFTER INSERT ON journal BEGIN SELECT 1; END")
    out = cli("journal", "verify", code=1).stdout
    assert "an unexpected trigger sneaky is on the journal" in out
    assert "instance_search_comment" not in out
    cli("db", "repair")
    cli("advance", f"{KEY}-1", "--result", "done", "--set", "level=key", "--set", "type=x",
        "--comment", "after the repair", user="alice")
    assert cli.ids("--search", "after the repair") == [f"{KEY}-1"]


def test_a_version_4_store_is_indexed_when_it_upgrades(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqliteStore.open(db, migrations=schema.MIGRATIONS[:4]).close()
    source = (ROOT / "processes" / f"{KEY}.yaml").read_text(encoding="utf-8")
    with sqlite3.connect(db) as conn:  # rows as a flowctl of store version 4 wrote them
        conn.execute("INSERT INTO definitions VALUES ('d', ?, ?, ?)", (KEY, source, NOW))
        conn.execute(
            "INSERT INTO instances (id, process_id, definition_digest, status, stage, initiator,"
            " started_at, updated_at, version, state) VALUES"
            " ('old-1', ?, 'd', 'active', 'level-approval', 'alice', ?, ?, 1, ?)",
            (KEY, NOW, NOW, json.dumps({"record": {"owner": "alice", "type": "Bäckerei"},
                                        "note": "from before the index"})))
    with SqliteStore.open(db) as store:
        assert store.settings()["user_version"] == schema.SCHEMA_VERSION
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT names, record, notes FROM instance_search").fetchall() == [(
            f"{KEY} level-approval 大客户备案审批流程 (Key Account Filing Approval) "
            "Level approval", "alice Bäckerei", "from before the index")]


def test_definition_names_of_an_older_store_come_from_its_yaml() -> None:
    names = json.loads(schema.definition_names(
        "id: p\nname: Pay 付款\nstages:\n  - id: a\n    name: Approve\n  - id: b\n"))
    assert names == {"process": "Pay 付款", "stages": {"a": "Approve"}}
    assert json.loads(schema.definition_names(":\n- [")) == {"process": "", "stages": {}}


def test_postgresql_searches_a_gin_indexed_tsvector(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    c = _three(Cli(tmp_path, pg_url))
    with psycopg.connect(pg_url) as conn:
        (index,) = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'instance_search_words'"
        ).fetchone() or ("",)
        words = conn.execute(
            "SELECT words::text FROM flowctl.instance_search WHERE instance_id = %s",
            (f"{KEY}-2",)).fetchone()
    assert "USING gin (words)" in index
    assert words is not None
    assert "'合'" in words[0]
    assert "'strategic'" in words[0]
    # a word matches the words that begin with it (on SQLite: any part of a word)
    assert c.ids("--search", "strat") == [f"{KEY}-2"]
    assert c.ids("--search", "!!!") == []

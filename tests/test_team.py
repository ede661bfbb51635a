"""A team's store on PostgreSQL, through the real command line: every command
on a server, the identity from the database login, db migrate / copy / grant,
and an unreachable server. Against the tests' own server (tests/pgserver.py)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from clirun import invoke, trust_workspace
from pgserver import PgServer, query

from flowctl.store.pg_schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
KEY = "key-account-filing-approval"
NOW = "2026-12-01T09:00:00Z"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, code: int = 0, **env: str) -> tuple[str, str]:
    result = invoke(list(args), env={"FLOWCTL_NOW": NOW, **env})
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def work(db: str) -> None:
    """A little history: two instances, results, a comment."""
    run("start", KEY, "--as", "alice", "--set", "owner=alice", "--db", db)
    run("advance", f"{KEY}-1", "--as", "alice", "--result", "done", "--set", "level=key",
        "--db", db)
    run("note", f"{KEY}-1", "ACME wants it fast", "--as", "alice", "--db", db)
    run("start", "contract-approval", "--as", "alice", "--db", db)


def test_every_command_works_the_same_on_a_server(folder: Path, pg_url: str) -> None:
    trust_workspace(folder)
    work(pg_url)
    work(str(folder / "local.db"))
    for args in (["inbox", "--as", "carol"], ["list", "--as", "grace", "--status", "active"],
                 ["show", f"{KEY}-1", "--as", "carol"], ["journal", f"{KEY}-1", "--as", "grace"],
                 ["list", "--as", "grace", "--search", "acme"],
                 ["report", "--as", "grace", "--json"], ["overdue", "--as", "grace"],
                 ["export", "--format", "csv", "--as", "grace"]):
        on_server = run(*args, "--db", pg_url)[0]
        on_file = run(*args, "--db", str(folder / "local.db"))[0]
        assert on_server == on_file, args
    out = run("journal", "verify", "--db", pg_url)[0]
    assert out == "journal intact: 9 entries, hash chain verified\n"
    assert out == run("journal", "verify", "--db", str(folder / "local.db"))[0]


def test_db_copy_moves_a_sqlite_history_onto_the_server_with_the_same_head(
    folder: Path, pg_url: str
) -> None:
    trust_workspace(folder)
    local = str(folder / "local.db")
    work(local)
    head = json.loads(run("journal", "checkpoint", "--json", "--db", local)[0])
    out = run("db", "copy", "--db", local, "--to", pg_url, "--json")[0]
    copied = json.loads(out)
    assert copied["rows"]["journal"] == 9
    assert copied["rows"]["instances"] == 2
    assert copied["head"] == {"seq": head["seq"], "hash": head["hash"]}
    copy_head = json.loads(run("journal", "checkpoint", "--json", "--db", pg_url)[0])
    assert copy_head["hash"] == head["hash"]
    assert run("journal", "verify", "--db", pg_url)[0].startswith("journal intact: 9 entries")
    # the copy goes on working: ids continue, search finds the copied note
    run("start", KEY, "--as", "bob", "--set", "owner=bob", "--db", pg_url)
    assert f"{KEY}-2" in run("list", "--as", "grace", "--db", pg_url)[0]
    assert run("list", "--as", "grace", "--search", "acme", "--db", pg_url)[0].count(KEY) == 1

    # a target that holds anything is refused, and left as it was
    before = query(pg_url, "SELECT count(*) FROM journal")
    _, err = run("db", "copy", "--db", local, "--to", pg_url, code=4)
    assert err.startswith(f"flowctl: error: {pg_url} is not empty: it holds instances or "
                          "journal entries; db copy only fills an empty store")
    assert query(pg_url, "SELECT count(*) FROM journal") == before


def test_db_copy_refuses_a_journal_that_does_not_verify(
    folder: Path, pg_server: PgServer, pg_url: str
) -> None:
    trust_workspace(folder)
    local = str(folder / "local.db")
    work(local)
    conn = sqlite3.connect(local)
    conn.execute("DROP TRIGGER journal_no_update")
    conn.execute("UPDATE journal SET actor = 'mallory' WHERE seq = 3")
    conn.commit()
    conn.close()
    _, err = run("db", "copy", "--db", local, "--to", pg_url, code=4)
    assert err.splitlines()[0] == (
        "flowctl: error: the journal to copy does not verify: entry 3 (instance "
        f"{KEY}-1): hash does not match its content (changed after it was written); nothing "
        f"was written to {pg_url}")
    assert query(pg_url, "SELECT count(*) FROM instances") == [(0,)]


def test_db_copy_wants_a_server_url(folder: Path) -> None:
    _, err = run("db", "copy", "--to", "other.db", code=2)
    assert err.splitlines()[0] == (
        "flowctl: error: --to other.db: db copy moves a store onto a PostgreSQL server, "
        "named by a postgresql:// URL")


def test_db_migrate_creates_the_schema_and_then_has_nothing_to_do(pg_url: str,
                                                                   folder: Path) -> None:
    n = SCHEMA_VERSION
    assert run("db", "migrate", "--db", pg_url)[0] == f"{pg_url}: schema 0 -> {n}\n"
    assert run("db", "migrate", "--db", pg_url)[0] == (
        f"{pg_url}: schema {n}, up to date; nothing was changed\n")
    query(pg_url, "UPDATE schema_version SET version = 9")
    _, err = run("db", "migrate", "--db", pg_url, code=4)
    assert err.splitlines()[0] == (
        f"flowctl: error: database {pg_url} was written by a newer flowctl (schema 9; this "
        f"flowctl knows up to {n}); upgrade flowctl")


def test_the_acting_user_is_the_database_login(
    folder: Path, pg_server: PgServer, pg_url: str
) -> None:
    """identity = "login" (the default) on a server: who you are is your database
    login (db_login in org.yaml, else the same id), not the machine's user."""
    org = (folder / "processes" / "org.yaml").read_text("utf-8")
    org = org.replace("  - id: carol\n", "  - id: carol\n    db_login: carol_w\n", 1)
    (folder / "processes" / "org.yaml").write_text(org, "utf-8")
    run("db", "migrate", "--db", pg_url)
    for login in ("alice", "carol_w", "grace", "bob"):
        run("db", "grant", login, "--db", pg_url)
    base = pg_server.url().split("@")[0] + "@"
    as_login = {name: pg_url.replace(base, f"postgresql://{name}@") for name in
                ("alice", "carol_w", "grace", "bob")}
    out, _ = run("start", KEY, "--set", "owner=alice", "--db", as_login["alice"])
    assert out.startswith(f"{KEY}-1: started")
    run("advance", f"{KEY}-1", "--result", "done", "--set", "level=key",
        "--db", as_login["alice"])
    # bob's login may not act as carol; grace (admin) may, and the journal says so
    _, err = run("advance", f"{KEY}-1", "--result", "approve", "--as", "carol",
                 "--db", as_login["bob"], code=1)
    assert err.startswith("flowctl: error: bob asked to act as carol (--as carol): only users "
                          "with the admin role may act for someone else")
    out, _ = run("inbox", "--db", as_login["carol_w"])
    assert f"{KEY}-1" in out
    run("advance", f"{KEY}-1", "--result", "approve", "--as", "carol",
        "--db", as_login["grace"])
    entries = json.loads(run("journal", f"{KEY}-1", "--format", "json",
                             "--db", as_login["grace"])[0])
    approved = [e for e in entries if e["kind"] == "result" and e["result"] == "approve"]
    assert [(e["actor"], e["data"].get("by")) for e in approved] == [("carol", "grace")]
    # a login that is no user of the org directory is refused, naming it
    run("db", "grant", "mallory", "--db", pg_url)
    _, err = run("inbox", "--db", pg_url.replace(base, "postgresql://mallory@"), code=2)
    assert err.startswith("flowctl: error: your database login 'mallory' is not a user of the "
                          "org directory")


def test_db_grant_on_a_sqlite_store_is_refused(folder: Path) -> None:
    _, err = run("db", "grant", "olga", "--db", "x.db", code=2)
    assert err.startswith("flowctl: error: db grant gives a login of a PostgreSQL server "
                          "access to its store; the store here is a SQLite file (x.db (from "
                          "--db))")
    assert not os.path.exists("x.db")


def test_an_unreachable_server_is_named_exit_4_and_nothing_is_done(folder: Path) -> None:
    trust_workspace(folder)
    url = "postgresql://olga:s3cret@127.0.0.1:1/approvals"
    _, err = run("start", KEY, "--as", "alice", "--set", "owner=alice", "--db", url, code=4)
    assert err.splitlines()[0].startswith(
        "flowctl: error: cannot reach the PostgreSQL server at 127.0.0.1:1/approvals "
        "(postgresql://olga:***@127.0.0.1:1/approvals): ")
    assert "s3cret" not in err
    assert sorted(os.listdir(folder)) == ["flowctl.toml", "processes"]


def test_config_never_shows_the_password(folder: Path) -> None:
    (folder / "flowctl.toml").write_text(
        'store = "postgresql://olga:s3cret@db.example.com/approvals?password=s3cret"\n')
    out, _ = run("config")
    assert "s3cret" not in out
    assert ("store      postgresql://olga:***@db.example.com/approvals?password=***  "
            "from flowctl.toml") in out
    data = json.loads(run("config", "--json")[0])
    assert data["store"] == {"value": "postgresql://olga:***@db.example.com/approvals"
                                      "?password=***", "source": "flowctl.toml", "exists": None}


def console_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) of each ``console`` block's first command."""
    out = []
    for block in text.split("```console\n")[1:]:
        lines = block.split("```", 1)[0].splitlines()
        out.append((lines[0].removeprefix("$ "), lines[1:]))
    return out


def test_team_md_prints_what_flowctl_prints(folder: Path) -> None:
    """docs/team.md: the workspace file and `flowctl config`, and the refusal
    when the server is unreachable, are what flowctl prints."""
    import shlex

    text = (ROOT / "docs" / "team.md").read_text("utf-8")
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (folder / "flowctl.toml").write_text(toml, "utf-8")
    blocks = dict(console_blocks(text))
    out, _ = run("config")
    assert out.splitlines() == blocks["flowctl config"]
    unreachable = next(c for c in blocks if "127.0.0.1:1" in c)
    _, err = run(*shlex.split(unreachable)[1:], code=4)
    assert err.splitlines() == blocks[unreachable]
    assert sorted(os.listdir(folder)) == ["flowctl.toml", "processes"]

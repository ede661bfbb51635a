"""Attachments: a file's bytes kept in the store by their SHA-256, journalled,
capped in size, listed by show, returned byte for byte, checked by verify."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl.store import migrations as schema
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"
KEY = "key-account-filing-approval"
K1 = f"{KEY}-1"
BLOB = b"%PDF-1.7\x00\x01\x02\xff\xfe\x00 signed\r\n\x00"
SHA = hashlib.sha256(BLOB).hexdigest()
CAP = 10 * 1024 * 1024


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = str(tmp_path / "flowctl.db")
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": self.db, "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None, "FLOWCTL_USER": None, "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, user: str = "alice", code: int = 0) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self("journal", K1, "--json").stdout)
        return entries

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path)
    c("start", KEY, "--set", "owner=alice")
    return c


def scan(cli: Cli, content: bytes = BLOB, name: str = "scan.bin") -> str:
    path = cli.tmp / name
    path.write_bytes(content)
    return str(path)


def test_attach_keeps_the_bytes_journals_them_and_show_lists_them(cli: Cli) -> None:
    path = scan(cli)
    out = cli("attach", K1, path, "--name", "signed contract.pdf").stdout.splitlines()
    assert out == [
        f"{K1}: attached signed contract.pdf (version 1, 24 bytes, sha256 {SHA[:12]})",
        f"{K1}: at 'edit-customer', waiting for alice (initiator)",
    ]
    last = cli.journal()[-1]
    assert {k: last[k] for k in ("actor", "kind", "stage", "version", "data")} == {
        "actor": "alice", "kind": "attached", "stage": "edit-customer", "version": 2,
        "data": {"name": "signed contract.pdf", "version": 1, "size": 24, "sha256": SHA},
    }
    assert cli.rows("SELECT instance_id, name, version, sha256, size, added_by, added_at"
                    " FROM attachments") == [
        (K1, "signed contract.pdf", 1, SHA, 24, "alice", NOW)]
    assert cli.rows("SELECT sha256, size, content FROM attachment_blobs") == [(SHA, 24, BLOB)]
    card = cli("show", K1).stdout.splitlines()
    at = card.index("attachments:")
    assert card[at:at + 3] == [
        "attachments:",
        f"  signed contract.pdf  v1  24 bytes  sha256 {SHA[:12]}  by alice, {NOW}",
        "history:",
    ]
    assert card[-1] == (
        f"  {NOW}  v2  alice  attached  signed contract.pdf (version 1, 24 bytes,"
        f" sha256 {SHA[:12]})"
    )
    shown = json.loads(cli("show", K1, "--json").stdout)
    assert shown["instance"]["attachments"] == [{
        "name": "signed contract.pdf", "version": 1, "size": 24, "sha256": SHA,
        "by": "alice", "at": NOW,
    }]
    assert cli("attachment", "list", K1).stdout == (
        f"signed contract.pdf  v1  24 bytes  sha256 {SHA[:12]}  by alice, {NOW}\n"
    )
    # the name defaults to the file's name; anyone who may see the instance may attach
    cli("share", K1, "bob")
    cli("attach", K1, scan(cli, b"other", "notes.txt"), user="bob")
    assert [(a["name"], a["by"]) for a in json.loads(
        cli("attachment", "list", K1, "--json").stdout)] == [
        ("signed contract.pdf", "alice"), ("notes.txt", "bob")]


def test_get_returns_the_same_bytes_to_a_file_or_stdout(cli: Cli) -> None:
    cli("attach", K1, scan(cli))
    target = cli.tmp / "out.bin"
    result = cli("attachment", "get", K1, "scan.bin", "-o", str(target))
    assert result.stdout == ""
    assert result.stderr == (
        f"{K1}: wrote 'scan.bin' version 1 (24 bytes, sha256 {SHA[:12]}) to {target}\n"
    )
    assert target.read_bytes() == BLOB
    assert cli("attachment", "get", K1, "scan.bin", "-o", "-").stdout_bytes == BLOB


def test_get_does_not_overwrite_a_file_unless_forced(cli: Cli) -> None:
    cli("attach", K1, scan(cli))
    target = cli.tmp / "out.bin"
    target.write_bytes(b"keep me")
    result = cli("attachment", "get", K1, "scan.bin", "-o", str(target), code=1)
    assert result.stderr == (
        f"flowctl: error: {target} exists; nothing was written (the attachment is not"
        " written over a file)\n"
        "flowctl: hint: add --force to replace it, or choose another path with -o\n"
    )
    assert target.read_bytes() == b"keep me"
    cli("attachment", "get", K1, "scan.bin", "-o", str(target), "--force")
    assert target.read_bytes() == BLOB


def test_a_name_attached_again_is_its_next_version(cli: Cli) -> None:
    first = scan(cli)
    cli("attach", K1, first)
    (cli.tmp / "v2").mkdir()
    second = scan(cli, b"revised\x00", "v2/scan.bin")
    out = cli("attach", K1, second).stdout.splitlines()
    sha2 = hashlib.sha256(b"revised\x00").hexdigest()
    assert out[0] == f"{K1}: attached scan.bin (version 2, 8 bytes, sha256 {sha2[:12]})"
    assert cli("attachment", "get", K1, "scan.bin", "-o", "-").stdout_bytes == b"revised\x00"
    assert cli("attachment", "get", K1, "scan.bin", "--version", "1",
               "-o", "-").stdout_bytes == BLOB
    refused = cli("attachment", "get", K1, "scan.bin", "--version", "3", "-o", "-", code=2)
    assert refused.stderr == (
        f"flowctl: error: {K1} has no version 3 of 'scan.bin'; versions: 1, 2\n"
    )
    # the same bytes as the latest version again: refused, nothing written
    before = cli.journal()
    again = cli("attach", K1, second, code=1)
    assert again.stderr == (
        f"flowctl: error: {K1} already has these bytes as 'scan.bin' (version 2,"
        f" sha256 {sha2[:12]}); nothing was written\n"
        "flowctl: hint: attach a changed file, or give it another name with --name NAME\n"
    )
    assert cli.journal() == before


def test_a_file_over_the_cap_is_refused_and_nothing_is_written(cli: Cli) -> None:
    big = cli.tmp / "big.bin"
    big.write_bytes(b"\x00" * (CAP + 1))
    before = cli.journal()
    result = cli("attach", K1, str(big), code=1)
    assert result.stdout == ""
    assert result.stderr == (
        f"flowctl: error: cannot attach {big}: it is 10.0 MiB ({CAP + 1} bytes); attachments"
        f" are limited to 10 MiB ({CAP} bytes); nothing was written\n"
        "flowctl: hint: attach a smaller file, or link to where the file is kept"
        " (flowctl link INSTANCE KIND REF)\n"
    )
    assert cli.journal() == before
    assert cli.rows("SELECT count(*) FROM attachments") == [(0,)]
    assert cli.rows("SELECT count(*) FROM attachment_blobs") == [(0,)]
    # exactly the cap is accepted
    big.write_bytes(b"\x00" * CAP)
    cli("attach", K1, str(big))
    assert cli.rows("SELECT size FROM attachments") == [(CAP,)]


def test_refusals_of_attach_and_get(cli: Cli) -> None:
    missing = cli.tmp / "nope.pdf"
    assert cli("attach", K1, str(missing), code=2).stderr == (
        f"flowctl: error: cannot read {missing}: No such file or directory\n"
    )
    bad = cli("attach", K1, scan(cli), "--name", "a/b", code=2)
    assert bad.stderr.startswith(
        "flowctl: error: attachment name 'a/b' is not allowed: a name is 1 to 255 characters,"
    )
    assert cli("attach", "nope-1", scan(cli), code=2).stderr.startswith(
        "flowctl: error: no instance 'nope-1'"
    )
    assert cli("attachment", "get", K1, "x.pdf", "-o", "-", code=2).stderr == (
        f"flowctl: error: {K1} has no attachment 'x.pdf'; it has none\n"
        f"flowctl: hint: `flowctl show {K1}` lists its attachments\n"
    )
    assert cli.rows("SELECT count(*) FROM attachments") == [(0,)]


def test_attachments_are_append_only(cli: Cli) -> None:
    cli("attach", K1, scan(cli))
    with sqlite3.connect(cli.db) as conn:
        for sql, message in (
            ("UPDATE attachment_blobs SET content = x'00'",
             "attachment contents are append-only: they cannot be changed"),
            ("DELETE FROM attachment_blobs", "attachment contents are append-only:"
             " they cannot be deleted"),
            ("UPDATE attachments SET sha256 = 'x'",
             "attachments are append-only: they cannot be changed"),
            ("DELETE FROM attachments", "attachments are append-only: they cannot be deleted"),
            ("INSERT OR REPLACE INTO attachments (id, instance_id, name, version, sha256, size,"
             f" added_by, added_at) VALUES (1, '{K1}', 'x', 1, '{SHA}', 24, 'eve', '{NOW}')",
             "attachments are append-only: an attachment cannot be replaced"),
        ):
            with pytest.raises(sqlite3.IntegrityError, match=message):
                conn.execute(sql)
        # a blob inserted again (even with REPLACE) keeps the first bytes
        conn.execute("INSERT OR REPLACE INTO attachment_blobs VALUES (?, 1, x'00')", (SHA,))
        assert conn.execute("SELECT content FROM attachment_blobs").fetchall() == [(BLOB,)]


def test_verify_detects_a_tampered_attachment(cli: Cli) -> None:
    cli("attach", K1, scan(cli))
    assert cli("journal", "verify").exit_code == 0
    forged = BLOB.replace(b"signed", b"SIGNED")
    with sqlite3.connect(cli.db) as conn:
        conn.execute("DROP TRIGGER attachment_blobs_no_update")
        conn.execute("UPDATE attachment_blobs SET content = ?", (forged,))
    result = cli("journal", "verify", code=1)
    line = (
        f"  attachment 'scan.bin' version 1 of {K1}: content does not match its SHA-256"
        f" (recorded {SHA}, 24 bytes; found {hashlib.sha256(forged).hexdigest()}, 24 bytes)"
    )
    assert line in result.stdout.splitlines()
    assert "BROKEN" in result.stdout
    # get refuses bytes that do not match their hash
    got = cli("attachment", "get", K1, "scan.bin", "-o", "-", code=4)
    assert got.stdout == ""
    assert got.stderr.startswith(
        f"flowctl: error: the stored bytes of 'scan.bin' (version 1) of {K1} do not match"
        " their SHA-256; nothing was written\n"
    )


def test_verify_detects_an_attachment_row_pointed_at_other_bytes(cli: Cli) -> None:
    cli("attach", K1, scan(cli))
    cli("attach", K1, scan(cli, b"other", "other.bin"))
    other = hashlib.sha256(b"other").hexdigest()
    with sqlite3.connect(cli.db) as conn:
        conn.execute("DROP TRIGGER attachments_no_update")
        conn.execute("UPDATE attachments SET sha256 = ?, size = 5 WHERE name = 'scan.bin'",
                     (other,))
    result = cli("journal", "verify", code=1)
    assert (
        f"  attachment 'scan.bin' version 1 of {K1}: not the file the journal recorded"
        f" (journal: sha256 {SHA}, 24 bytes; stored: sha256 {other}, 5 bytes)"
    ) in result.stdout.splitlines()


def test_a_version_3_store_upgrades_and_takes_attachments(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqliteStore.open(db, migrations=schema.MIGRATIONS[:3]).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    c = Cli(tmp_path)
    c.db = str(db)
    c.env["FLOWCTL_DB"] = str(db)
    c("start", KEY, "--set", "owner=alice")
    c("attach", K1, scan(c))
    with SqliteStore.open(db) as store:
        assert store.settings()["user_version"] == schema.SCHEMA_VERSION
        assert [(a.name, a.sha256) for a in store.attachments(K1)] == [("scan.bin", SHA)]
        assert store.attachment_content(SHA) == BLOB
        assert store.verify_attachments() == (1, ())

"""What `flowctl journal verify` proves, and what it reports when the store was
tampered with: wrongly typed rows, dropped triggers (and `flowctl db repair`),
a wiped journal beside its instances, a read-only copy, and checkpoints kept
outside the store (`flowctl journal checkpoint`, `verify --checkpoint`).

Each tamperer here writes the SQLite file directly, as anyone who can write
the file can; the tests run the real entry point (tests/clirun.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import invoke
from typer.testing import Result

from flowctl.store import migrations as schema
from flowctl.store.chain import entry_hash_text
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
NOW = "2026-11-23T09:00:00Z"
LATER = "2026-11-23T10:00:00Z"
KEY = "key-account-filing-approval"
K1 = f"{KEY}-1"
TRIGGERS = tuple(schema.JOURNAL_ALL_TRIGGERS)
UNPROTECTED = "the journal is not protected against changes (restore it with `flowctl db repair`)"


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = str(tmp_path / "flowctl.db")
        self.env: dict[str, str | None] = {
            "FLOWCTL_DB": self.db, "FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_NOW": NOW,
            "FLOWCTL_ORG": None, "FLOWCTL_USER": "alice", "FLOWCTL_DEBUG": None,
        }

    def __call__(self, *args: str, code: int = 0, user: str = "alice",
                 now: str = NOW) -> Result:
        result = invoke(list(args), env={**self.env, "FLOWCTL_USER": user, "FLOWCTL_NOW": now})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def out(self, *args: str, code: int = 0) -> list[str]:
        result = self(*args, code=code)
        assert result.stderr == ""
        return result.stdout.splitlines()

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self("journal", "--json").stdout)
        return entries

    def sql(self, *statements: str) -> None:
        conn = sqlite3.connect(self.db)
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def four_versions(cli: Cli) -> None:
    """K1 at version 4, at 'level-approval'; the journal holds entries 1..8."""
    cli("start", KEY, "--set", "owner=alice")
    cli("advance", K1, "-r", "done", "--set", "level=key")
    cli("note", K1, "first call made")
    cli("note", K1, "second call made")
    assert cli.rows(f"SELECT version, stage FROM instances WHERE id = '{K1}'") == [
        (4, "level-approval")]
    assert cli.rows("SELECT max(seq) FROM journal") == [(8,)]


def drop_triggers(cli: Cli, *names: str) -> None:
    cli.sql(*(f"DROP TRIGGER {name}" for name in names or TRIGGERS))


def restore_triggers(cli: Cli) -> None:
    """What a careful tamperer does last: the triggers exactly as flowctl made them."""
    cli.sql(*(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
            *schema.JOURNAL_ALL_TRIGGERS.values())


def rechain(cli: Cli, start: int) -> None:
    """Recompute every hash from entry ``start`` on, and the tail: what someone who
    can write the file and knows chain.py does after rewriting history."""
    conn = sqlite3.connect(cli.db)
    rows = conn.execute("SELECT seq, instance_id, at, actor, kind, version, stage, result, "
                        "data, prev_hash, hash FROM journal ORDER BY seq").fetchall()
    prev = ""
    for row in rows:
        seq = row[0]
        if seq >= start:
            digest = entry_hash_text(seq, row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                                     row[8], prev)
            conn.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?",
                         (prev, digest, seq))
            prev = digest
        else:
            prev = row[10]
    last = rows[-1][0] if rows else 0
    conn.execute("DELETE FROM journal_tail")
    if rows:
        conn.execute("INSERT INTO journal_tail (id, seq, hash) VALUES (1, ?, ?)", (last, prev))
    conn.commit()
    conn.close()


# ------------------------------------------------------ tampered rows never crash it


def test_wrongly_typed_rows_are_broken_lines_and_exit_1(cli: Cli) -> None:
    """Before: `version='abc'` made verify exit 3 with a traceback (int('abc')),
    `actor=x'00ff'` the same (a blob is not text)."""
    four_versions(cli)
    drop_triggers(cli, "journal_no_update")
    cli.sql("UPDATE journal SET version = 'abc' WHERE seq = 2",
            "UPDATE journal SET actor = x'00ff' WHERE seq = 3",
            "UPDATE journal SET kind = CAST(x'ff' AS TEXT) WHERE seq = 4",
            "UPDATE journal SET version = 4.5 WHERE seq = 5")
    result = cli("journal", "verify", code=1)
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "journal BROKEN: 5 problem(s) in 8 entries",
        f"  the append-only trigger journal_no_update is missing: {UNPROTECTED}",
        f"  entry 2 (instance {K1}): version holds the text 'abc', not an integer "
        "(changed after it was written)",
        f"  entry 3 (instance {K1}): actor holds a blob x'00ff', not text "
        "(changed after it was written)",
        f"  entry 4 (instance {K1}): kind holds text that is not valid UTF-8 (\\xff) "
        "(changed after it was written)",
        f"  entry 5 (instance {K1}): version holds the real number 4.5, not an integer "
        "(changed after it was written)",
    ]
    assert json.loads(cli("journal", "verify", "--json", code=1).stdout)["ok"] is False


# ------------------------------------------------------ instances against their journal


def test_a_wiped_journal_beside_an_instance_at_version_4_is_broken(cli: Cli) -> None:
    """Before: "journal intact: 0 entries" (no entry, no tail: nothing to compare)."""
    four_versions(cli)
    drop_triggers(cli, "journal_no_delete", "journal_tail_no_delete")
    cli.sql("DELETE FROM journal", "DELETE FROM journal_tail")
    restore_triggers(cli)
    assert cli.out("journal", "verify", code=1) == [
        "journal BROKEN: 1 problem(s) in 0 entries",
        f"  instance {K1} is at version 4 (active), but the journal holds no entry for it "
        "(its entries were removed)",
    ]


def test_an_instance_moved_on_behind_the_journals_back_is_broken(cli: Cli) -> None:
    four_versions(cli)
    cli.sql(f"UPDATE instances SET stage = 'edit-customer', version = 5 WHERE id = '{K1}'")
    assert cli.out("journal", "verify", code=1) == [
        "journal BROKEN: 2 problem(s) in 8 entries",
        f"  instance {K1} is at version 5, but its journal ends at version 4 (entries removed, "
        "or the instance changed outside flowctl)",
        f"  instance {K1} is at stage edit-customer, but its journal last entered stage "
        "level-approval",
    ]


# ------------------------------------------------------ the append-only triggers


def test_dropped_triggers_are_reported_refuse_every_write_and_db_repair_restores_them(
    cli: Cli,
) -> None:
    four_versions(cli)
    drop_triggers(cli, "journal_no_update", "journal_tail_forward")
    assert cli.out("journal", "verify", code=1) == [
        "journal BROKEN: 2 problem(s) in 8 entries",
        f"  the append-only trigger journal_no_update is missing: {UNPROTECTED}",
        f"  the append-only trigger journal_tail_forward is missing: {UNPROTECTED}",
    ]
    before = cli.rows("SELECT count(*) FROM journal"), cli.rows("SELECT version FROM instances")
    for args in (["advance", K1, "-r", "approve"], ["note", K1, "x"],
                 ["start", KEY, "--set", "owner=alice"]):
        result = cli(*args, code=4, user="carol" if args[0] == "advance" else "alice")
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"flowctl: error: database {cli.db}: the append-only trigger journal_no_update is "
            "missing; the append-only trigger journal_tail_forward is missing: the journal is "
            "not protected against changes, so flowctl writes nothing to it",
            "flowctl: hint: restore the triggers with `flowctl db repair` (it is journalled), "
            "then check what happened meanwhile with `flowctl journal verify`",
        ]
    assert (cli.rows("SELECT count(*) FROM journal"),
            cli.rows("SELECT version FROM instances")) == before

    assert cli.out("db", "repair") == [
        "found:",
        "  the append-only trigger journal_no_update is missing",
        "  the append-only trigger journal_tail_forward is missing",
        "restored the journal's append-only triggers (journal entry 9, store_repaired)",
        "check what happened meanwhile: flowctl journal verify --checkpoint FILE",
    ]
    last = cli.journal()[-1]
    assert (last["seq"], last["instance"], last["actor"], last["kind"], last["data"]) == (
        9, "(store)", "alice", "store_repaired",
        {"found": ["the append-only trigger journal_no_update is missing",
                   "the append-only trigger journal_tail_forward is missing"],
         "triggers_restored": list(TRIGGERS)},
    )
    assert cli.out("journal", "verify") == ["journal intact: 9 entries, hash chain verified"]
    assert cli.out("db", "repair") == [
        "the journal's append-only triggers are in place; nothing was written"]
    assert cli.rows("SELECT count(*) FROM journal") == [(9,)]
    cli("advance", K1, "-r", "approve", user="carol")  # writes work again
    assert cli.out("journal", "verify")[0].startswith("journal intact: ")


def test_a_neutered_trigger_counts_as_changed(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice")
    cli.sql("DROP TRIGGER journal_no_delete",
            "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal WHEN 0 "
            "BEGIN SELECT RAISE(ABORT, 'no'); END",
            "CREATE TRIGGER journal_sneak AFTER INSERT ON journal BEGIN SELECT 1; END")
    assert cli.out("journal", "verify", code=1)[1:] == [
        f"  the append-only trigger journal_no_delete was changed: {UNPROTECTED}",
        f"  an unexpected trigger journal_sneak is on the journal: {UNPROTECTED}",
    ]
    assert cli.out("db", "repair")[:3] == [
        "found:",
        "  the append-only trigger journal_no_delete was changed",
        "  an unexpected trigger journal_sneak is on the journal",
    ]
    assert cli.rows("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN "
                    "('journal', 'journal_tail') ORDER BY name") == [
        (name,) for name in sorted(TRIGGERS)]
    assert cli.out("journal", "verify") == ["journal intact: 3 entries, hash chain verified"]


# ------------------------------------------------------ a read-only copy


def _chattr(flag: str, *paths: Path) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, flag, *map(str, paths)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def readonly_copy(cli: Cli, tmp_path: Path) -> Iterator[Path]:
    """A copy of the store in a folder nobody can write to, root included.

    The tests run as root, whom file modes (0444, 0555) do not stop, so the
    copy and its folder are also made immutable (``chattr +i``: not even root
    can create, change or remove a file there), which is what a read-only
    mount or an auditor's read-only share does."""
    four_versions(cli)
    folder = tmp_path / "audit"
    folder.mkdir()
    copy = folder / "copy.db"
    shutil.copyfile(cli.db, copy)
    copy.chmod(0o444)
    folder.chmod(0o555)
    if not _chattr("+i", copy, folder):
        folder.chmod(0o755)
        pytest.skip("chattr +i is not available here: root could write the folder anyway")
    try:
        yield copy
    finally:
        _chattr("-i", copy, folder)
        folder.chmod(0o755)


def test_verify_reads_a_copy_in_a_read_only_folder_and_writes_nothing(
    cli: Cli, readonly_copy: Path
) -> None:
    """Before, verify opened the store read-write; in WAL mode that needs a -shm
    file beside it, which cannot be made there: exit 4 ("attempt to write a
    readonly database" / "unable to open database file"). Now it opens the
    copy read-only (SQLite ``immutable``: no -wal or -shm, no lock), gets a
    verdict, and leaves the folder and the file as they were."""
    folder = readonly_copy.parent
    data = readonly_copy.read_bytes()
    mtime = readonly_copy.stat().st_mtime_ns
    result = cli("journal", "verify", "--db", str(readonly_copy))
    assert result.stdout == "journal intact: 8 entries, hash chain verified\n"
    assert sorted(os.listdir(folder)) == ["copy.db"]
    assert readonly_copy.read_bytes() == data
    assert readonly_copy.stat().st_mtime_ns == mtime
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    cli("journal", "checkpoint", "--db", str(readonly_copy))
    assert sorted(os.listdir(folder)) == ["copy.db"]


def test_verify_sees_changes_still_in_the_write_ahead_log(cli: Cli) -> None:
    """A store someone has open keeps recent commits in its -wal file: verify reads
    them (mode=ro), not only what is already in the database file."""
    four_versions(cli)
    holder = sqlite3.connect(cli.db)  # keeps the -wal from being folded in and removed
    holder.execute("SELECT count(*) FROM journal").fetchall()
    try:
        cli("note", K1, "third call made")
        assert os.path.getsize(cli.db + "-wal") > 0
        assert cli.out("journal", "verify") == ["journal intact: 9 entries, hash chain verified"]
    finally:
        holder.close()


# ------------------------------------------------------ checkpoints


def key_file(cli: Cli, name: str = "key") -> str:
    path = cli.tmp / name
    path.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    return str(path)


def test_checkpoint_prints_the_head_and_appends_it(cli: Cli) -> None:
    four_versions(cli)
    head = cli.rows("SELECT hash FROM journal WHERE seq = 8")[0][0]
    line = json.dumps({"at": NOW, "hash": head, "seq": 8}, separators=(",", ":"))
    assert cli.out("journal", "checkpoint") == [
        f"journal head: entry 8, hash {head}, at {NOW}", line]
    points = str(cli.tmp / "elsewhere" / "checkpoints.jsonl")
    os.mkdir(cli.tmp / "elsewhere")
    assert cli.out("journal", "checkpoint", "--append", points, "--key", key_file(cli)) == [
        f"journal head: entry 8, hash {head}, at {NOW} (HMAC-SHA256 signed)",
        f"checkpoint appended to {points}",
    ]
    saved = json.loads(Path(points).read_text())
    signed = json.dumps({"at": NOW, "hash": head, "seq": 8}, separators=(",", ":")).encode()
    mac = hmac.new(b"0123456789abcdef0123456789abcdef", signed, hashlib.sha256).hexdigest()
    assert saved == {"at": NOW, "hash": head, "seq": 8, "hmac": mac}
    assert cli.out("journal", "verify", "--checkpoint", points, "--key", key_file(cli)) == [
        f"journal intact: 8 entries, hash chain verified; matches 1 checkpoint(s) in {points}"]
    assert json.loads(cli("journal", "verify", "--checkpoint", points, "--json").stdout) == {
        "ok": True, "entries": 8, "problems": [], "checkpoints": 1}


@pytest.fixture
def checkpointed(cli: Cli) -> str:
    """K1 at version 4, a signed checkpoint at entry 8 kept outside the store."""
    four_versions(cli)
    points = str(cli.tmp / "checkpoints.jsonl")
    cli("journal", "checkpoint", "--append", points, "--key", key_file(cli))
    return points


def test_a_forged_last_entry_rechained_verifies_alone_but_not_against_a_checkpoint(
    cli: Cli, checkpointed: str
) -> None:
    """The forger removes the last entry (a note) and appends one of their own in its
    place with a correctly computed hash, moves the tail, and puts the triggers back:
    the chain alone cannot tell. The checkpoint can."""
    drop_triggers(cli)
    cli.sql("DELETE FROM journal WHERE seq = 8",
            "INSERT INTO journal (seq, instance_id, process_id, at, actor, kind, version, stage,"
            f" result, data, prev_hash, hash) VALUES (8, '{K1}', '{KEY}', '{NOW}', 'carol',"
            " 'note', 4, NULL, NULL, '{\"note\":\"approved by phone\"}', '', '')")
    rechain(cli, 8)
    restore_triggers(cli)
    assert cli.out("journal", "verify") == ["journal intact: 8 entries, hash chain verified"]
    assert cli.out("journal", "verify", "--checkpoint", checkpointed, code=1) == [
        "journal BROKEN: 1 problem(s) in 8 entries",
        f"  entry 8: its hash differs from the checkpoint at line 1 (entry 8, taken {NOW}): "
        "the journal up to it was rewritten (and re-chained)",
    ]


def test_entries_appended_after_the_checkpoint_are_fine(cli: Cli, checkpointed: str) -> None:
    cli("advance", K1, "-r", "approve", user="carol", now=LATER)
    assert cli.out("journal", "verify", "--checkpoint", checkpointed)[0].startswith(
        "journal intact: ")


def test_history_rewritten_before_the_checkpoint_is_broken(
    cli: Cli, checkpointed: str
) -> None:
    drop_triggers(cli)
    cli.sql("UPDATE journal SET actor = 'mallory' WHERE seq = 3")
    rechain(cli, 3)
    restore_triggers(cli)
    cli("advance", K1, "-r", "approve", user="carol", now=LATER)  # then life goes on
    assert cli.out("journal", "verify")[0].startswith("journal intact: ")
    assert cli.out("journal", "verify", "--checkpoint", checkpointed, code=1)[1] == (
        f"  entry 8: its hash differs from the checkpoint at line 1 (entry 8, taken {NOW}): "
        "the journal up to it was rewritten (and re-chained)")


def test_a_truncated_journal_is_broken_against_the_checkpoint(
    cli: Cli, checkpointed: str
) -> None:
    drop_triggers(cli)
    cli.sql("DELETE FROM journal WHERE seq >= 7", f"UPDATE instances SET version = 2 "
            f"WHERE id = '{K1}'")
    rechain(cli, 7)
    restore_triggers(cli)
    assert cli.out("journal", "verify") == ["journal intact: 6 entries, hash chain verified"]
    assert cli.out("journal", "verify", "--checkpoint", checkpointed, code=1) == [
        "journal BROKEN: 1 problem(s) in 6 entries",
        f"  checkpoint at line 1 (entry 8, taken {NOW}): the journal ends at entry 6: entries "
        "up to 8 were removed (truncated or wiped)",
    ]


def test_a_wiped_store_is_broken_against_the_checkpoint(cli: Cli, checkpointed: str) -> None:
    drop_triggers(cli)
    cli.sql("DELETE FROM journal", "DELETE FROM journal_tail", "DELETE FROM instance_principals",
            "DELETE FROM timers", "DELETE FROM notifications", "DELETE FROM instances")
    restore_triggers(cli)
    assert cli.out("journal", "verify") == ["journal intact: 0 entries, hash chain verified"]
    assert cli.out("journal", "verify", "--checkpoint", checkpointed, code=1)[1] == (
        f"  checkpoint at line 1 (entry 8, taken {NOW}): the journal is empty: entries up to 8 "
        "were removed (truncated or wiped)")


def test_a_forged_checkpoint_fails_its_hmac(cli: Cli, checkpointed: str) -> None:
    """The forger rewrites the journal and the checkpoint file to match, but
    cannot compute the HMAC without the key."""
    drop_triggers(cli)
    cli.sql("UPDATE journal SET actor = 'mallory' WHERE seq = 5")
    rechain(cli, 5)
    restore_triggers(cli)
    point = json.loads(Path(checkpointed).read_text())
    point["hash"] = cli.rows("SELECT hash FROM journal WHERE seq = 8")[0][0]
    Path(checkpointed).write_text(json.dumps(point) + "\n")
    assert cli.out("journal", "verify", "--checkpoint", checkpointed)[0].startswith(
        "journal intact: ")  # without the key, the checkpoint file is taken at its word
    assert cli.out("journal", "verify", "--checkpoint", checkpointed, "--key", key_file(cli),
                   code=1) == [
        "journal BROKEN: 1 problem(s) in 8 entries",
        f"  checkpoint at line 1 (entry 8, taken {NOW}): its HMAC does not match the key: the "
        "checkpoint was forged or altered, or made with another key",
    ]


def test_no_checkpoint_of_a_broken_journal(cli: Cli) -> None:
    four_versions(cli)
    drop_triggers(cli, "journal_no_update")
    points = cli.tmp / "checkpoints.jsonl"
    result = cli("journal", "checkpoint", "--append", str(points), code=1)
    assert result.stderr.splitlines() == [
        "flowctl: error: the journal does not verify (1 problem(s)); a checkpoint now would "
        "vouch for it, so none was taken",
        "flowctl: hint: see what is wrong with `flowctl journal verify`",
    ]
    assert not points.exists()


def test_checkpoint_files_and_keys_are_checked(cli: Cli) -> None:
    four_versions(cli)
    short = cli.tmp / "short"
    short.write_bytes(b"abc\n")
    result = cli("journal", "checkpoint", "--key", str(short), code=2)
    assert result.stderr.splitlines()[0] == (
        f"flowctl: error: the key file {short} holds 3 bytes; a checkpoint key needs at least 16")
    garbled = cli.tmp / "garbled.jsonl"
    garbled.write_text("# kept in git\nnot json\n")
    assert cli.out("journal", "verify", "--checkpoint", str(garbled), code=1) == [
        "journal BROKEN: 1 problem(s) in 8 entries",
        f"  checkpoint file {garbled}: line 2: not a checkpoint (expected one JSON object with "
        "seq, hash, at and optionally hmac)",
    ]
    result = cli("journal", "verify", "--key", key_file(cli), code=2)
    assert result.stderr.splitlines()[0] == (
        "flowctl: error: --key checks the HMACs of checkpoints, and no --checkpoint FILE was "
        "given")


def test_verify_reads_a_store_of_an_older_schema_without_upgrading_it(cli: Cli) -> None:
    """Opened only to read, an older store is not upgraded: verify must not
    expect the tables later versions add (attachments)."""
    SqliteStore.open(cli.db, migrations=schema.MIGRATIONS[:3]).close()
    assert cli.out("journal", "verify") == ["journal intact: 0 entries, hash chain verified"]
    assert cli.rows("PRAGMA user_version") == [(3,)]


def test_a_writer_during_an_immutable_read_is_noticed(cli: Cli) -> None:
    """An immutable read takes no lock; a write meanwhile changes the file, and
    verify then reads it again the way a live store is read (mode=ro)."""
    four_versions(cli)
    store = SqliteStore.open_readonly(cli.db)
    try:
        assert not store.changed_since_open()
        cli("note", K1, "meanwhile")
        assert store.changed_since_open()
    finally:
        store.close()
    with SqliteStore.open_readonly(cli.db, immutable=False) as live:
        assert live.verify_journal().entries == 9


def test_verify_reads_a_copy_whose_wal_holds_changes_in_a_read_only_folder(
    cli: Cli, tmp_path: Path
) -> None:
    """A copy taken while the store was open: the latest commits are only in its
    -wal, and reading them needs a -shm file, which the folder cannot take. Verify
    reads a private copy of both instead, and still writes nothing there."""
    cli("start", KEY, "--set", "owner=alice")
    holder = sqlite3.connect(cli.db)  # keeps the -wal from being folded in and removed
    holder.execute("SELECT count(*) FROM journal").fetchall()
    try:
        cli("advance", K1, "-r", "done", "--set", "level=key")
        folder = tmp_path / "audit"
        folder.mkdir()
        shutil.copyfile(cli.db, folder / "copy.db")
        shutil.copyfile(cli.db + "-wal", folder / "copy.db-wal")
    finally:
        holder.close()
    assert (folder / "copy.db-wal").stat().st_size > 0
    files = [folder / "copy.db", folder / "copy.db-wal"]
    if not _chattr("+i", *files, folder):
        pytest.skip("chattr +i is not available here: root could write the folder anyway")
    try:
        assert cli.out("journal", "verify", "--db", str(folder / "copy.db")) == [
            "journal intact: 6 entries, hash chain verified"]
        assert sorted(os.listdir(folder)) == ["copy.db", "copy.db-wal"]
    finally:
        _chattr("-i", *files, folder)


def test_db_repair_makes_a_dropped_tail_table_again(cli: Cli) -> None:
    cli("start", KEY, "--set", "owner=alice")
    cli.sql("DROP TABLE journal_tail")
    assert cli.out("journal", "verify", code=1) == [
        "journal BROKEN: 4 problem(s) in 2 entries",
        "  the journal_tail table is missing (dropped outside flowctl)",
        f"  the append-only trigger journal_tail_forward is missing: {UNPROTECTED}",
        f"  the append-only trigger journal_tail_no_delete is missing: {UNPROTECTED}",
        "  the record of the journal's last entry is missing, but the journal holds entries "
        "up to 2",
    ]
    cli("note", K1, "x", code=4)
    assert cli.out("db", "repair")[:4] == [
        "found:",
        "  the append-only trigger journal_tail_forward is missing",
        "  the append-only trigger journal_tail_no_delete is missing",
        "  the journal_tail table is missing",
    ]
    assert cli.out("journal", "verify") == ["journal intact: 3 entries, hash chain verified"]
    cli("note", K1, "x")

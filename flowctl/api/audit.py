"""The journal's proof: checkpoints kept outside the store, verifying against
them, and restoring the journal's append-only triggers.

The hash chain shows that no entry was changed, removed or inserted *by
someone who did not recompute the hashes after it*. Whoever can write the
database file can recompute them. A checkpoint (:func:`checkpoint`) is the
head of the chain (entry number, hash, time) written somewhere else: a
journal rewritten, truncated or wiped before the checkpoint no longer
matches it (:func:`verify`). With a key file, each checkpoint carries an
HMAC-SHA256 that only the key's holder can make, so the checkpoint file
itself cannot be forged by someone who can edit it but does not hold the key.
"""

from __future__ import annotations

import os
from datetime import datetime

from msgspec import Struct
from msgspec.structs import replace

from flowctl import engine
from flowctl.api import workspace
from flowctl.api.identity import Identity, choose, login_name
from flowctl.api.instances import clock, opened_store, verify_journal
from flowctl.errors import FlowctlError, UsageError
from flowctl.store.base import Checkpoint, RepairReport, VerifyReport
from flowctl.store.chain import checkpoint_line, checkpoint_mac, parse_checkpoints


class JournalBroken(FlowctlError):
    """The journal does not verify; nothing was written (exit 1)."""

    exit_code = 1


class CheckpointResult(Struct, frozen=True):
    checkpoint: Checkpoint
    line: str  # the checkpoint file's line for it
    appended_to: str | None = None


def read_key(path: str) -> bytes:
    """The key in a key file: its bytes, without a final newline."""
    try:
        with open(path, "rb") as handle:
            key = handle.read()
    except OSError as exc:
        raise UsageError(
            f"cannot read the key file {path}: {exc.strerror}",
            hint="pass the file that holds the checkpoint key (keep it off this machine)",
        ) from None
    key = key.rstrip(b"\r\n")
    if len(key) < 16:
        raise UsageError(
            f"the key file {path} holds {len(key)} bytes; a checkpoint key needs at least 16",
            hint="make one with e.g. `head -c 32 /dev/urandom | base64 > KEYFILE`",
        )
    return key


def read_checkpoints(path: str) -> tuple[list[tuple[int, Checkpoint]], list[str]]:
    """The checkpoints of a checkpoint file, and what in it is not one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(
            f"cannot read the checkpoint file {path}: {exc.strerror}",
            hint="pass a file written by `flowctl journal checkpoint --append FILE`",
        ) from None
    points, bad = parse_checkpoints(text)
    if not points and not bad:
        raise UsageError(
            f"the checkpoint file {path} holds no checkpoint",
            hint="`flowctl journal checkpoint --append FILE` adds one",
        )
    return points, [f"checkpoint file {path}: {b}" for b in bad]


def verify(
    *, db: str | None = None, checkpoint_file: str | None = None, key_file: str | None = None,
) -> VerifyReport:
    """:func:`flowctl.api.instances.verify_journal`, against the checkpoints of
    ``checkpoint_file`` (their HMACs checked with the key in ``key_file``)."""
    if key_file is not None and checkpoint_file is None:
        raise UsageError(
            "--key checks the HMACs of checkpoints, and no --checkpoint FILE was given",
            hint="flowctl journal verify --checkpoint FILE --key KEYFILE",
        )
    key = read_key(key_file) if key_file is not None else None
    points, bad = read_checkpoints(checkpoint_file) if checkpoint_file is not None else ([], [])
    report = verify_journal(db=db, checkpoints=points, key=key)
    if bad:
        report = replace(report, ok=False, problems=(*bad, *report.problems))
    return report


def checkpoint(
    *, db: str | None = None, append: str | None = None, key_file: str | None = None,
    now: datetime | None = None,
) -> CheckpointResult:
    """The head of the verified chain now; appended to ``append`` when given.

    Refused (exit 1, nothing written) when the journal does not verify: a
    checkpoint would vouch for a broken journal."""
    key = read_key(key_file) if key_file is not None else None
    report = verify_journal(db=db)
    if not report.ok:
        raise JournalBroken(
            f"the journal does not verify ({len(report.problems)} problem(s)); a checkpoint "
            "now would vouch for it, so none was taken",
            hint="see what is wrong with `flowctl journal verify`",
        )
    at = engine.iso(clock(now))
    mac = None if key is None else checkpoint_mac(key, report.head_seq, report.head_hash, at)
    point = Checkpoint(seq=report.head_seq, hash=report.head_hash, at=at, hmac=mac)
    line = checkpoint_line(point)
    if append is not None:
        _append_line(append, line)
    return CheckpointResult(point, line, append)


def _append_line(path: str, line: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise UsageError(
            f"cannot append the checkpoint to {path}: {exc.strerror}",
            hint="append it to a file you can write (kept away from the store: another "
                 "machine, a git repository)",
        ) from None


def repair(*, db: str | None = None, now: datetime | None = None) -> RepairReport:
    """Restore the journal's append-only triggers, journalled as ``store_repaired``
    (by the user running it: the login name; under identity = "trust" also
    $FLOWCTL_USER); nothing is written when they are in place."""
    trusted = workspace.resolve().identity.value == workspace.IDENTITY_TRUST
    login = login_name()
    me = choose(None) if trusted else (Identity(login, "login name") if login else None)
    if me is None:
        raise UsageError(
            "cannot tell who is repairing the store: no login name",
            hint="set FLOWCTL_USER to your user id",
        )
    at = engine.iso(clock(now))
    with opened_store(db, None) as st:
        return st.repair_journal(actor=me.user, at=at)

"""The journal's hash chain: how an entry's hash is computed and checked.

Each entry's hash is the SHA-256 of a canonical JSON serialisation of its
content (seq, instance_id, at, actor, kind, version, stage, result, data) and
of ``prev_hash``, the hash of the entry before it in the whole journal (``""``
for the first). The serialisation does not depend on how a backend stores
``data``, so another backend computes the same hashes. Pure code: no SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from json.encoder import encode_basestring as _quote  # the C string encoder json.dumps uses
from typing import Any

from msgspec import Struct

from flowctl.store.base import Checkpoint, VerifyReport

MAX_PROBLEMS = 1000


# ``json.dumps`` with these arguments builds a new encoder on every call; one
# encoder, made once, gives the same text (the store encodes ~20 values a step).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def canonical_json(value: Any) -> str:
    """The one JSON text for ``value``: sorted keys, no spaces, no NaN."""
    return _CANONICAL.encode(value)


def entry_hash(
    *,
    seq: int,
    instance_id: str,
    at: str,
    actor: str,
    kind: str,
    version: int,
    stage: str | None,
    result: str | None,
    data: Any,
    prev_hash: str,
) -> str:
    """SHA-256 hex of ``canonical_json`` of the entry's content and ``prev_hash``."""
    return entry_hash_text(seq, instance_id, at, actor, kind, version, stage, result,
                           canonical_json(data), prev_hash)


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def entry_hash_text(
    seq: int,
    instance_id: str,
    at: str,
    actor: str,
    kind: str,
    version: int,
    stage: str | None,
    result: str | None,
    data_json: str,
    prev_hash: str,
) -> str:
    """``entry_hash`` for data already in canonical JSON (as the store keeps it).

    Builds the same text as ``canonical_json`` of the payload (keys in sorted
    order, same string escaping) without re-parsing ``data``: verifying a
    million entries depends on it.
    """
    text = (
        f'{{"actor":{_quote(actor)},"at":{_quote(at)},"data":{data_json},'
        f'"instance_id":{_quote(instance_id)},"kind":{_quote(kind)},'
        f'"prev_hash":{_quote(prev_hash)},"result":{_text(result)},"seq":{int(seq)},'
        f'"stage":{_text(stage)},"version":{int(version)}}}'
    )
    return sha256_hex(text.encode("utf-8"))


_SHA256: list[Callable[[bytes], Any]] = []  # hashlib.sha256, once something hashes


def sha256_hex(data: bytes) -> str:
    """SHA-256 hex of ``data``; hashlib (~5 ms of imports) is imported on first
    use, so commands that only read the journal do not pay for it."""
    if not _SHA256:
        import hashlib

        _SHA256.append(hashlib.sha256)
    return str(_SHA256[0](data).hexdigest())


def _in_branch(data: str) -> bool:
    """Whether a journal entry's data (its stored JSON text) names the parallel
    branch it was made in; parsed only when the key may be there."""
    if '"branch"' not in data:
        return False
    try:
        value = json.loads(data)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("branch"), str)


class StoredEntry(Struct, frozen=True):
    """A journal row as read back for verification (``data`` as the stored JSON text,
    which the store writes with ``canonical_json``)."""

    seq: int
    instance_id: str
    at: str
    actor: str
    kind: str
    version: int
    stage: str | None
    result: str | None
    data: str
    prev_hash: str
    hash: str


class Tail(Struct, frozen=True):
    """The last entry the store recorded writing."""

    seq: int
    hash: str


STORE_ENTRY_ID = "(store)"  # the instance_id of entries about the store itself (db repair)
FINISHED_KINDS = ("completed", "cancelled")  # an entry of these kinds ends an instance


class BadText(str):
    """A stored text that is not valid UTF-8 (shown with backslash escapes):
    the store reads tampered rows with it instead of failing."""

    __slots__ = ()


def _content_hash(entry: StoredEntry) -> str:
    return entry_hash_text(entry.seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                           entry.version, entry.stage, entry.result, entry.data,
                           entry.prev_hash)


def _missing(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}..{last}"


_COLUMNS: tuple[tuple[str, type, bool], ...] = (
    # (field, type it must have, may be NULL)
    ("instance_id", str, False), ("at", str, False), ("actor", str, False), ("kind", str, False),
    ("version", int, False), ("stage", str, True), ("result", str, True), ("data", str, False),
    ("prev_hash", str, False), ("hash", str, False),
)


def describe_value(value: object) -> str:
    """A stored value as a problem line shows it: its SQL type and a short, escaped form."""
    if value is None:
        return "NULL"
    if isinstance(value, BadText):
        return f"text that is not valid UTF-8 ({str(value)[:40]})"
    if isinstance(value, bytes):
        more = "..." if len(value) > 16 else ""
        return f"a blob x'{value[:16].hex()}{more}'"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, float):
        return f"the real number {value!r}"
    return f"{type(value).__name__} {value!r}"


def _name(value: object) -> str:
    return value if type(value) is str else describe_value(value)


def wrong_types(entry: StoredEntry) -> list[str]:
    """What in a stored row is not of the type flowctl writes (tampered with)."""
    out: list[str] = []
    for field, kind, nullable in _COLUMNS:
        value = getattr(entry, field)
        if value is None and nullable:
            continue
        if isinstance(value, BadText):
            out.append(f"{field} holds {describe_value(value)}")
        elif type(value) is not kind:
            want = "an integer" if kind is int else "text"
            out.append(f"{field} holds {describe_value(value)}, not {want}")
    return out


class _Seen:
    """What the journal says about one instance."""

    __slots__ = ("first_kind", "last_version", "stage", "finished")

    def __init__(self, kind: str) -> None:
        self.first_kind = kind
        self.last_version = 0
        self.stage: str | None = None  # of the last stage_entered entry
        self.finished: str | None = None  # kind of the last completed/cancelled entry


class _Checker:
    """Walks the entries in seq order and collects the problems."""

    def __init__(
        self, checkpoints: Sequence[tuple[int, Checkpoint]] = (), key: bytes | None = None
    ) -> None:
        self.problems: list[str] = []
        self.count = 0
        self.extra = 0
        self.last: StoredEntry | None = None
        self.seen: dict[str, _Seen] = {}
        self.checkpoints = checkpoints
        self.key = key
        self.anchors = frozenset(point.seq for _, point in checkpoints)
        self.anchor_hashes: dict[int, str] = {}
        self.instance_problems: list[str] = []
        self.careful = False  # check every value's type (set for text that is not UTF-8)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.extra += 1

    def check(self, entry: StoredEntry) -> None:
        self.count += 1
        if type(entry.seq) is not int:
            self.problem(f"an entry (instance {_name(entry.instance_id)}): seq holds "
                         f"{describe_value(entry.seq)}, not an integer")
            return
        name = f"entry {entry.seq} (instance {_name(entry.instance_id)})"
        prev = self.last
        expected_seq = 1 if prev is None else prev.seq + 1
        expected_prev = "" if prev is None else prev.hash
        if entry.seq > expected_seq:
            after = (
                "the start" if prev is None
                else f"entry {prev.seq} (instance {_name(prev.instance_id)})"
            )
            self.problem(
                f"{_missing(expected_seq, entry.seq - 1)} missing: the journal jumps from "
                f"{after} to {name}"
            )
        elif entry.prev_hash != expected_prev:
            before = f"entry {prev.seq}" if prev is not None else "the start of the journal"
            self.problem(
                f"{name}: its link to {before} does not match (an entry was removed, "
                "replaced or reordered)"
            )
        # The types are checked in full only when something is off: the integers
        # here (a REAL 4.5 would hash as 4), text by the hash itself (a blob or a
        # number where text belongs raises), and always in the careful mode the
        # store uses for text that is not UTF-8.
        digest = None
        if (not self.careful and type(entry.version) is int and type(entry.data) is str
                and type(entry.hash) is str):
            try:
                digest = _content_hash(entry)
            except (TypeError, ValueError):
                digest = None
        bad = [] if digest is not None else wrong_types(entry)
        if bad:
            self.problem(f"{name}: {'; '.join(bad)} (changed after it was written)")
        else:
            if (digest or _content_hash(entry)) != entry.hash:
                self.problem(
                    f"{name}: hash does not match its content (changed after it was written)")
            self._track(entry)
        if entry.seq in self.anchors:
            self.anchor_hashes[entry.seq] = entry.hash
        self.last = entry

    def _track(self, entry: StoredEntry) -> None:
        if entry.instance_id == STORE_ENTRY_ID:
            return
        seen = self.seen.get(entry.instance_id)
        if seen is None:
            seen = self.seen[entry.instance_id] = _Seen(entry.kind)
        if entry.version > seen.last_version:
            seen.last_version = entry.version
        if entry.kind == "stage_entered" and not _in_branch(entry.data):
            # a stage entered in a parallel branch: the instance stays at its
            # parallel stage until the branches join
            seen.stage = entry.stage
        elif entry.kind in FINISHED_KINDS:
            seen.finished = entry.kind

    def check_instances(self, rows: Iterable[tuple[Any, Any, Any, Any]]) -> None:
        """Compare each stored instance (id, version, status, stage) with its journal."""
        listed: set[str] = set()
        chain = self.problems
        self.problems = self.instance_problems  # reported after the chain's own
        try:
            for instance_id, version, status, stage in rows:
                listed.add(instance_id)
                self._check_instance(instance_id, version, status, stage)
            for instance_id in sorted(self.seen.keys() - listed):
                self.problem(f"the journal holds entries for instance {instance_id}, which is "
                             "not stored (the instance was removed)")
        finally:
            self.problems = chain

    def _check_instance(self, instance_id: Any, version: Any, status: Any, stage: Any) -> None:
        name = f"instance {_name(instance_id)}"
        if type(version) is not int:
            self.problem(f"{name}: version holds {describe_value(version)}, not an integer "
                         "(changed outside flowctl)")
            return
        seen = self.seen.get(instance_id) if type(instance_id) is str else None
        if seen is None:
            self.problem(f"{name} is at version {version} ({_name(status)}), but the journal "
                         "holds no entry for it (its entries were removed)")
            return
        if seen.first_kind != "started":
            self.problem(f"{name}: its first journal entry is {seen.first_kind!r}, not "
                         "'started' (its first entries were removed)")
        if seen.last_version != version:
            self.problem(f"{name} is at version {version}, but its journal ends at version "
                         f"{seen.last_version} (entries removed, or the instance changed "
                         "outside flowctl)")
        if seen.stage is None and seen.finished is None:
            return  # a journal that never says where the instance is (not the engine's)
        if status in FINISHED_KINDS or seen.finished is not None:
            if status != seen.finished:
                said = f"says {seen.finished}" if seen.finished else "does not say it ended"
                self.problem(f"{name} is {_name(status)}, but its journal {said}")
        elif stage != seen.stage:
            self.problem(f"{name} is at stage {_name(stage)}, but its journal last entered "
                         f"stage {_name(seen.stage)}")

    def finish(self, tail: Tail | None) -> VerifyReport:
        last = self.last
        if tail is None and last is not None:
            self.problem(
                f"the record of the journal's last entry is missing, but the journal holds "
                f"entries up to {last.seq}"
            )
        elif tail is not None:
            self._check_tail(tail, last)
        head_seq = 0 if last is None else last.seq
        for number, point in self.checkpoints:
            for text in check_checkpoint(number, point, self.anchor_hashes, head_seq, self.key):
                self.problem(text)
        problems = self.problems + self.instance_problems
        if self.extra:
            problems.append(f"... and {self.extra} more problems")
        head = (0, "") if last is None else (last.seq, str(last.hash))
        return VerifyReport(ok=not problems, entries=self.count, problems=tuple(problems),
                            head_seq=head[0], head_hash=head[1],
                            checkpoints=len(self.checkpoints))

    def _check_tail(self, tail: Tail, last: StoredEntry | None) -> None:
        last_seq = 0 if last is None else last.seq
        if tail.seq > last_seq:
            after = "" if last is None else (
                f" after entry {last.seq} (instance {_name(last.instance_id)})")
            self.problem(
                f"{_missing(last_seq + 1, tail.seq)} missing at the end of the journal{after}: "
                f"the journal was written up to entry {tail.seq}"
            )
        elif last is not None and tail.seq < last_seq:
            self.problem(
                f"entry {last.seq} (instance {_name(last.instance_id)}): the journal was "
                f"recorded to end at entry {tail.seq}; entries after it were not written by "
                "flowctl"
            )
        elif last is not None and tail.hash != last.hash:
            self.problem(
                f"entry {last.seq} (instance {_name(last.instance_id)}): does not match the "
                "recorded last entry (replaced after it was written)"
            )


def verify_entries(entries: Iterable[StoredEntry], tail: Tail | None) -> VerifyReport:
    """Check ``entries`` (in seq order) against each other and the recorded tail."""
    checker = _Checker()
    for entry in entries:
        checker.check(entry)
    return checker.finish(tail)


def new_checker(
    checkpoints: Sequence[tuple[int, Checkpoint]] = (), key: bytes | None = None
) -> _Checker:
    """A checker to feed entries (``check``), then instances (``check_instances``),
    then ``finish``, which also checks the journal against ``checkpoints`` (line
    number, checkpoint) and, given ``key``, their HMACs."""
    return _Checker(checkpoints, key)


# ---------------------------------------------------------------- checkpoints


def checkpoint_payload(seq: int, hash: str, at: str) -> bytes:
    return canonical_json({"at": at, "hash": hash, "seq": seq}).encode("utf-8")


def checkpoint_mac(key: bytes, seq: int, hash: str, at: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key, checkpoint_payload(seq, hash, at), hashlib.sha256).hexdigest()


def checkpoint_line(point: Checkpoint) -> str:
    """One line of a checkpoint file: canonical JSON."""
    data: dict[str, Any] = {"at": point.at, "hash": point.hash, "seq": point.seq}
    if point.hmac is not None:
        data["hmac"] = point.hmac
    return canonical_json(data)


def parse_checkpoints(text: str) -> tuple[list[tuple[int, Checkpoint]], list[str]]:
    """The checkpoints of a file (with their line numbers), and the lines that are not
    checkpoints. Empty lines and lines starting with ``#`` are skipped."""
    points: list[tuple[int, Checkpoint]] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            data = json.loads(line)
            mac = data.get("hmac")
            point = Checkpoint(seq=data["seq"], hash=data["hash"], at=data["at"], hmac=mac)
            ok = (type(point.seq) is int and point.seq >= 0 and isinstance(point.hash, str)
                  and isinstance(point.at, str) and (mac is None or isinstance(mac, str)))
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            points.append((number, point))
        else:
            bad.append(f"line {number}: not a checkpoint (expected one JSON object with "
                       "seq, hash, at and optionally hmac)")
    return points, bad


def check_checkpoint(
    number: int, point: Checkpoint, hashes: dict[int, str], head_seq: int, key: bytes | None,
) -> list[str]:
    """What is wrong with the journal (or the checkpoint) against one checkpoint."""
    where = f"checkpoint at line {number} (entry {point.seq}, taken {point.at})"
    out: list[str] = []
    if key is not None:
        import hmac

        if point.hmac is None:
            out.append(f"{where}: carries no HMAC, but a key was given: it was not made "
                       "with the key")
        elif not hmac.compare_digest(point.hmac,
                                     checkpoint_mac(key, point.seq, point.hash, point.at)):
            out.append(f"{where}: its HMAC does not match the key: the checkpoint was "
                       "forged or altered, or made with another key")
            return out
    if point.seq == 0:
        return out
    found = hashes.get(point.seq)
    if found is None:
        ends = "is empty" if head_seq == 0 else f"ends at entry {head_seq}"
        out.append(f"{where}: the journal {ends}: entries up to {point.seq} were removed "
                   "(truncated or wiped)")
    elif found != point.hash:
        out.append(f"entry {point.seq}: its hash differs from the {where}: the journal up to "
                   "it was rewritten (and re-chained)")
    return out

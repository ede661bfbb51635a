"""The journal's hash chain: how an entry's hash is computed and checked.

Each entry's hash is the SHA-256 of a canonical JSON serialisation of its
content (seq, instance_id, at, actor, kind, version, stage, result, data) and
of ``prev_hash``, the hash of the entry before it in the whole journal (``""``
for the first). The serialisation does not depend on how a backend stores
``data``, so another backend computes the same hashes. Pure code: no SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _quote  # the C string encoder json.dumps uses
from typing import Any

from msgspec import Struct

from flowctl.store.base import VerifyReport

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


def _content_hash(entry: StoredEntry) -> str:
    return entry_hash_text(entry.seq, entry.instance_id, entry.at, entry.actor, entry.kind,
                           entry.version, entry.stage, entry.result, entry.data,
                           entry.prev_hash)


def _missing(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}..{last}"


class _Checker:
    """Walks the entries in seq order and collects the problems."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.count = 0
        self.extra = 0
        self.last: StoredEntry | None = None

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.extra += 1

    def check(self, entry: StoredEntry) -> None:
        self.count += 1
        name = f"entry {entry.seq} (instance {entry.instance_id})"
        prev = self.last
        expected_seq = 1 if prev is None else prev.seq + 1
        expected_prev = "" if prev is None else prev.hash
        if entry.seq > expected_seq:
            after = (
                "the start" if prev is None else f"entry {prev.seq} (instance {prev.instance_id})"
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
        if _content_hash(entry) != entry.hash:
            self.problem(f"{name}: hash does not match its content (changed after it was written)")
        self.last = entry

    def finish(self, tail: Tail | None) -> VerifyReport:
        last = self.last
        if tail is None and last is not None:
            self.problem(
                f"the record of the journal's last entry is missing, but the journal holds "
                f"entries up to {last.seq}"
            )
        elif tail is not None:
            self._check_tail(tail, last)
        problems = list(self.problems)
        if self.extra:
            problems.append(f"... and {self.extra} more problems")
        return VerifyReport(ok=not problems, entries=self.count, problems=tuple(problems))

    def _check_tail(self, tail: Tail, last: StoredEntry | None) -> None:
        last_seq = 0 if last is None else last.seq
        if tail.seq > last_seq:
            after = "" if last is None else f" after entry {last.seq} (instance {last.instance_id})"
            self.problem(
                f"{_missing(last_seq + 1, tail.seq)} missing at the end of the journal{after}: "
                f"the journal was written up to entry {tail.seq}"
            )
        elif last is not None and tail.seq < last_seq:
            self.problem(
                f"entry {last.seq} (instance {last.instance_id}): the journal was recorded to "
                f"end at entry {tail.seq}; entries after it were not written by flowctl"
            )
        elif last is not None and tail.hash != last.hash:
            self.problem(
                f"entry {last.seq} (instance {last.instance_id}): does not match the recorded "
                "last entry (replaced after it was written)"
            )


def verify_entries(entries: Iterable[StoredEntry], tail: Tail | None) -> VerifyReport:
    """Check ``entries`` (in seq order) against each other and the recorded tail."""
    checker = _Checker()
    for entry in entries:
        checker.check(entry)
    return checker.finish(tail)

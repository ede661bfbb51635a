"""Checking attachments: each file's bytes against the SHA-256 and size it was
attached with, and against the journal's ``attached`` entry that recorded it.
Pure code: the store streams the rows in, this says what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flowctl.store.chain import MAX_PROBLEMS, sha256_hex

Key = tuple[str, str, int]  # instance id, name, version


def recorded_attachment(data_text: Any) -> tuple[str, int, str, int] | None:
    """(name, version, sha256, size) of an ``attached`` journal entry's data,
    or None when the data does not hold them (the chain check reports a
    changed entry; this one then reports the attachment as unrecorded)."""
    try:
        data = json.loads(data_text)
        name, version, sha, size = data["name"], data["version"], data["sha256"], data["size"]
    except (TypeError, ValueError, KeyError):
        return None
    if not (isinstance(name, str) and isinstance(sha, str)
            and type(version) is int and type(size) is int):
        return None
    return name, version, sha, size


def check_attachments(
    rows: Iterable[tuple[Any, ...]], recorded: dict[Key, tuple[str, int]]
) -> tuple[int, list[str]]:
    """``rows``: (instance_id, name, version, sha256, size, content or None).
    ``recorded``: what the journal's ``attached`` entries say, by key; the
    entries left in it once the rows are checked have lost their attachment.
    Return how many attachments were checked and the problems found."""
    problems: list[str] = []
    count = 0
    for instance_id, name, version, sha, size, content in rows:
        count += 1
        what = f"attachment {name!r} version {version} of {instance_id}"
        journal = recorded.pop((str(instance_id), str(name), version), None)
        if journal is None:
            problems.append(f"{what}: no journal entry records it")
        elif journal != (sha, size):
            problems.append(
                f"{what}: not the file the journal recorded (journal: sha256 {journal[0]},"
                f" {journal[1]} bytes; stored: sha256 {sha}, {size} bytes)"
            )
        if content is None:
            problems.append(f"{what}: its content (sha256 {sha}) is missing")
        elif not isinstance(content, bytes):
            problems.append(f"{what}: its content is not bytes")
        else:
            actual = sha256_hex(content)
            if actual != sha or len(content) != size:
                problems.append(
                    f"{what}: content does not match its SHA-256 (recorded {sha},"
                    f" {size} bytes; found {actual}, {len(content)} bytes)"
                )
        if len(problems) >= MAX_PROBLEMS:
            return count, problems[:MAX_PROBLEMS]
    for (instance_id, name, version), (sha, _) in sorted(recorded.items()):
        problems.append(
            f"attachment {name!r} version {version} of {instance_id}: the journal records it"
            f" (sha256 {sha}) but the store has no such attachment"
        )
    return count, problems[:MAX_PROBLEMS]

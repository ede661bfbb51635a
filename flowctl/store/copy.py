"""``flowctl db copy``: a whole store, table by table, onto an empty PostgreSQL
store, in one transaction on the target, with the journal verified entry by
entry by its hash chain on the way (a broken chain aborts the copy: nothing
is written). Both backends keep the same columns with the same texts, so
the copied journal has the same head hash as the original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from msgspec import Struct

from flowctl.store.base import StoreError
from flowctl.store.chain import StoredEntry, new_checker
from flowctl.store.rows import INSTANCE_COLUMNS, JOURNAL_COLUMNS

# table -> (columns, order): parents before children; the journal last.
TABLES: dict[str, tuple[str, str]] = {
    "definitions": ("digest, process_id, source, stored_at, names", "stored_at, digest"),
    "instances": (INSTANCE_COLUMNS, "started_at, id"),
    "instance_principals": ("principal, instance_id", "instance_id, principal"),
    "id_counters": ("process_id, last", "process_id"),
    "timers": ("instance_id, key, kind, stage, due_at, status, fired_at", "instance_id, key"),
    "notifications": (
        'id, instance_id, "user", kind, stage, message, created_at, delivered_at, read_at, '
        "attempts, last_error, next_attempt_at, claimed_until, subject, channels_done", "id"),
    "pick_turns": ('pool, "user", at', "pool"),
    "attachment_blobs": ("sha256, size, content", "sha256"),
    "attachments": ("id, instance_id, name, version, sha256, size, added_by, added_at", "id"),
    "journal": (JOURNAL_COLUMNS + ", process_id", "seq"),
}


class Source(Protocol):
    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]: ...


class Target(Protocol):
    def load_tables(self, tables: Iterator[tuple[str, Iterator[tuple[Any, ...]]]]) -> None: ...

    def is_empty(self) -> bool: ...


class CopyReport(Struct, frozen=True):
    rows: dict[str, int]  # table -> rows copied
    head_seq: int
    head_hash: str


def copy_store(source: Source, target: Target, *, where: str,
               progress: Callable[[str, int], None] | None = None) -> CopyReport:
    """Copy every table of ``source`` onto the empty ``target`` (see the module doc).

    Raises StoreError when the target holds anything, or when the source's
    journal does not verify (naming the first broken entry); nothing is written."""
    if not target.is_empty():
        raise StoreError(
            f"{where} is not empty: it holds instances or journal entries; db copy only fills "
            "an empty store, so that no history is merged or overwritten",
            hint="copy into a new database (createdb), or drop flowctl's schema there first",
        )
    counts: dict[str, int] = {}
    checker = new_checker()

    def counted(table: str, rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        try:
            yield from checked(table, rows, counter := [0])
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()  # a refused copy: the source's cursor, before its store closes
        n = counter[0]
        counts[table] = n
        if progress is not None:
            progress(table, n % 1000)

    def checked(table: str, rows: Iterator[tuple[Any, ...]],
                counter: list[int]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            if table == "journal":
                checker.check(StoredEntry(*row[:11]))
                if checker.problems:
                    raise StoreError(
                        f"the journal to copy does not verify: {checker.problems[0]}; nothing "
                        f"was written to {where}",
                        hint="run `flowctl journal verify` on the source and look at what "
                             "changed there",
                    )
            counter[0] += 1
            if progress is not None and counter[0] % 1000 == 0:
                progress(table, 1000)
            yield row

    target.load_tables((table, counted(table, source.table_rows(table))) for table in TABLES)
    last = checker.last
    return CopyReport(rows=counts, head_seq=0 if last is None else last.seq,
                      head_hash="" if last is None else last.hash)

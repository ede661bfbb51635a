"""Open the store a location names: a SQLite file, or a PostgreSQL server by
its ``postgresql://`` URL. The API opens every store here and never asks
which backend it got: both implement :class:`flowctl.store.base.Store`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowctl.store.sqlite import SqliteStore
from flowctl.store.urls import display_url, is_url

if TYPE_CHECKING:
    from typing import TypeAlias

    from flowctl.store.postgres import PostgresStore

    ReadonlyStore: TypeAlias = SqliteStore | PostgresStore



def shown(target: str) -> str:
    """The location as messages show it (a URL without its password)."""
    return display_url(target) if is_url(target) else target


def open_store(
    target: str, *, create: bool = False, discard_unused: bool = False
) -> SqliteStore | PostgresStore:
    """Open (and bring up to date) the store at ``target``. ``create``: make
    it when missing (a SQLite file, or flowctl's schema in the server's
    database); else a missing one is :class:`StoreMissing`."""
    if is_url(target):
        from flowctl.store.postgres import PostgresStore  # psycopg: only for a server

        return PostgresStore.open(target, create=create)
    return SqliteStore.open(target, create=create, discard_unused=discard_unused)


def open_readonly(target: str, *, live: bool = False) -> SqliteStore | PostgresStore:
    """Open an existing store only to read it (a SQLite file: nothing is written
    beside it, see :meth:`SqliteStore.open_readonly`; a server: as usual, with
    no schema change)."""
    if is_url(target):
        from flowctl.store.postgres import PostgresStore  # psycopg: only for a server

        return PostgresStore.open(target, create=False, migrate=False)
    return SqliteStore.open_readonly(target, immutable=False if live else None)

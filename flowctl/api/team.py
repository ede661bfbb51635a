"""A store for a team: upgrade it (``db migrate``), move a SQLite store onto a
PostgreSQL server (``db copy``), and let an operator's login use it
(``db grant``). See docs/team.md."""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from flowctl.api import workspace
from flowctl.errors import UsageError
from flowctl.store.backends import open_store
from flowctl.store.base import StoreError, StoreMissing
from flowctl.store.copy import CopyReport, copy_store
from flowctl.store.sqlite import SqliteStore
from flowctl.store.urls import display_url, is_url


class MigrateReport(Struct, frozen=True):
    store: str  # as shown (no password)
    before: int  # the schema version found (0: none yet)
    after: int


class CopyResult(Struct, frozen=True):
    source: str
    target: str
    report: CopyReport
    problems: tuple[str, ...] = ()  # what `journal verify` says of the copy besides the chain


class GrantResult(Struct, frozen=True):
    store: str
    role: str
    created: bool
    statements: tuple[str, ...]


def _missing(setting: workspace.Setting) -> StoreMissing:
    where = "in" if is_url(setting.value) else "at"
    return StoreMissing(
        f"no store {where} {workspace.describe(setting)}",
        hint="`flowctl start PROCESS` creates one (on a server: `flowctl db migrate --db URL` "
             "creates flowctl's schema there); `flowctl config` shows what is used",
    )


def migrate(*, db: str | None = None) -> MigrateReport:
    """Bring the store's schema up to this flowctl's version. A SQLite file must
    exist; on a server the schema is created when the database has none (the
    team admin's first step). A store written by a newer flowctl is refused."""
    setting = workspace.resolve(db=db).store
    shown = workspace.shown(setting)
    if is_url(setting.value):
        from flowctl.store.postgres import PostgresStore  # psycopg: only for a server

        with PostgresStore.open(setting.value, create=True, migrate=False,
                                allow_behind=True) as store:
            before = store.schema_version()
            _, after = store.migrate()
        return MigrateReport(shown, before, after)
    try:
        with SqliteStore.open_readonly(setting.value, immutable=False) as old:
            before = int(old.settings()["user_version"])
    except StoreMissing:
        raise _missing(setting) from None
    with SqliteStore.open(setting.value, create=False) as store:
        after = int(store.settings()["user_version"])
    return MigrateReport(shown, before, after)


def copy(to: str, *, db: str | None = None,
         progress: Callable[[str, int], None] | None = None) -> CopyResult:
    """Copy the workspace's store (``db``) onto the empty PostgreSQL store at
    ``to``, verified entry by entry by the journal's chain, in one transaction;
    the copy's journal must end at the same head. Nothing is written on a refusal."""
    if not is_url(to):
        raise UsageError(
            f"--to {to}: db copy moves a store onto a PostgreSQL server, named by a "
            "postgresql:// URL",
            hint="e.g. flowctl db copy --to postgresql://db.example.com/approvals",
        )
    setting = workspace.resolve(db=db).store
    target_shown = display_url(to)
    if is_url(setting.value) and setting.value == to:
        raise UsageError(f"the store {target_shown} cannot be copied onto itself")
    from flowctl.store.postgres import PostgresStore  # psycopg: only for a server

    try:
        source = open_store(setting.value)
    except StoreMissing:
        raise _missing(setting) from None
    with source, PostgresStore.open(to, create=True) as target:
        report = copy_store(source, target, where=target_shown, progress=progress)
        check = target.verify_journal()
        if (check.head_seq, check.head_hash) != (report.head_seq, report.head_hash):
            raise StoreError(
                f"the copy at {target_shown} does not end at the original's head "
                f"(entry {report.head_seq}): {'; '.join(check.problems[:3])}",
                hint="report this; the original is unchanged",
            )
    # the chain verified entry by entry on the way; what verify says beyond it
    # (an instance against its journal) was so in the original too
    return CopyResult(workspace.shown(setting), target_shown, report, check.problems)


def grant(role: str, *, db: str | None = None) -> GrantResult:
    """Let ``role`` (a database login, created when missing) work in the store as
    an operator: read everything, write instances, append to the journal; never
    change or remove journal entries, attachments or definitions."""
    setting = workspace.resolve(db=db).store
    if not is_url(setting.value):
        raise UsageError(
            f"db grant gives a login of a PostgreSQL server access to its store; the store "
            f"here is a SQLite file ({workspace.describe(setting)}), whose access is the "
            "file's permissions",
            hint="use --db postgresql://... (docs/team.md)",
        )
    from flowctl.store.postgres import PostgresStore  # psycopg: only for a server

    try:
        store = PostgresStore.open(setting.value, create=False)
    except StoreMissing:
        raise _missing(setting) from None
    with store:
        created, statements = store.grant(role)
    return GrantResult(workspace.shown(setting), role, created, tuple(statements))

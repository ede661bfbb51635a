"""A throwaway PostgreSQL server for the tests (and the benches): initdb in a
temporary folder, started on a free port of 127.0.0.1 by an unprivileged user,
stopped and removed by :meth:`PgServer.stop`."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile

SUPERUSER = "flowctl_admin"

# Stops the server and removes its folder once its stdin closes: when the test
# session ends, also when it is killed (its finalizers then never run).
WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.buffer.read()
subprocess.run(sys.argv[3:] + [sys.argv[1], "-D", sys.argv[2], "-m", "immediate", "-w", "stop"],
               capture_output=True, check=False)
shutil.rmtree(sys.argv[2].rsplit("/", 1)[0], ignore_errors=True)
"""


def find_pg_bin() -> str | None:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl (Debian's layout)."""
    found = []
    for folder in glob.glob("/usr/lib/postgresql/*/bin"):
        if os.path.exists(os.path.join(folder, "initdb")) and os.path.exists(
                os.path.join(folder, "pg_ctl")):
            try:
                found.append((int(folder.split("/")[-2]), folder))
            except ValueError:
                continue
    return max(found)[1] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: str, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="flowctl-pg-")
        self.data = os.path.join(self.folder, "data")
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")
        self._names = itertools.count(1)
        self.started = False

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True,
                              check=False, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._run(os.path.join(self.bin_dir, "initdb"), "-D", self.data, "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=200 "
                   "-c shared_buffers=64MB")
        if not self.fsync:
            options += " -c synchronous_commit=off -c full_page_writes=off"
        self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-l",
                  os.path.join(self.folder, "server.log"), "-o", options, "-w", "start")
        self.started = True
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, os.path.join(self.bin_dir, "pg_ctl"), self.data,
             *self.as_user], stdin=subprocess.PIPE, start_new_session=True)

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def fresh_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "immediate",
                          "-w", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.folder, ignore_errors=True)
            watchdog = getattr(self, "watchdog", None)
            if watchdog is not None and watchdog.stdin is not None:
                watchdog.stdin.close()
                watchdog.wait(timeout=60)


def query(target: object, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows read beside a store on a connection of their own: ``target`` a SQLite
    file or a PostgreSQL URL (the ``flowctl`` schema first on the search path);
    SQL with ``?`` placeholders."""
    text = str(target)
    if text.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(text, options="-c search_path=flowctl") as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []
    import sqlite3

    conn2 = sqlite3.connect(text)
    try:
        with conn2:
            return conn2.execute(sql, params).fetchall()
    finally:
        conn2.close()

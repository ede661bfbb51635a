"""Shared test set-up."""

from __future__ import annotations

import os
import tempfile

# The lint cache of the test run lives in a folder of its own, never in the
# user's ~/.cache: tests must not read entries a developer's runs left behind.
os.environ.setdefault("FLOWCTL_CACHE_DIR", tempfile.mkdtemp(prefix="flowctl-test-cache-"))

# Property tests explore new examples on a developer's machine, and replay the
# same ones in CI (CI=true), so that a submission's verdict does not depend on
# luck; a failure found locally is kept in .hypothesis/ and replayed first.
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True)
    settings.load_profile("ci")


# ---------------------------------------------------------------- PostgreSQL
#
# The store's tests run against SQLite and against a real PostgreSQL server:
# this session starts one (initdb in a temporary folder, a free port on
# 127.0.0.1, as an unprivileged user: `postgres` when the tests run as root)
# on first use and stops it at the end, also when tests fail.
# scripts/install-system-deps.sh installs Debian's postgresql package.

import pytest  # noqa: E402
from pgserver import PgServer, find_pg_bin  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> object:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail("no PostgreSQL server here (initdb and pg_ctl under /usr/lib/postgresql/*/bin"
                    "); `bash scripts/test.sh` installs it (scripts/install-system-deps.sh "
                    "--with-postgres)")
    server = PgServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A URL of an empty database of its own for this test (owner: the superuser)."""
    return pg_server.fresh_database()

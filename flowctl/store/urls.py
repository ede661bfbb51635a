"""Store locations: a SQLite file, or a ``postgresql://`` URL naming a server.

A URL may carry a password (better kept in ``~/.pgpass``, ``PGPASSWORD`` or a
service file, where libpq finds it): :func:`display_url` is what every message
and ``flowctl config`` show instead, with the password replaced by ``***``.
"""

from __future__ import annotations

import os

URL_SCHEMES = ("postgresql", "postgres")


def is_url(target: str) -> bool:
    """Whether a ``--db`` value names a PostgreSQL server (else: a SQLite file)."""
    head, sep, _ = target.partition("://")
    return bool(sep) and head.lower() in URL_SCHEMES


def display_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (in the authority and in a
    ``password=`` parameter): what every message and ``flowctl config`` show."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit  # only for a URL

    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(an unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                          safe="/:*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def server_of(url: str) -> str:
    """``host:port/database`` as libpq will resolve them (for messages)."""
    from urllib.parse import parse_qsl, urlsplit  # only for a URL

    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    host = parts.hostname or params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = parts.port or params.get("port") or os.environ.get("PGPORT") or "5432"
    database = parts.path.lstrip("/") or params.get("dbname") or os.environ.get("PGDATABASE")
    return f"{host}:{port}" + (f"/{database}" if database else "")

"""Who a command acts as: ``--as USER``, else FLOWCTL_USER, else the login name.

The user must be in the org directory; otherwise the command is refused with
the known users and how to choose one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from msgspec import Struct

from flowctl.errors import UsageError
from flowctl.model import OrgDirectory

USER_ENV = "FLOWCTL_USER"
SHOW_AT_MOST = 8


class UnknownUser(UsageError):
    """The acting user is not in the org directory (exit 2)."""


class Identity(Struct, frozen=True):
    user: str
    source: str  # "--as", "FLOWCTL_USER" or "login name"


def _login_name() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER
        return None


def choose(explicit: str | None, environ: Mapping[str, str] | None = None) -> Identity | None:
    """The user a command asks to act as, before checking the org directory."""
    env = os.environ if environ is None else environ
    if explicit:
        return Identity(explicit, "--as")
    if env.get(USER_ENV):
        return Identity(env[USER_ENV], USER_ENV)
    login = _login_name()
    return Identity(login, "login name") if login else None


def resolve_user(
    explicit: str | None,
    org: OrgDirectory,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The acting user's id; raise UnknownUser when they are not in ``org``."""
    found = choose(explicit, environ)
    if found is not None and org.user(found.user) is not None:
        return found.user
    ids = [u.id for u in org.users]
    known = ", ".join(ids[:SHOW_AT_MOST])
    if len(ids) > SHOW_AT_MOST:
        known += f" and {len(ids) - SHOW_AT_MOST} more"
    where = f" {org.source}" if org.source else ""
    if found is None:
        message = f"cannot tell who you are: no --as, no {USER_ENV} and no login name"
    else:
        message = (
            f"unknown user '{found.user}' (from {found.source}):"
            f" not in the org directory{where}"
        )
    return _refuse(f"{message}; known users: {known or 'none'}")


def _refuse(message: str) -> str:
    raise UnknownUser(message, hint=f"choose who you act as with --as USER or {USER_ENV}=USER")

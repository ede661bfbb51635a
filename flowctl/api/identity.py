"""Who a command acts as: ``--as USER``, else FLOWCTL_USER, else the login name.

The user must be in the org directory; otherwise the command is refused with
the id probably meant (``Linda`` -> ``linda``, then close spellings), else the
known users.
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


def login_name() -> str | None:
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
    login = login_name()
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
    where = f" {org.source}" if org.source else ""
    if found is None:
        message = f"cannot tell who you are: no --as, no {USER_ENV} and no login name"
        return _refuse(f"{message}; known users: {_known(ids)}")
    message = (
        f"unknown user '{found.user}' (from {found.source}): not in the org directory{where}"
    )
    close = _close_ids(found.user, ids)
    if not close:
        return _refuse(f"{message}; known users: {_known(ids)}")
    quoted = " or ".join(f"'{c}'" for c in close)
    case = " (user ids are lowercase)" if close[0].casefold() == found.user.casefold() else ""
    raise UnknownUser(
        f"{message}; did you mean {quoted}?{case}",
        hint=f"if you are {close[0]}, use {_how(found.source, close[0])}",
    )


def _known(ids: list[str]) -> str:
    known = ", ".join(ids[:SHOW_AT_MOST])
    if len(ids) > SHOW_AT_MOST:
        known += f" and {len(ids) - SHOW_AT_MOST} more"
    return known or "none"


def _close_ids(wanted: str, ids: list[str]) -> list[str]:
    """The ids ``wanted`` was probably meant to be: same letters in another case, else
    close spellings (at most 3)."""
    folded = wanted.casefold()
    same = [i for i in ids if i.casefold() == folded]
    if same:
        return same
    import difflib

    by_fold = {i.casefold(): i for i in ids}
    return [by_fold[m] for m in difflib.get_close_matches(folded, list(by_fold), n=3)]


def _how(source: str, user: str) -> str:
    if source == "--as":
        return f"--as {user}"
    if source == USER_ENV:
        return f"{USER_ENV}={user}"
    return f"--as {user} or {USER_ENV}={user}"


def _refuse(message: str) -> str:
    raise UnknownUser(message, hint=f"say who you are with --as USER or {USER_ENV}=USER")

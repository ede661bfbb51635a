"""Who a command acts as: ``--as USER``, else FLOWCTL_USER, else the login name.

The user must be in the org directory; otherwise the command is refused with
the id probably meant (``Linda`` -> ``linda``, then close spellings), else the
known users.

How far a claim is believed is the workspace's identity policy
(``identity`` in flowctl.toml, :mod:`flowctl.api.workspace`):

- ``login`` (the default): the acting user is the operating-system login name,
  the org user with that id. ``--as USER`` (or FLOWCTL_USER, the same claim)
  naming someone else is accepted only from a user with the admin role: the
  command then acts for USER and its journal entries record both, the entry's
  actor (USER) and ``by`` (the admin) in its data. Anyone else is refused.
- ``trust``: ``--as`` and FLOWCTL_USER are believed, as said (a demo, the tests,
  a single-user machine); only when the workspace file says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from msgspec import Struct

from flowctl.api.workspace import IDENTITY_LOGIN, IDENTITY_TRUST
from flowctl.errors import FlowctlError, UsageError
from flowctl.model import OrgDirectory

USER_ENV = "FLOWCTL_USER"
SHOW_AT_MOST = 8
ADMIN_ROLE = "admin"


class ActingForOthersRefused(FlowctlError):
    """A user who is not an admin asked to act for someone else (exit 1)."""

    exit_code = 1


class Acting(Struct, frozen=True):
    """Whom a command acts for (``user``), and who asked, when that is someone
    else (``by``: an admin acting for ``user`` under the login policy)."""

    user: str
    by: str | None = None


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


def resolve_acting(
    explicit: str | None,
    org: OrgDirectory,
    *,
    policy: str = IDENTITY_LOGIN,
    environ: Mapping[str, str] | None = None,
    db_login: str | None = None,
) -> Acting:
    """The acting user under the workspace's identity ``policy`` (see the module doc).

    ``UnknownUser`` (exit 2) when the user is not in ``org``;
    ``ActingForOthersRefused`` (exit 1) when someone who is not an admin claims
    to be someone else under the login policy.

    ``db_login``: the store's server says who is connected (a PostgreSQL
    store): that login, not the operating system's, is who you are; the org
    user whose ``db_login`` it is, else the user with that id.
    """
    if policy == IDENTITY_TRUST:
        return Acting(resolve_user(explicit, org, environ=environ))
    env = os.environ if environ is None else environ
    where = f" {org.source}" if org.source else ""
    if db_login is not None:
        mapped = [u for u in org.users if u.db_login == db_login]
        if len(mapped) > 1:
            raise UnknownUser(
                f"your database login '{db_login}' is the db_login of several users of the org "
                f"directory{where}: {', '.join(u.id for u in mapped)}",
                hint="give each user their own db_login",
            )
        me = mapped[0] if mapped else org.user(db_login)
        if me is None:
            raise UnknownUser(
                f"your database login '{db_login}' is not a user of the org directory{where} "
                "(no user has that id or db_login); the store's server establishes who you are",
                hint="ask an admin to add you to the org directory (db_login: "
                     f"{db_login}, when your user id differs)",
            )
        return _claimed(me.id, explicit, env, org, where)
    login = login_name()
    if not login:
        raise UnknownUser(
            "cannot tell who you are: the workspace establishes identity by the login "
            "name (identity = \"login\"), and there is none",
            hint="run flowctl under your own login",
        )
    me = org.user(login)
    if me is None:
        raise UnknownUser(
            f"your login name '{login}' is not a user of the org directory{where}; the "
            "workspace establishes identity by the login name (identity = \"login\")",
            hint="ask an admin to add you to the org directory with that id",
        )
    return _claimed(me.id, explicit, env, org, where)


def _claimed(
    me_id: str, explicit: str | None, env: Mapping[str, str], org: OrgDirectory, where: str
) -> Acting:
    """``me_id`` acting, or, when an admin, acting for the user they name."""
    me = org.user(me_id)
    assert me is not None  # found by the caller
    claim = Identity(explicit, "--as") if explicit else (
        Identity(env[USER_ENV], USER_ENV) if env.get(USER_ENV) else None)
    if claim is None or claim.user == me.id:
        return Acting(me.id)
    admins = [u.id for u in org.members(ADMIN_ROLE)]
    if ADMIN_ROLE not in me.roles:
        shown = "--as" if claim.source == "--as" else USER_ENV
        raise ActingForOthersRefused(
            f"{me.id} asked to act as {claim.user} ({shown} {claim.user}): only users with "
            f"the admin role may act for someone else here (identity = \"login\"); "
            f"admins: {_known(admins)}",
            hint="run the command as yourself (without "
                 + ("--as" if claim.source == "--as" else USER_ENV) + ")",
        )
    if org.user(claim.user) is None:
        close = _close_ids(claim.user, [u.id for u in org.users])
        meant = " or ".join(f"'{c}'" for c in close)
        raise UnknownUser(
            f"{me.id} asked to act for '{claim.user}' (from {claim.source}): not a user of "
            f"the org directory{where}" + (f"; did you mean {meant}?" if close else ""),
            hint="name a user of the org directory (user ids are lowercase)",
        )
    return Acting(claim.user, by=me.id)

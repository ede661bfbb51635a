"""Who may see an instance.

An instance is seen by its initiator, by everyone who held or decided one of
its stages (an assignee or approver when a stage was entered, reassigned or
escalated, a task's assignee, anyone who acted on it: every actor in its
journal but of a note, link or attachment, which only needs seeing it), by
its watchers (``flowctl share``), and by users with the admin or
auditor role. Everyone else is refused (:class:`NotVisible`, exit 1) by
``show``, ``note``, ``link``, ``attach``, ``attachment``, ``render --instance``
and ``journal INSTANCE``, and does not find it in ``list`` or ``journal``.
The initiator or an admin grants access with ``flowctl share``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowctl import engine
from flowctl.errors import FlowctlError
from flowctl.model import OrgDirectory
from flowctl.store.base import InstanceRow, JournalEntry

AUDITOR_ROLE = "auditor"
SEES_ALL = (engine.ADMIN_ROLE, AUDITOR_ROLE)
# journal data that names who held a stage: principals or user ids
HOLDER_KEYS = ("assignees", "to", "assignee", "from")
# what anyone who sees an instance may do: it makes nobody a participant
# (watchers: the row says who they are now)
SEEING_KINDS = ("note", "link", "attached", "shared", "unshared", "notification_failed")


class NotVisible(FlowctlError):
    """The acting user may not see this instance (exit 1)."""

    exit_code = 1


def sees_all(user: str, org: OrgDirectory) -> bool:
    """An admin or an auditor sees every instance."""
    u = org.user(user)
    return u is not None and any(r in u.roles for r in SEES_ALL)


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _holds(user: str, name: str, org: OrgDirectory) -> bool:
    principal = name if ":" in name else engine.user_principal(name)
    return engine.holds(user, principal, org)


def by_row(user: str, row: InstanceRow, org: OrgDirectory) -> bool:
    """What the instance row alone shows: initiator, watcher, current holder."""
    if row.initiator == user or sees_all(user, org):
        return True
    if user in (row.state.get("watchers") or ()):
        return True
    return any(_holds(user, p, org) for p in row.assignees)


def by_journal(user: str, entries: Iterable[JournalEntry], org: OrgDirectory) -> bool:
    """Whether ``user`` acted on, or held a stage of, the instance of ``entries``."""
    for e in entries:
        if e.kind in SEEING_KINDS:
            continue
        if e.actor == user or e.data.get("by") == user:
            return True
        for key in HOLDER_KEYS:
            if any(_holds(user, n, org) for n in _names(e.data.get(key))):
                return True
    return False


def refusal(user: str, row: InstanceRow, org: OrgDirectory) -> NotVisible:
    admins = [u.id for u in org.members(engine.ADMIN_ROLE)]
    return NotVisible(
        f"{user} may not see {row.id}: it is seen by its initiator ({row.initiator}), those "
        "who held or decided one of its stages, those it is shared with, and admins and "
        "auditors",
        hint=f"ask {row.initiator} (initiator) or an admin ({', '.join(admins) or 'none'}) "
             f"to run `flowctl share {row.id} {user}`",
    )

"""Delivering notifications: the users' channels (Apprise URLs) and the
admin's command.

A user's channels come from the org directory: ``channels:`` names shared
channels of the org (``mail`` -> ``mailtos://flowctl:secret@smtp.example.com``;
a mailto/mailtos channel sends to the user's ``email``) or is an Apprise URL
of its own (``tgram://...``, ``slack://...``, an SMS gateway...). Apprise
(https://github.com/caronc/apprise) sends them; it is imported only here,
when something is delivered.

``FLOWCTL_NOTIFY_COMMAND`` is one more channel, for every user: a shell
command (``sh -c``) that receives one notification as JSON on its standard
input and exits 0 when it delivered it::

    {"id": 12, "instance": "contract-approval-4", "user": "carol",
     "email": "carol@example.com", "name": "Carol Chen", "kind": "reminder",
     "stage": "manager-review", "subject": "...", "message": "...",
     "link": "...", "created_at": "...", "attempt": 1}

It runs with a timeout (``FLOWCTL_NOTIFY_TIMEOUT`` seconds, default 30).

A notification is delivered once every channel of its user took it; a
channel that failed is tried again later with a growing delay (1, 2, 4, 8
minutes), at most ``MAX_ATTEMPTS`` times, and a channel that took it is not
sent it again. Every attempt is journalled (``notification_sent``,
``notification_failed``) with the channels as shown by :func:`mask`: the
secrets in a URL (passwords, tokens) never reach the journal or the screen.

E-mail channels to the same server share one SMTP connection per batch
(Apprise's own connection and message builder), as a mail client does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from msgspec import Struct

from flowctl.model import OrgDirectory
from flowctl.store.base import NotificationRow

COMMAND_ENV = "FLOWCTL_NOTIFY_COMMAND"
TIMEOUT_ENV = "FLOWCTL_NOTIFY_TIMEOUT"
LINK_ENV = "FLOWCTL_INSTANCE_URL"
WORKERS_ENV = "FLOWCTL_NOTIFY_WORKERS"
DEFAULT_WORKERS = 4  # e.g. https://crm.example.com/flowctl/{instance}
DEFAULT_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
LEASE = timedelta(minutes=10)  # a claimed notification is left alone this long
ERROR_CHARS = 500
COMMAND_KEY = "command"
MAIL_SCHEMES = ("mailto", "mailtos")


def command() -> str | None:
    text = os.environ.get(COMMAND_ENV, "").strip()
    return text or None


def timeout_s() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, "") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def link(instance_id: str) -> str:
    """Where a reader opens the instance: ``FLOWCTL_INSTANCE_URL`` with
    ``{instance}`` replaced, else the command that shows it."""
    template = os.environ.get(LINK_ENV, "").strip()
    if template:
        return template.replace("{instance}", quote(instance_id, safe=""))
    return f"flowctl show {instance_id}"


# ------------------------------------------------------------------ channels


class Channel(Struct, frozen=True):
    """One place a user's notifications go."""

    key: str  # stable across attempts: what ``channels_done`` records
    shown: str  # for people: the name, or the URL with its secrets masked
    url: str | None = None  # the Apprise URL; None: the notify command


def mask(url: str) -> str:
    """``url`` with what could be a secret hidden: its user and password, and
    every path segment and query value (Apprise URLs carry tokens there).
    Scheme, host and port stay, so an admin can tell channels apart; a URL
    whose host is itself a token (``tgram://bottoken/chat``) shows ``****``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.partition("://")[0] + "://****"
    if "." not in host and host != "localhost":
        host, port = "****", ""  # not a server name: a token (Slack, Telegram...)
    user = f"****{':****' if parts.password else ''}@" if parts.username else ""
    path = "/****" if parts.path.strip("/") else ""
    query = "?" + "&".join(f"{k.partition('=')[0]}=****" for k in parts.query.split("&")) \
        if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{path}{query}"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(url: str) -> tuple[str, str | None]:
    """``url`` with each ``${NAME}`` replaced by that environment variable, so
    that a password or token need not be written in the org directory; and
    the first name that is not set (None when all are)."""
    missing = [m.group(1) for m in _ENV_REF.finditer(url) if m.group(1) not in os.environ]
    if missing:
        return url, missing[0]
    return _ENV_REF.sub(lambda m: quote(os.environ[m.group(1)], safe=""), url), None


def _with_recipient(url: str, email: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}to={quote(email, safe='@')}"


def channels_of(user_id: str, org: OrgDirectory, cmd: str | None) -> list[Channel]:
    """The user's channels in order: the notify command (when set), then the
    org directory's ``channels`` of the user."""
    out = [Channel(COMMAND_KEY, COMMAND_ENV)] if cmd else []
    user = org.user(user_id)
    for item in user.channels if user is not None else ():
        if "://" in item:
            digest = hashlib.sha256(item.encode("utf-8")).hexdigest()[:16]
            out.append(Channel(f"url:{digest}", mask(item), item))
            continue
        shared = org.channel(item)
        if shared is None:
            out.append(Channel(f"channel:{item}", item))  # lint: FL405; fails at delivery
        elif shared.partition("://")[0] in MAIL_SCHEMES and user is not None and user.email:
            out.append(Channel(f"channel:{item}", f"{item} to {user.email}",
                               _with_recipient(shared, user.email)))
        else:
            out.append(Channel(f"channel:{item}", item, shared))
    return out


def any_channels(org: OrgDirectory) -> bool:
    """Whether anything can be delivered: the command is set, or a user has a channel."""
    return command() is not None or any(u.channels for u in org.users)


# ------------------------------------------------------------------ messages


SUBJECT_CHARS = 120


def subject(n: NotificationRow) -> str:
    """The definition's subject, else the message's first line (shortened)."""
    if n.subject:
        return n.subject
    line = n.message.splitlines()[0] if n.message else n.kind
    return line if len(line) <= SUBJECT_CHARS else line[:SUBJECT_CHARS - 1] + "…"


def body(n: NotificationRow) -> str:
    return f"{n.message}\n\n{link(n.instance_id)}\n"


def payload(n: NotificationRow, org: OrgDirectory) -> dict[str, Any]:
    user = org.user(n.user)
    return {
        "id": n.id,
        "instance": n.instance_id,
        "user": n.user,
        "email": user.email if user else None,
        "name": user.name if user else None,
        "kind": n.kind,
        "stage": n.stage,
        "subject": subject(n),
        "message": n.message,
        "link": link(n.instance_id),
        "created_at": n.created_at,
        "attempt": n.attempts + 1,
    }


def run(cmd: str, data: dict[str, Any], timeout: float) -> str | None:
    """Run the command with ``data`` as JSON on stdin: None when it exited 0,
    else what went wrong (one line)."""
    import subprocess

    text = json.dumps(data, ensure_ascii=False)
    try:
        done = subprocess.run(  # noqa: S602 - the admin's own configured shell command
            cmd, shell=True, input=text.encode("utf-8"), capture_output=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:g} s"
    except OSError as exc:
        return f"cannot run the command: {exc.strerror or exc}"
    if done.returncode == 0:
        return None
    err = done.stderr.decode("utf-8", "replace").strip().splitlines()
    detail = f": {err[-1]}" if err else ""
    return f"exit {done.returncode}{detail}"[:ERROR_CHARS]


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When to try again after ``attempts`` failures: 1, 2, 4, 8... minutes."""
    factor: int = 2 ** max(0, attempts - 1)
    return now + FIRST_RETRY * factor


# ------------------------------------------------------------------ delivery


class Outcome(Struct, frozen=True):
    """One channel's answer to one attempt: error None when it took it."""

    channel: Channel
    error: str | None = None


class Attempt(Struct, frozen=True):
    notification: NotificationRow
    outcomes: tuple[Outcome, ...]

    @property
    def done(self) -> tuple[str, ...]:
        """Every channel that has taken it, before and now."""
        now = [o.channel.key for o in self.outcomes if o.error is None]
        return tuple(dict.fromkeys([*self.notification.channels_done, *now]))

    @property
    def error(self) -> str | None:
        failed = [f"{o.channel.shown}: {o.error}" for o in self.outcomes if o.error is not None]
        return "; ".join(failed)[:ERROR_CHARS] if failed else None


def workers() -> int:
    """How many deliveries run at once (``FLOWCTL_NOTIFY_WORKERS``, default 4):
    each has its own SMTP connections, so a slow server is waited for in
    parallel."""
    try:
        value = int(os.environ.get(WORKERS_ENV, "") or DEFAULT_WORKERS)
    except ValueError:
        return DEFAULT_WORKERS
    return min(max(value, 1), 32)


def deliver(batch: Iterable[NotificationRow], org: OrgDirectory,
            progress: Callable[[int], None] | None = None) -> list[Attempt]:
    """Try each notification on each of its user's channels that has not
    taken it yet, ``workers()`` at a time."""
    cmd = command()
    todo: list[tuple[NotificationRow, list[Channel]]] = []
    for n in batch:
        chans = [c for c in channels_of(n.user, org, cmd) if c.key not in n.channels_done]
        todo.append((n, chans))
    if any(c.url for _, chans in todo for c in chans):
        _Sender.prepare()  # Apprise loads its plugins once, before the threads start
    lanes = max(1, min(workers(), len(todo)))
    parts = [todo[i::lanes] for i in range(lanes)]
    if lanes == 1:
        done = [_deliver_part(parts[0], org, cmd)]
    else:
        from concurrent.futures import ThreadPoolExecutor  # only with several workers

        with ThreadPoolExecutor(lanes) as pool:
            done = list(pool.map(lambda part: _deliver_part(part, org, cmd), parts))
    results = {k: v for d in done for k, v in d.items()}
    if progress is not None:
        for _ in todo:
            progress(1)
    return [Attempt(n, tuple(Outcome(c, _scrub(results[(n.id or 0, c.key)], c))
                             for c in chans)) for n, chans in todo]


def _deliver_part(part: list[tuple[NotificationRow, list[Channel]]], org: OrgDirectory,
                  cmd: str | None) -> dict[tuple[int, str], str | None]:
    results: dict[tuple[int, str], str | None] = {}
    sender = _Sender()
    try:
        for n, chans in part:
            for c in chans:
                if c.url is None and c.key == COMMAND_KEY:
                    err = run(cmd or "", payload(n, org), timeout_s())
                elif c.url is None:
                    err = f"the org directory has no channel '{c.shown}'"
                else:
                    err = sender.send(c, subject(n), body(n))
                results[(n.id or 0, c.key)] = err
    finally:
        sender.close()
    return results


def _scrub(error: str | None, c: Channel) -> str | None:
    """An error text never carries the channel's URL (its secrets)."""
    if error is None or c.url is None:
        return error
    expanded, _ = expand(c.url)
    return error.replace(expanded, c.shown).replace(c.url, c.shown)[:ERROR_CHARS]


_SMTP_ERROR = re.compile(r"\s+")


class _Sender:
    """Sends through Apprise; keeps one SMTP connection per mail server open
    for the whole batch."""

    def __init__(self) -> None:
        self.smtp: dict[tuple[Any, ...], Any] = {}

    @staticmethod
    def prepare() -> None:
        import apprise  # lazy: only delivery through a channel needs Apprise

        apprise.Apprise.instantiate("json://localhost")  # loads the plugins, once

    def send(self, c: Channel, title: str, text: str) -> str | None:
        import apprise  # lazy: only delivery through a channel needs Apprise

        self.apprise = apprise
        url, missing = expand(c.url or "")
        if missing:
            return (f"environment variable {missing} is not set"
                    f" (the channel's URL reads ${{{missing}}})")
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            scheme = (c.url or "").partition("://")[0]
            return f"Apprise cannot use this URL (scheme '{scheme}'; see its list of services)"
        if getattr(plugin, "secure_protocol", None) == "mailtos" or \
                getattr(plugin, "protocol", None) == "mailto":
            return self._mail(plugin, title, text)
        capture: Any = apprise.LogCapture  # untyped in Apprise
        with capture(level=apprise.logging.WARNING) as log:
            ok = plugin.notify(body=text, title=title)
        if ok:
            return None
        lines = [x for x in log.getvalue().splitlines() if x.strip()]
        return _SMTP_ERROR.sub(" ", lines[-1]) if lines else "the service refused it"

    def _mail(self, plugin: Any, title: str, text: str) -> str | None:
        from apprise.plugins.email import NotifyEmail
        from apprise.plugins.email.smtp import AppriseSMTPController

        if not plugin.targets:
            return "the mail channel names no recipient (the user has no email)"
        ident = (plugin.smtp_host, plugin.port, plugin.secure_mode, plugin.user,
                 plugin.password, plugin.verify_certificate)
        smtp = self.smtp.get(ident)
        try:
            if smtp is None:
                smtp = AppriseSMTPController(
                    host=plugin.smtp_host, port=plugin.port, secure_mode=plugin.secure_mode,
                    user=plugin.user, password=plugin.password,
                    verify_certificate=plugin.verify_certificate,
                    socket_connect_timeout=plugin.socket_connect_timeout,
                )
                smtp.__enter__()
                self.smtp[ident] = smtp
            headers = {"X-Application": plugin.app_id, **plugin.headers}
            for message in NotifyEmail.prepare_emails(
                subject=title, body=text, notify_format=plugin.resolve_format(None),
                from_addr=plugin.from_addr, to=plugin.targets, cc=plugin.cc, bcc=plugin.bcc,
                reply_to=plugin.reply_to, smtp_host=plugin.smtp_host, attach=None,
                headers=headers, names=plugin.names, pgp=plugin.pgp, pgp_mode=plugin.pgp_mode,
                inline=plugin.inline, tzinfo=plugin.tzinfo,
            ):
                if not smtp.sendmail(plugin.from_addr[1], message.to_addrs, message.body):
                    self._drop(ident)
                    return f"the SMTP server at {plugin.smtp_host} refused the message"
        except Exception as exc:  # noqa: BLE001 - any failure of one send is that attempt's error
            self._drop(ident)
            return f"cannot send through {plugin.smtp_host}:{plugin.port}: " \
                   f"{_SMTP_ERROR.sub(' ', str(exc) or type(exc).__name__)}"
        return None

    def _drop(self, ident: tuple[Any, ...]) -> None:
        smtp = self.smtp.pop(ident, None)
        if smtp is not None:
            try:
                smtp.__exit__(None, None, None)
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass

    def close(self) -> None:
        for ident in list(self.smtp):
            self._drop(ident)

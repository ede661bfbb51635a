"""Notification channels: the org directory's Apprise URLs. Mail goes to a
real SMTP server (aiosmtpd) listening on 127.0.0.1, and the test reads what
it received; a channel that fails is retried alone, every attempt is
journalled, and the secrets of the URLs are never shown."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from clirun import invoke, trust_workspace

from flowctl.api import instances as runtime
from flowctl.api import notify
from flowctl.api import timers as timework
from flowctl.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = str(ROOT / "processes")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
K1 = "key-account-filing-approval-1"


class Inbox:
    """What the SMTP server received: (envelope sender, recipients, message)."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse = False
        self.logins: list[tuple[str, str]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password in (b"s3cret", b"t0ps3cret"))

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    # AUTH over plain text: the test server has no certificate (127.0.0.1 only)
    server = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                        auth_require_tls=False)
    server.start()
    yield inbox, port
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore.open(tmp_path / "flowctl.db")
    yield st
    st.close()


def org_with_channels(tmp_path: Path, port: int, carol: str = "[mail]") -> str:
    """The shipped org directory, with a shared mail channel that Carol uses."""
    text = (ROOT / "processes" / "org.yaml").read_text("utf-8")
    text = text.replace(
        "  - id: carol\n    name: Carol Chen\n",
        f"  - id: carol\n    name: Carol Chen\n    email: carol@example.com\n"
        f"    channels: {carol}\n",
    )
    text += (f"channels:\n  mail: mailto://flowctl:s3cret@127.0.0.1:{port}"
             "?from=flowctl@example.com&mode=insecure\n")
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def kw(store: SqliteStore, org: str, user: str | None = None,
       when: datetime = T0) -> dict[str, Any]:
    out: dict[str, Any] = {"store": store, "processes_dir": PROCESSES, "org": org, "now": when}
    if user is not None:
        out["as_user"] = user
    return out


def key_at_approval(store: SqliteStore, org: str) -> None:
    runtime.start("key-account-filing-approval", values={"owner": "alice"},
                  **kw(store, org, "alice"))
    runtime.advance(K1, result="done", values={"level": "key"}, **kw(store, org, "alice"))


def wait_for(inbox: Inbox, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(inbox.mails) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_tick_mails_the_assignee_through_a_real_smtp_server(
    smtp: tuple[Inbox, int], store: SqliteStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    monkeypatch.setenv("FLOWCTL_INSTANCE_URL", "https://crm.example.com/flowctl/{instance}")
    org = org_with_channels(tmp_path, port)
    key_at_approval(store, org)
    report = timework.tick(**kw(store, org))
    [d] = report.deliveries
    assert (d.user, d.delivered, d.channels) == ("carol", True, ("mail to carol@example.com",))
    wait_for(inbox, 1)
    [(sender, rcpts, msg)] = inbox.mails
    assert (sender, rcpts) == ("flowctl@example.com", ["carol@example.com"])
    assert inbox.logins == [("flowctl", "s3cret")]
    assert msg["To"] == "carol@example.com"
    assert msg["Subject"] == f"{K1}: 'Level approval' waits for you, due 2026-11-24T09:00:00Z"
    text = msg.get_body(("plain",))
    assert text is not None
    assert f"https://crm.example.com/flowctl/{K1}" in text.get_content()
    [sent] = [e for e in runtime.journal(K1, **kw(store, org, "grace"))
              if e.kind == "notification_sent"]
    assert sent.data == {"notification": 1, "user": "carol", "kind": "assigned", "attempt": 1,
                         "sent": ["mail to carol@example.com"]}
    # delivered once: the next tick sends nothing
    assert timework.tick(**kw(store, org)).deliveries == ()
    assert len(inbox.mails) == 1


def test_a_refused_mail_is_retried_and_every_attempt_journalled_without_secrets(
    smtp: tuple[Inbox, int], store: SqliteStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    url = f"mailto://flowctl:t0ps3cret@127.0.0.1:{port}?from=flowctl@example.com&to=carol@example.com"
    org = org_with_channels(tmp_path, port, carol=f"[mail, '{url}']")
    key_at_approval(store, org)
    inbox.refuse = True
    first = timework.deliver_notifications(**kw(store, org))
    [d] = first.deliveries
    masked = f"mailto://****:****@127.0.0.1:{port}?from=****&to=****"
    assert not d.delivered
    assert d.error == (
        "mail to carol@example.com: the SMTP server at 127.0.0.1 refused the message; "
        f"{masked}: the SMTP server at 127.0.0.1 refused the message"
    )
    inbox.refuse = False
    retry_at = T0 + timedelta(minutes=1)
    assert timework.deliver_notifications(**kw(store, org, when=retry_at - timedelta(seconds=1))
                                          ).deliveries == ()
    second = timework.deliver_notifications(**kw(store, org, when=retry_at))
    [d2] = second.deliveries
    assert (d2.delivered, d2.channels) == (True, ("mail to carol@example.com", masked))
    wait_for(inbox, 2)
    assert [r for _, r, _ in inbox.mails] == [["carol@example.com"], ["carol@example.com"]]
    entries = [e for e in runtime.journal(K1, **kw(store, org, "grace"))
               if e.kind.startswith("notification_")]
    assert [(e.kind, e.data["attempt"]) for e in entries] == [
        ("notification_failed", 1), ("notification_sent", 2)]
    assert entries[0].data["next_attempt_at"] == "2026-11-23T09:01:00Z"
    assert entries[0].data["failed"] == {
        "mail to carol@example.com": "the SMTP server at 127.0.0.1 refused the message",
        masked: "the SMTP server at 127.0.0.1 refused the message",
    }
    db = tmp_path / "flowctl.db"
    assert b"t0ps3cret" not in db.read_bytes()
    assert b"s3cret" not in db.read_bytes()


def test_only_the_channel_that_failed_is_tried_again(
    smtp: tuple[Inbox, int], store: SqliteStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    dead = free_port()  # nothing listens there
    url = f"mailto://127.0.0.1:{dead}?from=flowctl@example.com&to=carol@example.com&cto=2"
    org = org_with_channels(tmp_path, port, carol=f"[mail, '{url}']")
    key_at_approval(store, org)
    [d] = timework.deliver_notifications(**kw(store, org)).deliveries
    assert not d.delivered
    assert d.channels == ("mail to carol@example.com",)
    assert (d.error or "").startswith(f"mailto://127.0.0.1:{dead}?from=****&to=****&cto=****:"
                                      f" cannot send through 127.0.0.1:{dead}: ")
    wait_for(inbox, 1)
    assert len(inbox.mails) == 1
    [n] = store.notifications("carol")
    assert n.channels_done == ("channel:mail",)
    later = T0 + timedelta(minutes=1)
    [d2] = timework.deliver_notifications(**kw(store, org, when=later)).deliveries
    assert not d2.delivered
    assert d2.channels == ()
    assert len(inbox.mails) == 1  # the mail channel that took it is not sent it again


def test_an_unknown_service_url_fails_with_a_reason(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    org = org_with_channels(tmp_path, 25, carol="['nosuchservice://token@host']")
    key_at_approval(store, org)
    [d] = timework.deliver_notifications(**kw(store, org)).deliveries
    assert d.error == ("nosuchservice://****@****: Apprise cannot use this URL"
                       " (scheme 'nosuchservice'; see its list of services)")


def test_mask_hides_passwords_tokens_and_query_values() -> None:
    assert notify.mask("tgram://123456:ABCDEF/987654") == "tgram://****"
    assert notify.mask("slack://TokenA/TokenB/TokenC/#general") == "slack://****/****"
    assert notify.mask("mailtos://me:pw@smtp.example.com:587?from=a@b") == \
        "mailtos://****:****@smtp.example.com:587?from=****"
    assert notify.mask("json://user@hooks.example.com") == "json://****@hooks.example.com"


def test_cli_deliver_shows_masked_errors(
    smtp: tuple[Inbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    inbox.refuse = True
    org = org_with_channels(tmp_path, port)
    env = {"FLOWCTL_PROCESSES": PROCESSES, "FLOWCTL_ORG": org,
           "FLOWCTL_DB": str(tmp_path / "cli.db"), "FLOWCTL_USER": "alice",
           "FLOWCTL_NOW": "2026-11-23T09:00:00Z"}
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    monkeypatch.chdir(tmp_path)
    trust_workspace(tmp_path)
    started = invoke(["start", "key-account-filing-approval", "--set", "owner=alice"], env=env)
    assert started.exit_code == 0, started.stderr
    assert invoke(["advance", K1, "--result", "done", "--set", "level=key"],
                  env=env).exit_code == 0
    result = invoke(["notifications", "deliver"], env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "notifications: delivered 0, failed 1, 1 undelivered",
        f"  #1 to carol ({K1}): mail to carol@example.com: the SMTP server at 127.0.0.1"
        " refused the message; will retry",
    ]
    assert "s3cret" not in result.stdout + result.stderr
    # docs/operators.md shows this very output
    doc = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    assert "$ flowctl notifications deliver\n" + result.stdout in doc


@pytest.mark.parametrize("workers", ["1", "3"])
def test_several_deliveries_at_once_send_each_mail_once(
    smtp: tuple[Inbox, int], store: SqliteStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, workers: str,
) -> None:
    inbox, port = smtp
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    monkeypatch.setenv("FLOWCTL_NOTIFY_WORKERS", workers)
    org = org_with_channels(tmp_path, port)
    for i in range(1, 6):
        runtime.start("key-account-filing-approval", values={"owner": "alice"},
                      **kw(store, org, "alice"))
        runtime.advance(f"key-account-filing-approval-{i}", result="done",
                        values={"level": "key"}, **kw(store, org, "alice"))
    report = timework.deliver_notifications(**kw(store, org))
    assert sorted(d.instance_id for d in report.deliveries if d.delivered) == [
        f"key-account-filing-approval-{i}" for i in range(1, 6)]
    wait_for(inbox, 5)
    subjects = sorted(str(m["Subject"]).split(":")[0] for _, _, m in inbox.mails)
    assert subjects == [f"key-account-filing-approval-{i}" for i in range(1, 6)]
    assert timework.deliver_notifications(**kw(store, org)).deliveries == ()


def test_a_secret_can_come_from_the_environment(
    smtp: tuple[Inbox, int], store: SqliteStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    monkeypatch.delenv("FLOWCTL_NOTIFY_COMMAND", raising=False)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    url = (f"mailto://flowctl:${{SMTP_PASSWORD}}@127.0.0.1:{port}"
           "?from=flowctl@example.com&to=carol@example.com")
    org = org_with_channels(tmp_path, port, carol=f"['{url}']")
    key_at_approval(store, org)
    [d] = timework.deliver_notifications(**kw(store, org)).deliveries
    assert d.error == (f"mailto://****:****@127.0.0.1:{port}?from=****&to=****: environment"
                       " variable SMTP_PASSWORD is not set (the channel's URL reads"
                       " ${SMTP_PASSWORD})")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    [d2] = timework.deliver_notifications(**kw(store, org, when=T0 + timedelta(minutes=1))
                                          ).deliveries
    assert d2.delivered
    wait_for(inbox, 1)
    assert inbox.logins == [("flowctl", "s3cret")]
    assert b"s3cret" not in (tmp_path / "flowctl.db").read_bytes()

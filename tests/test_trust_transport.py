"""Transport: certificates verified unless a connection says otherwise (and the start-up log says so);
no password in clear to another machine unless explicitly allowed."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest
from imap_support import TlsPymap

from mailtickets.errors import InvalidInput
from mailtickets.ingest.imap_session import ImapError, ImapSession, tls_context
from mailtickets.ingest.mailbox_config import check_mailbox, parse_imap_url
from mailtickets.notify.smtp import smtp_target
from mailtickets.service.app import SchemaNotCurrent, run
from mailtickets.service.posture import security_warnings
from mailtickets.settings import MailboxSettings, Settings

pytest_plugins = ["imap_fixtures"]


def _mailbox(**values: object) -> MailboxSettings:
    return MailboxSettings.model_validate({"name": "m", "username": "u", "password": "pw", **values})


def test_certificates_are_verified_by_default() -> None:
    context = tls_context(_mailbox())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_turning_verification_off_is_per_mailbox() -> None:
    context = tls_context(_mailbox(tls_verify=False))
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert not parse_imap_url("imaps://u:p@imap.example/INBOX?tls_verify=0").tls_verify
    assert parse_imap_url("imaps://u:p@imap.example/INBOX").tls_verify


async def test_an_unverified_certificate_connects_only_when_asked(starttls_pymap: TlsPymap) -> None:
    server = starttls_pymap.server
    await asyncio.to_thread(server.create, server.prefix)
    refused = ImapSession(server.mailbox(security="starttls"))
    with pytest.raises(ImapError, match="CERTIFICATE_VERIFY_FAILED"):
        await refused.open()
    accepted = ImapSession(server.mailbox(security="starttls", tls_verify=False))
    assert await accepted.open() > 0
    await accepted.call(accepted.client.logout())


def test_plain_login_off_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(InvalidInput, match="allow_plain_login"):
        check_mailbox(_mailbox(host="mail.example.com", security="plain"))
    assert check_mailbox(_mailbox(host="mail.example.com", security="plain", allow_plain_login=True))
    assert check_mailbox(_mailbox(host="127.0.0.1", security="plain"))
    assert parse_imap_url("imap://u:p@mail.example.com/INBOX?allow_plain_login=1").allow_plain_login


def test_smtp_login_in_clear_off_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(InvalidInput, match="smtp_allow_plain_login"):
        smtp_target(Settings(smtp_url="smtp://u:pw@relay.example:25"))
    assert smtp_target(Settings(smtp_url="smtp://u:pw@relay.example:25", smtp_allow_plain_login=True))
    assert smtp_target(Settings(smtp_url="smtp://u:pw@127.0.0.1:25")).plain_login
    assert smtp_target(Settings(smtp_url="smtp://relay.example:25")).username is None  # no login: nothing to leak
    assert smtp_target(Settings(smtp_url="smtps://u:pw@relay.example")).verify_certificate
    assert not smtp_target(Settings(smtp_url="smtps://u:pw@relay.example", smtp_tls_verify=False)).verify_certificate


def test_the_posture_names_each_weakness() -> None:
    settings = Settings(
        mailboxes=[
            _mailbox(tls_verify=False),
            _mailbox(name="n", host="mail.example.com", security="plain", allow_plain_login=True),
        ],
        smtp_url="smtps://u:pw@relay.example",
        smtp_tls_verify=False,
    )
    warnings = "\n".join(security_warnings(settings))
    assert "no trusted authserv-id configured" in warnings
    assert "mailbox m: the IMAP server's TLS certificate is NOT verified" in warnings
    assert "mailbox n: the password goes to mail.example.com in clear" in warnings
    assert "relay's TLS certificate is NOT verified" in warnings
    assert "topmost" in "\n".join(security_warnings(Settings(trusted_authserv_ids=["topmost"])))
    assert security_warnings(Settings(trusted_authserv_ids=["mx.example"])) == []


async def test_the_start_up_log_says_when_no_trusted_authserv_id_is_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.WARNING, "mailtickets.service.app"), pytest.raises(SchemaNotCurrent):
        await run(settings)
    assert any("no trusted authserv-id configured" in r.getMessage() for r in caplog.records)

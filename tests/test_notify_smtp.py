from __future__ import annotations

import aiosmtplib
import pytest

from mailtickets.notify.smtp import SmtpTarget, classify, parse_smtp_url


def test_plain_local_sink() -> None:
    assert parse_smtp_url("smtp://127.0.0.1:2525") == SmtpTarget("127.0.0.1", 2525)


def test_starttls_with_credentials() -> None:
    target = parse_smtp_url("smtp://user%40corp:p%3Ass@mail.example:587?starttls=1&timeout=5")
    assert (target.host, target.port, target.start_tls, target.use_tls) == ("mail.example", 587, True, False)
    assert (target.username, target.password, target.timeout) == ("user@corp", "p:ss", 5.0)
    assert "p:ss" not in repr(target)


def test_implicit_tls_and_default_ports() -> None:
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert parse_smtp_url("smtps://mail.example").use_tls
    assert parse_smtp_url("smtp://mail.example?starttls=yes").port == 587
    assert parse_smtp_url("smtp://mail.example").port == 25


@pytest.mark.parametrize("url", ["http://x", "smtp://", "mail.example:25"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_classify() -> None:
    assert classify(aiosmtplib.SMTPResponseException(550, "5.1.1 unknown")).permanent
    assert not classify(aiosmtplib.SMTPResponseException(451, "later")).permanent
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(552, "full", "a@b")])
    assert classify(refused).reply == "552 full"
    assert not classify(ConnectionRefusedError(111, "refused")).permanent

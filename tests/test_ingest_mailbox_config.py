"""Mailbox settings: the IMAP URL, the loopback-only rule for plain IMAP, the token command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mailtickets.errors import InvalidInput
from mailtickets.ingest.imap_session import ImapAuthError, oauth2_token, parse_fetch, uid_set
from mailtickets.ingest.mailbox_config import check_mailbox, configured_mailboxes, parse_imap_url, redacted
from mailtickets.settings import MailboxSettings, Settings


def test_plain_url_with_percent_encoding() -> None:
    m = parse_imap_url("imap://help%40desk:p%40ss%3Aw%2Frd@127.0.0.1:10143/Support%20Inbox")
    assert (m.host, m.port, m.security) == ("127.0.0.1", 10143, "plain")
    assert (m.username, m.password, m.folder) == ("help@desk", "p@ss:w/rd", "Support Inbox")


def test_imaps_and_starttls_and_defaults() -> None:
    assert parse_imap_url("imaps://u:p@mail.example.com").security == "tls"
    assert parse_imap_url("imaps://u:p@mail.example.com").port == 993
    assert parse_imap_url("imaps://u:p@mail.example.com").folder == "INBOX"
    starttls = parse_imap_url("imap://u:p@mail.example.com/INBOX?starttls=1")
    assert (starttls.security, starttls.port) == ("starttls", 143)


def test_oauth2_command_in_url() -> None:
    m = parse_imap_url("imaps://me%40corp.example@outlook.office365.com/?oauth2_token_command=get-token%20--me")
    assert m.oauth2_token_command == "get-token --me" and m.password == ""
    check_mailbox(m)


@pytest.mark.parametrize("url", ["pop3://u:p@host/", "imap:///INBOX"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_imap_url(url)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_plain_is_allowed_to_loopback(host: str) -> None:
    check_mailbox(MailboxSettings(name="m", host=host, security="plain", username="u", password="p"))


def test_plain_to_a_remote_host_is_refused_with_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        configured_mailboxes(Settings(imap_url="imap://u:p@mail.example.com/INBOX"))


def test_credentials_are_required_and_names_unique() -> None:
    with pytest.raises(InvalidInput, match="password"):
        check_mailbox(MailboxSettings(name="m", username="u"))
    one = MailboxSettings(name="default", username="u", password="p")
    with pytest.raises(InvalidInput, match="unique"):
        configured_mailboxes(Settings(mailboxes=[one], imap_url="imaps://u:p@mail.example.com/"))


def test_a_missing_tls_ca_file_is_refused_at_start(tmp_path: Path) -> None:
    missing = MailboxSettings(name="m", username="u", password="p", tls_ca_file=tmp_path / "nope.pem")
    with pytest.raises(InvalidInput, match="tls_ca_file"):
        check_mailbox(missing)
    (tmp_path / "ca.pem").write_text("")
    check_mailbox(missing.model_copy(update={"tls_ca_file": tmp_path / "ca.pem"}))


def test_redacted_never_shows_the_password() -> None:
    assert "s3cret" not in redacted(parse_imap_url("imaps://u:s3cret@mail.example.com/"))


def test_uid_set_compacts_ranges() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"


def test_parse_fetch_reads_the_uid_before_or_after_the_body() -> None:
    lines = [b"1 FETCH (UID 5 BODY[] {3}", bytearray(b"abc"), b")", b"2 FETCH (BODY[] {2}", bytearray(b"de"),
             b" UID 6)", b"3 FETCH (FLAGS (\\Seen))", b"Fetch completed."]  # fmt: skip
    assert parse_fetch(lines) == [(5, b"abc"), (6, b"de")]


async def test_oauth2_token_command() -> None:
    assert await oauth2_token(f"{sys.executable} -c 'print(\"tok123\")'") == "tok123"
    with pytest.raises(ImapAuthError, match="exit 3"):
        await oauth2_token(f"{sys.executable} -c 'import sys; sys.exit(3)'")

"""Which IMAP mailboxes to watch: the `[[mailboxes]]` tables plus `MAILTICKETS_IMAP_URL`, validated.

Pure functions over the settings: no sockets here.  A plain-text connection is accepted only to a
loopback host, so that a password never crosses a network in the clear.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, unquote, urlsplit

from mailtickets.errors import InvalidInput
from mailtickets.settings import MailboxSettings, Settings

DEFAULT_PORTS = {"imaps": 993, "imap": 143}
_TRUE = {"1", "true", "yes", "on"}


def parse_imap_url(url: str, name: str = "default") -> MailboxSettings:
    """`imap[s]://user:password@host:port/FOLDER?starttls=1` → MailboxSettings (percent-decoded)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise InvalidInput(f"IMAP URL must start with imap:// or imaps://, not {parts.scheme!r}://")
    if not parts.hostname:
        raise InvalidInput("IMAP URL has no host")
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["0"])[-1].lower() in _TRUE
    tls_verify = query.get("tls_verify", ["1"])[-1].lower() in _TRUE
    allow_plain_login = query.get("allow_plain_login", ["0"])[-1].lower() in _TRUE
    security = "tls" if parts.scheme == "imaps" else ("starttls" if starttls else "plain")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    token_command = query.get("oauth2_token_command", [None])[-1]
    return MailboxSettings(
        name=name,
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        oauth2_token_command=token_command,
        folder=folder,
        tls_verify=tls_verify,
        allow_plain_login=allow_plain_login,
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_mailbox(mailbox: MailboxSettings) -> MailboxSettings:
    """Refuse settings that would leak a password or cannot work; return the mailbox unchanged."""
    if mailbox.security == "plain" and not is_loopback(mailbox.host) and not mailbox.allow_plain_login:
        raise InvalidInput(
            f"mailbox {mailbox.name!r}: plain IMAP (no TLS) is allowed only to a loopback host, "
            f"not {mailbox.host!r}; use imaps:// or ?starttls=1 (or set allow_plain_login)"
        )
    if not mailbox.username:
        raise InvalidInput(f"mailbox {mailbox.name!r}: no username")
    if mailbox.tls_ca_file is not None and not mailbox.tls_ca_file.is_file():
        raise InvalidInput(f"mailbox {mailbox.name!r}: tls_ca_file {str(mailbox.tls_ca_file)!r} is not a file")
    if not mailbox.password and mailbox.password_file is None and not mailbox.oauth2_token_command:
        raise InvalidInput(f"mailbox {mailbox.name!r}: needs a password or an oauth2_token_command")
    return mailbox


def configured_mailboxes(settings: Settings) -> list[MailboxSettings]:
    """Every mailbox to watch, validated; names must be unique (they key the stored UID state)."""
    mailboxes = list(settings.mailboxes)
    if settings.imap_url:
        mailboxes.append(parse_imap_url(settings.imap_url))
    names = [m.name for m in mailboxes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"mailbox names must be unique: {', '.join(duplicates)}")
    return [check_mailbox(m) for m in mailboxes]


def redacted(mailbox: MailboxSettings) -> str:
    """How a mailbox appears in logs: never the password."""
    m = mailbox
    unverified = ", certificate NOT verified" if m.security != "plain" and not m.tls_verify else ""
    return f"{m.name} ({m.username}@{m.host}:{m.port}/{m.folder}, {m.security}{unverified})"

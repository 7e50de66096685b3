"""Secrets never reach a log line, at any level.

Two guards, both installed by `log_setup.configure_logging` (and the IMAP one by every IMAP session):
- every formatted line is scrubbed of the configured secrets (passwords, tokens, the signing key, the
  passwords inside database/SMTP/IMAP URLs) in each form a library may print them: as is, quoted and
  escaped for IMAP, as Python or JSON string literals, percent-encoded;
- aioimaplib's own DEBUG line of a LOGIN or AUTHENTICATE command is replaced whole: its masking misses
  passwords with `"` or `\\` (it masks the raw value, not the quoted one it sends) and the XOAUTH2
  token inside base64, and a token fetched at run time is not known in advance.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

from mailtickets.settings import MailboxSettings, Settings

REDACTED = "***"
MIN_SECRET_CHARS = 4  # shorter values would blot out ordinary words; no real secret is this short
IMAP_LOGGER = "aioimaplib.aioimaplib"
_CREDENTIAL_COMMAND = re.compile(r"^(Sending : b?['\"]?\S+ )(LOGIN|AUTHENTICATE)\b.*$", re.IGNORECASE | re.DOTALL)


def secret_values(settings: Settings) -> set[str]:
    """Every secret the settings hold."""
    found = {settings.secret_key}
    found.update(_mailbox_password(m) for m in settings.mailboxes)
    for url in (settings.database_url, settings.smtp_url, settings.imap_url):
        if url:
            found.add(_url_password(url))
    return {value for value in found if len(value) >= MIN_SECRET_CHARS}


def _mailbox_password(mailbox: MailboxSettings) -> str:
    try:
        return mailbox.login_password()
    except ValueError:  # an unreadable file: the login will say so; nothing to redact yet
        return ""


def _url_password(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return ""
    return unquote(password) if password else ""


def _forms(secret: str) -> set[str]:
    imap_quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    forms = {secret, imap_quoted, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)}
    forms.update(repr(form)[1:-1] for form in list(forms))
    forms.update(repr(form.encode())[2:-1] for form in list(forms))
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class SecretRedactingFormatter(logging.Formatter):
    """Formats with `inner`, then removes every form of every secret from the finished line."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        forms = {form for secret in secrets for form in _forms(secret)}
        # Longest first, so that an escaped form is removed before the plain value inside it.
        self._pattern = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True)))) if forms else None

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        return self._pattern.sub(REDACTED, line) if self._pattern is not None else line


class ImapCredentialFilter(logging.Filter):
    """aioimaplib's DEBUG line of a LOGIN/AUTHENTICATE command keeps only the command's name."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        found = _CREDENTIAL_COMMAND.match(message)
        if found is not None:
            record.msg, record.args = f"{found.group(1)}{found.group(2).upper()} {REDACTED}", None
        return True


def guard_imap_logger() -> None:
    """Idempotent: the filter is installed once on aioimaplib's logger."""
    logger = logging.getLogger(IMAP_LOGGER)
    if not any(isinstance(f, ImapCredentialFilter) for f in logger.filters):
        logger.addFilter(ImapCredentialFilter())

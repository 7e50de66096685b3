"""The SMTP relay named by ``settings.smtp_url`` and how its failures are classified.

``smtp://host:port`` (plain), ``smtp://user:pass@host:587?starttls=1`` (STARTTLS required),
``smtps://host:465`` (implicit TLS); ``?timeout=SECONDS``.  A plain smtp:// URL never upgrades on its
own: TLS is what the URL asks for, so a misconfigured relay fails loudly instead of silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from mailtickets.errors import InvalidInput
from mailtickets.ingest.mailbox_config import is_loopback
from mailtickets.settings import Settings

DEFAULT_TIMEOUT = 30.0
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify_certificate: bool = True

    def __repr__(self) -> str:  # never print the password
        return f"SmtpTarget({self.host}:{self.port}, tls={self.use_tls}, starttls={self.start_tls})"

    @property
    def plain_login(self) -> bool:
        return self.username is not None and not (self.use_tls or self.start_tls)

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
            validate_certs=self.verify_certificate,
        )


def smtp_target(settings: Settings) -> SmtpTarget:
    """The relay of `smtp_url`; a login in clear to a relay off this machine is refused unless allowed."""
    target = parse_smtp_url(settings.smtp_url, verify_certificate=settings.smtp_tls_verify)
    if target.plain_login and not is_loopback(target.host) and not settings.smtp_allow_plain_login:
        raise InvalidInput(
            f"smtp_url logs in to {target.host!r} without TLS: use smtps:// or ?starttls=1 "
            "(or set smtp_allow_plain_login)"
        )
    return target


def parse_smtp_url(url: str, *, verify_certificate: bool = True) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("smtp_url must look like smtp://[user:pass@]host[:port][?starttls=1] or smtps://...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    use_tls = parts.scheme == "smtps"
    start_tls = query.get("starttls", "").lower() in _TRUE
    default_port = 465 if use_tls else (587 if start_tls else 25)
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or default_port,
        use_tls=use_tls,
        start_tls=start_tls and not use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=float(query.get("timeout", DEFAULT_TIMEOUT)),
        verify_certificate=verify_certificate,
    )


@dataclass(frozen=True, slots=True)
class Failure:
    permanent: bool  # 5xx: the server will never take it; anything else is retried
    reply: str  # the server's reply or the connection error, recorded on the outbox row


def classify(exc: aiosmtplib.SMTPException | OSError) -> Failure:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Failure(permanent=500 <= exc.code < 600, reply=f"{exc.code} {exc.message}")
    return Failure(permanent=False, reply=f"{type(exc).__name__}: {exc}")

"""What is wrong or risky in the effective settings: for `mailtickets check` and the start of `run`.

`problems()` is pure (settings and an environment in, findings out); the checks that need a network or
the database (`reachability()`) are separate, so `run` and `check` share the same list of findings.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from mailtickets.errors import InvalidInput, MailticketsError
from mailtickets.settings import DEFAULT_SECRET_KEY, Settings

ENV_PREFIX = "MAILTICKETS_"
# Read by the CLI and the test suite, not settings fields.
OTHER_ENV_NAMES = {"MAILTICKETS_CONFIG"}
TEST_ENV_PREFIX = "MAILTICKETS_TEST_"
SECRET_FIELDS = {"secret_key", "password"}
URL_FIELDS = {"database_url", "smtp_url", "imap_url"}
MIN_SECRET_KEY_LENGTH = 16
SMTP_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Problem:
    level: Literal["error", "warning"]
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.setting}: {self.message}"


def valid_env_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_ENV_NAMES


def unknown_env_names(environ: Mapping[str, str]) -> list[Problem]:
    """Every MAILTICKETS_* variable that is no setting, with the closest valid name."""
    valid = valid_env_names()
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.startswith(TEST_ENV_PREFIX) or _is_known(name, valid):
            continue
        close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.6)
        hint = f": did you mean {close[0]}?" if close else " (see mailtickets.toml.example)"
        found.append(Problem("warning", name, f"no such setting, ignored{hint}"))
    return found


def _is_known(name: str, valid: set[str]) -> bool:
    # MAILTICKETS_MAILBOXES__0__HOST style nested values, and *_FILE variables naming a secret's file.
    return name in valid or name.partition("__")[0] in valid or name.removesuffix("_FILE") in valid


def problems(settings: Settings, environ: Mapping[str, str]) -> list[Problem]:
    """Errors (the service must not start) and warnings (it works, probably not as meant)."""
    from mailtickets.ingest.mailbox_config import configured_mailboxes

    found = unknown_env_names(environ)
    if settings.secret_key == DEFAULT_SECRET_KEY:
        found.append(Problem("error", "secret_key", "is the default: set a long random value (it signs Message-IDs)"))
    elif settings.secret_key.startswith(DEFAULT_SECRET_KEY):
        found.append(Problem("warning", "secret_key", "looks like a placeholder: set a long random value"))
    elif len(settings.secret_key) < MIN_SECRET_KEY_LENGTH:
        found.append(Problem("error", "secret_key", f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"))
    domain = settings.support_address.rpartition("@")[2].lower()
    if domain in ("", "localhost") or "." not in domain:
        found.append(Problem("warning", "support_address", f"{settings.support_address!r} cannot receive replies"))
    try:
        mailboxes = configured_mailboxes(settings)
    except InvalidInput as exc:
        return [*found, Problem("error", "mailboxes", str(exc))]
    if not mailboxes and not settings.lmtp_bind:
        found.append(
            Problem("warning", "mailboxes", "no mailbox and no lmtp_bind: only `mailtickets ingest` takes mail in")
        )
    return found


async def reachability(settings: Settings) -> list[Problem]:
    """The checks that talk to servers: the database (answers, has the current schema) and SMTP (answers)."""
    found = await _database_problems(settings)
    smtp = await smtp_problem(settings)
    return found + ([smtp] if smtp else [])


async def _database_problems(settings: Settings) -> list[Problem]:
    from mailtickets.db import create_engine
    from mailtickets.service.app import check_schema
    from mailtickets.store_status import check_store

    try:
        engine = create_engine(settings.database_url)
    except MailticketsError as exc:
        return [Problem("error", "database_url", str(exc))]
    try:
        await check_store(engine, settings.database_url)
        await check_schema(engine, settings.database_url)
    except MailticketsError as exc:
        return [Problem("error", "database_url", str(exc))]
    finally:
        await engine.dispose()
    return []


async def smtp_problem(settings: Settings) -> Problem | None:
    from mailtickets.notify.smtp import parse_smtp_url

    try:
        target = parse_smtp_url(settings.smtp_url)
    except (InvalidInput, ValueError) as exc:
        return Problem("error", "smtp_url", str(exc))
    try:
        async with asyncio.timeout(SMTP_PROBE_SECONDS):
            _, writer = await asyncio.open_connection(target.host, target.port)
    except (OSError, TimeoutError) as exc:
        why = os.strerror(exc.errno).lower() if isinstance(exc, OSError) and exc.errno else "no answer"
        where = f"{target.host}:{target.port}"
        return Problem("warning", "smtp_url", f"{where} does not answer ({why}): notifications wait in the outbox")
    writer.close()
    return None


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings with every secret replaced by '***' (passwords inside URLs too)."""
    shown: dict[str, Any] = _mask(settings.model_dump(mode="json"))
    return shown


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(item, key) for item in value]
    if key in SECRET_FIELDS and value:
        return "***"
    if key in URL_FIELDS and isinstance(value, str):
        return mask_url_password(value)
    return value


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))

"""One typed settings object, read once at start-up from MAILTICKETS_* variables and an optional TOML file.

Environment variables win over the TOML file, which wins over the defaults.  Nothing else in the code
reads the environment: the object is built in the CLI or the composition root and passed down.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

MEGABYTE = 1024 * 1024
DEFAULT_SECRET_KEY = "change-me"  # `mailtickets run` refuses it (and warns about any other "change-me…")


def comma_list(value: Any) -> Any:
    """A list setting from the environment: JSON (`["a@x.example"]`) or comma-separated (`a@x.example,b@x.example`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


# Read from the environment as text (NoDecode) and split by comma_list, so both spellings work.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(comma_list)]

ReopenPolicy = Literal["reopen-within-window", "new-linked", "always-reopen"]
UnknownSenderPolicy = Literal["quarantine", "drop"]
UnauthenticatedSenderPolicy = Literal["unknown", "accept"]
AcknowledgeNewContacts = Literal["authenticated", "always", "never"]
AgentMailRequires = Literal["either", "dmarc", "signed-reply", "both"]


class MailboxSettings(BaseModel):
    """One IMAP mailbox to watch (the `[[mailboxes]]` tables of the TOML file)."""

    name: str
    host: str = "127.0.0.1"
    port: int = 993
    security: Literal["tls", "starttls", "plain"] = "tls"
    tls_ca_file: Path | None = None  # trust only this CA (or the server's own certificate); none: the system's CAs
    tls_verify: bool = True  # False: the certificate is not checked (logged at start); for a lab only
    allow_plain_login: bool = False  # a password in clear to a non-loopback host (security "plain")
    username: str = ""
    password: str = ""
    password_file: Path | None = None  # the password read from this file (Docker secrets)
    oauth2_token_command: str | None = None
    folder: str = "INBOX"
    after_processing: Literal["move", "flag"] = "move"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    poll_interval_seconds: float = 60.0

    def login_password(self) -> str:
        """`password`, or the content of `password_file` (read when needed: a rotated secret is picked up)."""
        if self.password or self.password_file is None:
            return self.password
        return read_secret_file(self.password_file, f"mailbox {self.name!r}: password_file")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILTICKETS_", extra="forbid", env_nested_delimiter="__")

    # Storage
    database_url: str = "sqlite+aiosqlite:///./mailtickets.db"
    data_dir: Path = Path("./mailtickets-data")
    raw_mail_retention_days: float = 0.0  # `mailtickets db purge` forgets older raw mail; 0: keep it forever

    # Tickets and threading
    ticket_prefix: str = "TCK-"
    reopen_policy: ReopenPolicy = "reopen-within-window"
    reopen_window_days: float = 7.0
    unknown_sender: UnknownSenderPolicy = "quarantine"
    own_addresses: CommaList = Field(default_factory=list)

    # Sender trust
    trusted_authserv_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    unauthenticated_sender: UnauthenticatedSenderPolicy = "unknown"
    acknowledge_new_contacts: AcknowledgeNewContacts = "authenticated"
    dkim_verify: bool = False  # our own DKIM check where no trusted authserv-id gave a verdict
    keep_remote_resources: bool = False  # stored HTML keeps remote images (tracking pixels); cid: images always

    # Agents working from their inbox
    agent_mail_requires: AgentMailRequires = "either"
    note_address: str | None = None  # e.g. support+note@helpdesk.example: agents' mail to it is a private note
    agent_forward_as_client: bool = True
    support_display_name: str = "Support"  # agents' replies go out as "Dan via Support" <support_address>

    # Limits
    max_message_bytes: int = 25 * MEGABYTE
    max_attachment_bytes: int = 25 * MEGABYTE
    max_attachments: int = 100
    max_mime_parts: int = 500
    max_text_chars: int = 500_000
    worker_timeout_seconds: float = 60.0
    parse_timeout_seconds: float = 5.0
    parse_memory_limit_bytes: int = 1024 * MEGABYTE
    parse_workers: int = 2
    poison_max_attempts: int = 5
    poison_max_age_seconds: float = 3600.0
    ingest_batch_size: int = Field(default=50, ge=1)

    # Outgoing mail
    smtp_url: str = "smtp://127.0.0.1:25"
    smtp_tls_verify: bool = True  # False: the relay's certificate is not checked (logged at start)
    smtp_allow_plain_login: bool = False  # a password in clear to a non-loopback relay without TLS
    support_address: str = "support@localhost"
    message_id_domain: str = ""
    secret_key: str = DEFAULT_SECRET_KEY
    notify_new_tickets_to: CommaList = Field(default_factory=list)
    notify_client_on_create: bool = True
    notify_client_on_close: bool = True
    notify_client_on_merge: bool = True
    notify_distribution_on_create: bool = True
    notify_agent_on_assign: bool = True
    notify_agent_on_client_reply: bool = True
    notify_client_on_agent_reply: bool = True
    notify_client_autoclose_chaser: bool = True
    templates_dir: Path | None = None
    auto_mail_limit_short: int = 10
    auto_mail_window_short_minutes: float = 10.0
    auto_mail_limit_long: int = 25
    auto_mail_window_long_minutes: float = 60.0
    outbox_batch_size: int = 50
    outbox_max_attempts: int = 12

    # Auto-close
    autoclose_chaser_hours: float = 48.0
    autoclose_close_hours: float = 72.0
    autoclose_interval_seconds: float = 300.0

    # Intake
    imap_url: str | None = None
    mailboxes: list[MailboxSettings] = Field(default_factory=list)
    lmtp_bind: str | None = None
    idle_renew_seconds: float = 25 * 60.0
    lease_seconds: float = 30.0
    imap_fetch_batch_bytes: int = 50 * MEGABYTE
    lmtp_max_concurrent_deliveries: int = 4

    # HTTP API and operations
    http_bind: str = "127.0.0.1:8000"  # empty: `mailtickets run` serves no API
    api_max_body_bytes: int = 2 * MEGABYTE
    contact_mobile_e164: bool = False
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    # Admin console (/admin/ on http_bind)
    public_url: str = ""  # e.g. https://helpdesk.example.com: https makes the session cookie Secure
    console_session_hours: float = 12.0
    console_login_failures_per_account: int = 5
    console_login_failures_per_address: int = 20
    console_login_window_minutes: float = 15.0

    @field_validator("http_bind", "lmtp_bind")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value:  # empty: that server is off
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:8000 (not {value!r})")
        return value

    @field_validator("trusted_authserv_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`mx.google.com, *.prod.outlook.com` in the environment; a list in TOML."""
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list):
            return [str(item).strip().lower() for item in items if str(item).strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, SecretFilesSource(settings_cls)]
        toml_file = _CONFIG_FILE.get("path")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def own_message_id_domain(self) -> str:
        return self.message_id_domain or self.support_address.rpartition("@")[2] or "localhost"


SECRET_FIELDS = ("secret_key", "database_url", "smtp_url", "imap_url")


def read_secret_file(path: Path, field: str) -> str:
    """A secret kept in a file (Docker/systemd secrets): its content without the final newline."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"{field}: cannot read {path}: {type(exc).__name__}") from None


class SecretFilesSource(PydanticBaseSettingsSource):
    """`MAILTICKETS_<NAME>_FILE=/run/secrets/x` for each secret: below the variable itself, above the TOML."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            path = os.environ.get(f"MAILTICKETS_{name.upper()}_FILE")
            if path:
                found[name] = read_secret_file(Path(path), f"MAILTICKETS_{name.upper()}_FILE")
        return found


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the field, never the value."""


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    ]
    return "invalid settings: " + "; ".join(problems)


# pydantic-settings reads the TOML path from the class; this holds it only for the duration of load().
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


class ConfigFileError(ValueError):
    """The TOML file named by --config or MAILTICKETS_CONFIG is missing or malformed."""


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, the TOML file (if any) and the environment."""
    path = config_file or os.environ.get("MAILTICKETS_CONFIG") or None
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigFileError(f"config file not found: {path}")
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # pydantic would print the rejected input: a password or a URL holding one.
        raise SettingsError(_describe(exc)) from None
    except PydanticSettingsError as exc:  # a variable that is not valid JSON; the message names only the field
        raise SettingsError(str(exc)) from None
    finally:
        _CONFIG_FILE["path"] = None

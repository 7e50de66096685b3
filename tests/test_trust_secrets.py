"""Secrets never reach a log, an error message or a world-readable file."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import tomli_w
from imap_support import PYMAP_USER, ImapServer, PymapProcess, free_port, make_message

from mailtickets.db import create_engine, upgrade
from mailtickets.redact import secret_values
from mailtickets.settings import MailboxSettings, Settings, SettingsError, load_settings
from mailtickets.storage import FileStore

IMAP_PASSWORD = "pa\"ss\\wo'rd 1"
OAUTH_TOKEN = "ya29.\"tok\\en'x9"
SMTP_PASSWORD = "sm\"tp\\pw'2"
SECRET_KEY = "key\"with\\back'slash-3"


def _forms(secret: str) -> list[str]:
    imap_quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    return [secret, imap_quoted, repr(secret)[1:-1], repr(imap_quoted.encode())[2:-1], quote(secret, safe="")]


@pytest.fixture
def quoted_password_pymap() -> ImapServer:
    process = PymapProcess(free_port(), password=IMAP_PASSWORD)
    process.start()
    yield ImapServer("pymap", "127.0.0.1", process.port, PYMAP_USER, IMAP_PASSWORD, pymap=process)  # type: ignore[misc]
    process.stop()


def _config(tmp_path: Path, server: ImapServer) -> Path:
    token_script = tmp_path / "token.py"
    token_script.write_text(f"print({OAUTH_TOKEN!r})\n")
    plain = server.mailbox().model_dump(mode="json", exclude_none=True)
    oauth = {**plain, "name": f"{server.prefix}-oauth", "password": ""}
    oauth["oauth2_token_command"] = f"{sys.executable} {token_script}"
    config = tmp_path / "mailtickets.toml"
    config.write_text(tomli_w.dumps({"mailboxes": [plain, oauth]}))
    return config


def _wait(predicate: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_full_run_at_debug_logs_no_password_token_or_key(tmp_path: Path, quoted_password_pymap: ImapServer) -> None:
    server = quoted_password_pymap
    database = tmp_path / "run.db"
    upgrade(f"sqlite+aiosqlite:///{database}")
    with sqlite3.connect(database) as db:  # mail from example.com opens tickets, which queue a notification
        db.execute("insert into clients (id, name) values (1, 'Example Ltd')")
        db.execute("insert into client_domains (client_id, domain) values (1, 'example.com')")
    server.create(server.prefix)
    server.append(server.prefix, make_message(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKETS_")}
    env.update(
        MAILTICKETS_CONFIG=str(_config(tmp_path, server)),
        MAILTICKETS_LOG_LEVEL="DEBUG",
        MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        MAILTICKETS_DATA_DIR=str(tmp_path / "data"),
        MAILTICKETS_SECRET_KEY=SECRET_KEY,
        MAILTICKETS_SMTP_URL=f"smtp://mailer:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{free_port()}",
        MAILTICKETS_SUPPORT_ADDRESS="support@helpdesk.example",
        MAILTICKETS_NOTIFY_NEW_TICKETS_TO='["agents@helpdesk.example"]',  # an outbox mail that fails to send
        MAILTICKETS_HTTP_BIND="",
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        service = subprocess.Popen(
            [sys.executable, "-c", "from mailtickets.cli import main; main()", "run"], env=env, stdout=out, stderr=out
        )
    try:
        _wait(lambda: sqlite3.connect(database).execute("select count(*) from inbound_mail").fetchone()[0] == 1)
        _wait(lambda: "AUTHENTICATE" in log.read_text(errors="replace") and "outbox mail" in log.read_text())
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    text = log.read_text(errors="replace")
    assert "DEBUG aioimaplib" in text and "LOGIN ***" in text, text[-3000:]  # DEBUG was on, logins were logged
    sasl = base64.b64encode(f"user={PYMAP_USER}\1auth=Bearer {OAUTH_TOKEN}\1\1".encode()).decode()
    for secret in (IMAP_PASSWORD, OAUTH_TOKEN, SMTP_PASSWORD, SECRET_KEY):
        for form in _forms(secret):
            assert form not in text, f"{form!r} is in the log"
    assert sasl not in text and sasl[:24] not in text


def test_a_settings_error_names_the_field_and_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILTICKETS_MAILBOXES", json.dumps([{"name": "m", "password": IMAP_PASSWORD, "port": "x"}]))
    monkeypatch.setenv("MAILTICKETS_LEASE_SECONDS", SECRET_KEY)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "lease_seconds" in message and "mailboxes.0.port" in message
    for secret in (IMAP_PASSWORD, SECRET_KEY, "wo'rd", "back"):
        assert secret not in message


def test_settings_error_from_the_cli_shows_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from mailtickets.cli import main

    monkeypatch.setenv("MAILTICKETS_SMTP_TLS_VERIFY", SECRET_KEY)
    result = CliRunner().invoke(main, ["tickets", "list"])
    assert result.exit_code != 0 and "smtp_tls_verify" in result.output
    assert "back" not in result.output


def test_every_secret_has_a_file_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "secret_key": SECRET_KEY,
        "database_url": f"postgresql+asyncpg://app:{quote(SMTP_PASSWORD, safe='')}@db/app",
        "smtp_url": "smtps://u:pw@relay.example",
        "imap_url": "imaps://u:pw@imap.example/INBOX",
    }
    for name, value in values.items():
        path = tmp_path / name
        path.write_text(value + "\n")  # as `echo … > file` writes it
        monkeypatch.delenv(f"MAILTICKETS_{name.upper()}", raising=False)
        monkeypatch.setenv(f"MAILTICKETS_{name.upper()}_FILE", str(path))
    settings = load_settings()
    assert {name: getattr(settings, name) for name in values} == values
    monkeypatch.setenv("MAILTICKETS_SECRET_KEY", "from-the-variable")  # the variable itself wins
    assert load_settings().secret_key == "from-the-variable"


def test_a_missing_secret_file_is_named_without_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILTICKETS_SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="MAILTICKETS_SECRET_KEY_FILE"):
        load_settings()


def test_mailbox_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(IMAP_PASSWORD + "\n")
    mailbox = MailboxSettings(name="m", username="u", password_file=tmp_path / "pw")
    assert mailbox.login_password() == IMAP_PASSWORD
    settings = Settings(mailboxes=[mailbox], secret_key=SECRET_KEY, smtp_url=f"smtp://u:{quote(SMTP_PASSWORD)}@h")
    assert {IMAP_PASSWORD, SECRET_KEY, SMTP_PASSWORD} <= secret_values(settings)


@pytest.fixture
def open_umask() -> object:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_and_its_wal_are_private(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "new" / "folder" / "mailtickets.db"
    upgrade(f"sqlite+aiosqlite:///{database}")
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.connect() as connection:
        await connection.exec_driver_sql("create table if not exists probe (x)")
        wal = database.with_name(database.name + "-wal")
        assert wal.exists()
        assert _mode(database) == 0o600 and _mode(wal) == 0o600
    await engine.dispose()
    assert _mode(database.parent) == 0o700 and _mode(database.parent.parent) == 0o700


def test_stored_files_and_their_folders_are_private(tmp_path: Path, open_umask: None) -> None:
    store = FileStore(tmp_path / "data" / "files")
    digest = store.put(b"attachment")
    path = store.path_for(digest)
    assert _mode(path) == 0o600
    assert {_mode(p) for p in (path.parent, path.parent.parent, path.parent.parent.parent)} == {0o700}

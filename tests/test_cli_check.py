"""`mailtickets check`, the start of `run`, and settings from the environment: unsafe defaults, misspelt
names and comma-separated lists are found and said, never passed silently."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailtickets.cli import main
from mailtickets.service.settings_check import mask_url_password, unknown_env_names
from mailtickets.settings import load_settings

SECRET = "a-test-secret-of-some-length"


@pytest.fixture
def env(clean_cli_env: dict[str, str | None]) -> dict[str, str | None]:
    return clean_cli_env


def invoke(env: dict[str, str | None], *args: str, **changes: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **changes})


def test_check_masks_every_secret_and_lists_every_problem(env: dict[str, str | None]) -> None:
    result = invoke(
        env,
        "check",
        "--json",
        MAILTICKETS_SMTP_URL="smtp://mailer:smtp-pw-1@127.0.0.1:1",
        MAILTICKETS_IMAP_URL="imaps://support:imap-pw-2@imap.example.net/INBOX",
        MAILTICKETS_DATABSE_URL="sqlite+aiosqlite:///typo.db",
    )
    assert result.exit_code == 78
    assert "smtp-pw-1" not in result.output and "imap-pw-2" not in result.output and "change-me" not in result.output
    report = json.loads(result.output)
    assert report["settings"]["secret_key"] == "***"
    assert report["settings"]["smtp_url"] == "smtp://mailer:***@127.0.0.1:1"
    found = {(p["level"], p["setting"]) for p in report["problems"]}
    assert found >= {
        ("error", "secret_key"),  # the default
        ("warning", "support_address"),  # support@localhost
        ("warning", "MAILTICKETS_DATABSE_URL"),
        ("warning", "smtp_url"),  # nothing answers on port 1
        ("error", "database_url"),  # no database yet
        ("warning", "security"),  # no trusted authserv-id: the posture `run` logs at start
    }
    typo = next(p for p in report["problems"] if p["setting"] == "MAILTICKETS_DATABSE_URL")
    assert "did you mean MAILTICKETS_DATABASE_URL?" in typo["message"]


def test_check_passes_on_sound_settings(env: dict[str, str | None]) -> None:
    assert invoke(env, "db", "upgrade").exit_code == 0
    with socket.create_server(("127.0.0.1", 0)) as smtp:  # answers TCP: enough for the probe
        sound = {
            "MAILTICKETS_SECRET_KEY": SECRET,
            "MAILTICKETS_SUPPORT_ADDRESS": "support@helpdesk.example",
            "MAILTICKETS_SMTP_URL": f"smtp://127.0.0.1:{smtp.getsockname()[1]}",
            "MAILTICKETS_LMTP_BIND": "127.0.0.1:8024",
            "MAILTICKETS_TRUSTED_AUTHSERV_IDS": "mx.helpdesk.example",
        }
        result = invoke(env, "check", **sound)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("0 error(s), 0 warning(s)")
    assert 'secret_key = "***"' in result.output


def test_run_refuses_the_default_secret_key(env: dict[str, str | None]) -> None:
    assert invoke(env, "db", "upgrade").exit_code == 0
    result = invoke(env, "run", MAILTICKETS_HTTP_BIND="")
    assert result.exit_code == 78
    assert "secret_key: is the default" in result.output and "mailtickets check" in result.output


def test_run_logs_a_warning_for_each_risky_default(
    env: dict[str, str | None], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "bad.toml"  # and a mailbox setting that is an error: it stops before anything runs
    config.write_text('[[mailboxes]]\nname = "x"\nhost = "imap.example.net"\nsecurity = "plain"\n')
    assert invoke(env, "db", "upgrade").exit_code == 0
    caplog.set_level(logging.WARNING, logger="mailtickets.cli.run")
    result = invoke(env, "--config", str(config), "run", MAILTICKETS_SECRET_KEY=SECRET, MAILTICKETS_HTTP_BIND="")
    assert result.exit_code == 78 and "plain IMAP" in result.output
    warned = {r.getMessage().partition(":")[0] for r in caplog.records if r.levelno == logging.WARNING}
    assert warned == {"support_address", "smtp_url"}


def test_unknown_environment_names_are_warned_with_the_closest_valid_one(env: dict[str, str | None]) -> None:
    assert invoke(env, "db", "upgrade").exit_code == 0
    result = invoke(env, "clients", "list", MAILTICKETS_NOTIFY_NEW_TICKET_TO="a@x.example")
    assert result.exit_code == 0
    assert (
        "MAILTICKETS_NOTIFY_NEW_TICKET_TO: no such setting, ignored: did you mean MAILTICKETS_NOTIFY_NEW_TICKETS_TO?"
        in (result.output)
    )


def test_known_nested_test_and_file_names_are_not_warned() -> None:
    names = {
        "MAILTICKETS_DATABASE_URL": "x",
        "MAILTICKETS_CONFIG": "x",
        "MAILTICKETS_MAILBOXES__0__HOST": "x",
        "MAILTICKETS_SECRET_KEY_FILE": "x",
        "MAILTICKETS_TEST_POSTGRES_URL": "x",
        "OTHER": "x",
    }
    assert unknown_env_names(names) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@x.example,b@x.example", ["a@x.example", "b@x.example"]),
        (" a@x.example , b@x.example ,", ["a@x.example", "b@x.example"]),
        ('["a@x.example", "b@x.example"]', ["a@x.example", "b@x.example"]),
        ("a@x.example", ["a@x.example"]),
        ("", []),
    ],
)
def test_list_settings_from_the_environment_take_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("MAILTICKETS_NOTIFY_NEW_TICKETS_TO", value)
    monkeypatch.setenv("MAILTICKETS_OWN_ADDRESSES", value)
    settings = load_settings()
    assert settings.notify_new_tickets_to == expected and settings.own_addresses == expected


def test_a_password_in_a_url_is_masked_and_the_rest_kept() -> None:
    assert mask_url_password("postgresql+asyncpg://app:p%40ss@db.example:5432/mt") == (
        "postgresql+asyncpg://app:***@db.example:5432/mt"
    )
    assert mask_url_password("smtp://127.0.0.1:25") == "smtp://127.0.0.1:25"

"""`mailtickets ingest` as an MTA runs it: exit 75 (the MTA keeps the mail) for every error that is not the
message's fault, with its cause on one stderr line; real subprocesses with the MTA's bare environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailtickets.db import upgrade
from tests.builders import make_message

EX_NOINPUT, EX_TEMPFAIL = 66, 75


def pipe(tmp_path: Path, *args: str, config: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`mailtickets [--config F] ingest ARGS` with the message on stdin, in an environment as bare as
    Postfix gives (no MAILTICKETS_* but those passed), run in tmp_path."""
    command = [sys.executable, "-m", "mailtickets.cli", *(["--config", str(config)] if config else []), "ingest"]
    return subprocess.run(
        [*command, *args], env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path, input=make_message().decode(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mailtickets ingest: temporary failure, try again later: ")
    return lines[0]


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store' / 'mt.db'}"
    (tmp_path / "store").mkdir()
    upgrade(url)
    return url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:secret@db.invalid/x", "Can't load plugin"),
        ("postgresql://u:secret@db.invalid/x", "is not usable"),
        ("sqlite:///./x.db", "requires an async driver"),
        ("not a url at all", "is not usable"),
    ],
)
def test_a_bad_database_url_exits_75_without_the_password(tmp_path: Path, url: str, expected: str) -> None:
    result = pipe(tmp_path, MAILTICKETS_DATABASE_URL=url)
    assert result.returncode == EX_TEMPFAIL
    assert expected in one_line(result) and "secret" not in result.stderr


def test_no_schema_exits_75_and_says_what_to_run(tmp_path: Path) -> None:
    result = pipe(tmp_path, MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == EX_TEMPFAIL
    assert "has no schema: run mailtickets db upgrade" in one_line(result)


def test_a_store_that_does_not_answer_exits_75(tmp_path: Path) -> None:
    result = pipe(tmp_path, MAILTICKETS_DATABASE_URL="postgresql+asyncpg://u:secret@127.0.0.1:1/x")
    assert result.returncode == EX_TEMPFAIL
    assert "ConnectionRefusedError" in one_line(result) and "secret" not in result.stderr


def test_a_data_folder_that_cannot_be_written_exits_75(tmp_path: Path, migrated: str) -> None:
    (tmp_path / "a-file").write_text("where the data folder should be")
    # A stranger's mail is quarantined, which keeps its raw bytes in the data folder.
    result = pipe(tmp_path, MAILTICKETS_DATABASE_URL=migrated, MAILTICKETS_DATA_DIR=str(tmp_path / "a-file" / "data"))
    assert result.returncode == EX_TEMPFAIL
    assert "store unavailable" in one_line(result)


def test_the_default_relative_database_in_an_unwritable_folder_exits_75(tmp_path: Path) -> None:
    """What an alias without --config meets: ./mailtickets.db, relative to a folder it cannot use."""
    (tmp_path / "cwd").write_text("a file, so nothing can be created below it")
    result = pipe(tmp_path, MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cwd' / 'mt.db'}")
    assert result.returncode == EX_TEMPFAIL
    assert "database folder unavailable" in one_line(result)


def test_a_missing_config_file_exits_75(tmp_path: Path) -> None:
    result = pipe(tmp_path, config=tmp_path / "nope.toml")
    assert result.returncode == EX_TEMPFAIL and "config file not found" in one_line(result)
    from_env = pipe(tmp_path, MAILTICKETS_CONFIG=str(tmp_path / "nope.toml"))
    assert from_env.returncode == EX_TEMPFAIL and "config file not found" in one_line(from_env)


def test_a_config_file_with_a_bad_value_exits_75(tmp_path: Path) -> None:
    config = tmp_path / "mailtickets.toml"
    config.write_text('reopen_policy = "sometimes"\n')
    result = pipe(tmp_path, config=config)
    assert result.returncode == EX_TEMPFAIL and "reopen_policy" in one_line(result)


def test_a_malformed_config_file_exits_75(tmp_path: Path) -> None:
    config = tmp_path / "mailtickets.toml"
    config.write_text("this is = = not toml\n")
    assert pipe(tmp_path, config=config).returncode == EX_TEMPFAIL


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the pipe as another user")
def test_a_config_file_the_mta_user_cannot_read_exits_75(tmp_path: Path) -> None:
    config = tmp_path / "mailtickets.toml"
    config.write_text('ticket_prefix = "REQ-"\n')
    config.chmod(0o600)
    try:
        subprocess.run([sys.executable, "-c", "pass"], user="nobody", capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"this interpreter ({sys.executable}) cannot be run by nobody (a folder above it is private)")
    tmp_path.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "mailtickets.cli", "--config", str(config), "ingest"], user="nobody",
        env={"PATH": "/usr/bin:/bin"}, cwd="/", input=make_message(), capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == EX_TEMPFAIL, result.stderr
    assert b"config file unreadable" in result.stderr


def test_a_wrong_option_in_the_mta_command_line_exits_75(tmp_path: Path) -> None:
    result = pipe(tmp_path, "--confg", "/etc/mailtickets.toml")
    assert result.returncode == EX_TEMPFAIL and "No such option" in one_line(result)


def test_a_file_that_cannot_be_read_is_a_persons_mistake_not_a_tempfail(tmp_path: Path, migrated: str) -> None:
    result = pipe(tmp_path, str(tmp_path / "missing.eml"), MAILTICKETS_DATABASE_URL=migrated)
    assert result.returncode == EX_NOINPUT and "cannot read" in result.stderr


def test_a_delivery_with_an_absolute_config_works_from_any_folder(tmp_path: Path, migrated: str) -> None:
    config = tmp_path / "mailtickets.toml"
    config.write_text(f'database_url = "{migrated}"\ndata_dir = "{tmp_path / "data"}"\n')
    result = pipe(tmp_path, config=config)
    assert result.returncode == 0, result.stderr
    assert "quarantined" in result.stdout  # a stranger: kept in quarantine, the mail is delivered

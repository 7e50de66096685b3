"""`mailtickets run --config FILE`, as issue 6 spells it (the group's `mailtickets --config FILE run` also works)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from mailtickets.db import upgrade


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAILTICKETS_CONFIG", "MAILTICKETS_DATABASE_URL", "MAILTICKETS_IMAP_URL", "MAILTICKETS_MAILBOXES"):
        monkeypatch.delenv(name, raising=False)


def test_run_reads_the_config_file_given_after_the_command(tmp_path: Path, clean_env: None) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"
    upgrade(url)
    config = tmp_path / "mailtickets.toml"
    config.write_text(
        f'database_url = "{url}"\ndata_dir = "{tmp_path / "data"}"\n'
        '[[mailboxes]]\nname = "remote"\nhost = "mail.example.com"\nsecurity = "plain"\n'
        'username = "u"\npassword = "p"\n'
    )
    # A setting only this file holds stops the start: proof that `run` read it (and that nothing ran).
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 78 and "not 'mail.example.com'" in result.output, result.output


def test_run_with_a_missing_config_file_is_a_clean_error(tmp_path: Path, clean_env: None) -> None:
    result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 78 and "config file not found" in result.output

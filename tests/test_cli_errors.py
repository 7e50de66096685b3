"""The commonest first mistakes end in one line saying what to do, with an exit code from sysexits(3),
and no command but `db upgrade` creates a database."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailtickets.cli import main
from mailtickets.cli.errors import EX_CONFIG, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE


@pytest.fixture
def env(clean_cli_env: dict[str, str | None]) -> dict[str, str | None]:
    return {
        **clean_cli_env,
        "MAILTICKETS_SECRET_KEY": "a-test-secret-of-some-length",
    }


def invoke(env: dict[str, str | None], *args: str, **changes: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **changes})


def one_line_error(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


@pytest.mark.parametrize("command", [["tickets", "list"], ["clients", "list"], ["quarantine", "list"]])
def test_a_command_before_db_upgrade_says_so_and_creates_nothing(
    env: dict[str, str | None], tmp_path: Path, command: list[str]
) -> None:
    result = invoke(env, *command)
    assert result.exit_code == EX_CONFIG
    assert "run `mailtickets db upgrade`" in one_line_error(result)
    assert not (tmp_path / "mt.db").exists()


def test_an_empty_database_file_has_no_schema(env: dict[str, str | None], tmp_path: Path) -> None:
    (tmp_path / "mt.db").write_bytes(b"")
    result = invoke(env, "tickets", "list")
    assert result.exit_code == EX_CONFIG
    assert f"the database at {tmp_path / 'mt.db'} has no schema: run `mailtickets db upgrade`" in one_line_error(result)


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("postgres://u@127.0.0.1/db", "postgresql+asyncpg://u@127.0.0.1/db"),
        ("postgresql://u@127.0.0.1/db", "postgresql+asyncpg://u@127.0.0.1/db"),
        ("postgresql+psycopg2://u@127.0.0.1/db", "postgresql+asyncpg://u@127.0.0.1/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("mysql+aiomysql://u@127.0.0.1/db", "unsupported database 'mysql'"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_wrong_database_url_names_the_right_form(env: dict[str, str | None], url: str, advice: str) -> None:
    result = invoke(env, "tickets", "list", MAILTICKETS_DATABASE_URL=url)
    assert result.exit_code == EX_CONFIG
    assert advice in one_line_error(result)


def test_a_database_that_does_not_answer_is_one_line(env: dict[str, str | None]) -> None:
    with socket.socket() as unused:  # a port nobody listens on: bound, never listening
        unused.bind(("127.0.0.1", 0))
        url = f"postgresql+asyncpg://u@127.0.0.1:{unused.getsockname()[1]}/db"
        result = invoke(env, "clients", "list", MAILTICKETS_DATABASE_URL=url)
    assert result.exit_code == EX_TEMPFAIL
    assert "cannot reach the database at postgresql+asyncpg://u@127.0.0.1" in one_line_error(result)


@pytest.mark.parametrize("setting", ["MAILTICKETS_HTTP_BIND", "MAILTICKETS_LMTP_BIND"])
def test_a_bind_without_host_is_refused_at_start(env: dict[str, str | None], setting: str) -> None:
    result = invoke(env, "tickets", "list", **{setting: "8000"})
    assert result.exit_code == EX_CONFIG
    name = setting.removeprefix("MAILTICKETS_").lower()
    assert f"invalid settings: {name}: must be HOST:PORT, e.g. 127.0.0.1:8000 (not '8000')" in one_line_error(result)


def test_db_upgrade_says_what_it_did(env: dict[str, str | None], tmp_path: Path) -> None:
    created = invoke(env, "db", "upgrade")
    assert created.exit_code == 0 and f"database created at {tmp_path / 'mt.db'} (schema " in created.output
    again = invoke(env, "db", "upgrade")
    assert again.exit_code == 0 and "is already current" in again.output
    assert invoke(env, "tickets", "list").exit_code == 0


def test_db_upgrade_refuses_a_folder_that_does_not_exist(env: dict[str, str | None], tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'typo' / 'mt.db'}"
    result = invoke(env, "db", "upgrade", MAILTICKETS_DATABASE_URL=url)
    assert result.exit_code == EX_CONFIG
    assert f"the folder {tmp_path / 'typo'} does not exist" in one_line_error(result)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    ("setting", "extra"), [("MAILTICKETS_HTTP_BIND", {}), ("MAILTICKETS_LMTP_BIND", {"MAILTICKETS_HTTP_BIND": ""})]
)
def test_a_port_in_use_is_one_line(env: dict[str, str | None], setting: str, extra: dict[str, str]) -> None:
    assert invoke(env, "db", "upgrade").exit_code == 0
    with socket.create_server(("127.0.0.1", 0)) as taken:
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        result = invoke(env, "run", **{setting: bind, **extra})
    assert result.exit_code == EX_UNAVAILABLE
    assert (
        f"Error: cannot listen on {bind} ({setting.removeprefix('MAILTICKETS_').lower()}): address already in use"
        in result.output
    )
    assert "Traceback" not in result.output and "never retrieved" not in result.output


def test_a_usage_mistake_exits_ex_usage(env: dict[str, str | None], tmp_path: Path) -> None:
    result = invoke(env, "rules", "import", str(tmp_path / "missing.toml"))
    assert result.exit_code == EX_USAGE
    assert "missing.toml' does not exist" in result.output.strip().splitlines()[-1]


def test_db_upgrade_names_the_revisions_it_upgraded_between(env: dict[str, str | None], tmp_path: Path) -> None:
    from mailtickets.db import upgrade

    upgrade(str(env["MAILTICKETS_DATABASE_URL"]), "0001")
    result = invoke(env, "db", "upgrade")
    assert result.exit_code == 0 and f"database at {tmp_path / 'mt.db'} upgraded from 0001 to " in result.output
    assert "upgraded from 0001 to 0001" not in result.output

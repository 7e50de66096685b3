"""What every CLI command shares: the settings, a database opened on demand, JSON output."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailtickets.cli.errors import EX_CONFIG, CliError, as_cli_error
from mailtickets.db import create_engine, session_factory
from mailtickets.service.settings_check import unknown_env_names
from mailtickets.settings import Settings, load_settings
from mailtickets.store_status import check_store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


pass_state = click.make_pass_decorator(CliState)


def config_option(help_text: str) -> Callable[[F], F]:
    """`--config FILE`: on the group (`mailtickets --config F …`) and on `run` (`mailtickets run --config F`)."""
    return click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help=help_text)


def settings_from(config_file: Path | None, *, warn_unknown_env: bool = True) -> Settings:
    """Settings from the environment and the TOML file; a bad file or value is a one-line CLI error."""
    try:
        settings = load_settings(config_file)
    except ValueError as exc:  # ConfigFileError, and pydantic's ValidationError
        raise as_cli_error(exc) from exc
    except OSError as exc:  # e.g. a config file the MTA's user may not read
        raise CliError(f"config file unreadable: {exc}", EX_CONFIG) from exc
    for problem in unknown_env_names(os.environ) if warn_unknown_env else []:  # else ignored silently
        click.echo(str(problem), err=True)
    return settings


def run_with_store(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Open the database (refusing one without a schema), run `work` with a session factory, close it.

    Errors propagate: the command group turns each into one line and a sysexits code (cli/errors.py).
    """

    async def runner() -> T:
        engine: AsyncEngine = create_engine(settings.database_url)
        try:
            await check_store(engine, settings.database_url)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))

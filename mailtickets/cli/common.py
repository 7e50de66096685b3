"""What every CLI command shares: the settings, a database opened on demand, JSON output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailtickets.db import create_engine, session_factory
from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.settings import ConfigFileError, Settings, load_settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


pass_state = click.make_pass_decorator(CliState)


def config_option(help_text: str) -> Callable[[F], F]:
    """`--config FILE`: on the group (`mailtickets --config F …`) and on `run` (`mailtickets run --config F`)."""
    return click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help=help_text)


def settings_from(config_file: Path | None) -> Settings:
    """Settings from the environment and the TOML file; a bad file or value is a CLI error."""
    try:
        return load_settings(config_file)
    except (ConfigFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # e.g. a config file the MTA's user may not read
        raise click.ClickException(f"config file unreadable: {exc}") from exc


def run_with_store(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Open the database, run `work` with a session factory, close it; service errors become CLI errors."""

    async def runner() -> T:
        engine: AsyncEngine = create_engine(settings.database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(runner())
    except (NotFound, Conflict) as exc:
        raise click.ClickException(str(exc)) from exc
    except InvalidInput as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        raise click.ClickException(f"{exc}{' (' + details + ')' if details else ''}") from exc


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))

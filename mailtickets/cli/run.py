"""`mailtickets run`: the long-running service (IMAP listeners, LMTP, outbox sender, ...)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from mailtickets.app import SchemaNotCurrent, TemplatesBroken, run
from mailtickets.cli.common import CliState, pass_state
from mailtickets.errors import InvalidInput
from mailtickets.log_setup import configure_logging
from mailtickets.settings import ConfigFileError, Settings, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.command("run")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML settings file (the same as `mailtickets --config FILE run`).",
)
@pass_state
def run_command(state: CliState, config_file: Path | None) -> None:
    """Run the service until SIGTERM or Ctrl-C."""
    settings = _settings(state, config_file)
    if not logging.getLogger().handlers:
        configure_logging(settings)  # text, or JSON lines with log_format = "json"
    try:
        asyncio.run(run(settings))
    except (SchemaNotCurrent, TemplatesBroken, InvalidInput) as exc:
        raise click.ClickException(str(exc)) from exc


def _settings(state: CliState, config_file: Path | None) -> Settings:
    """The group's settings, or those of `run --config FILE` (which wins over `mailtickets --config`)."""
    if config_file is None:
        return state.settings
    try:
        return load_settings(config_file)
    except (ConfigFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [run_command]

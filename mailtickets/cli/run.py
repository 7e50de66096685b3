"""`mailtickets run`: the long-running service (IMAP listeners, LMTP, outbox sender, ...)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from mailtickets.cli.common import CliState, config_option, pass_state, settings_from
from mailtickets.cli.errors import EX_CONFIG, CliError
from mailtickets.errors import InvalidInput
from mailtickets.log_setup import configure_logging
from mailtickets.service.app import run

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.command("run")
@config_option("TOML settings file (the same as `mailtickets --config FILE run`, and wins over it).")
@pass_state
def run_command(state: CliState, config_file: Path | None) -> None:
    """Run the service until SIGTERM or Ctrl-C."""
    settings = state.settings if config_file is None else settings_from(config_file)
    if not logging.getLogger().handlers:
        configure_logging(settings)  # text, or JSON lines with log_format = "json"
    try:
        asyncio.run(run(settings))  # other errors become one line and a sysexits code in the command group
    except InvalidInput as exc:  # at start-up this is always a setting (a mailbox's, …): a configuration error
        raise CliError(str(exc), EX_CONFIG) from exc


COMMANDS = [run_command]

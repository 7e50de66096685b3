"""`mailtickets run`: the long-running service (IMAP listeners, LMTP, outbox sender, ...)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from mailtickets.cli.common import CliState, config_option, pass_state, settings_from
from mailtickets.cli.errors import EX_CONFIG, CliError
from mailtickets.errors import InvalidInput
from mailtickets.log_setup import configure_logging
from mailtickets.service.app import run
from mailtickets.service.settings_check import problems, smtp_problem
from mailtickets.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


@click.command("run")
@config_option("TOML settings file (the same as `mailtickets --config FILE run`, and wins over it).")
@pass_state
def run_command(state: CliState, config_file: Path | None) -> None:
    """Run the service until SIGTERM or Ctrl-C."""
    settings = state.settings if config_file is None else settings_from(config_file, warn_unknown_env=False)
    if not logging.getLogger().handlers:
        configure_logging(settings)  # text, or JSON lines with log_format = "json"
    refuse_unsafe_settings(settings)
    try:
        asyncio.run(run(settings))  # other errors become one line and a sysexits code in the command group
    except InvalidInput as exc:  # at start-up this is always a setting (a mailbox's, …): a configuration error
        raise CliError(str(exc), EX_CONFIG) from exc


def refuse_unsafe_settings(settings: Settings) -> None:
    """Errors stop the start (each on its own line); warnings are logged and the service starts."""
    found = [p for p in problems(settings, os.environ) if not p.setting.startswith("MAILTICKETS_")]
    smtp = asyncio.run(smtp_problem(settings))
    for problem in [*found, *([smtp] if smtp else [])]:
        if problem.level == "warning":
            log.warning("%s: %s", problem.setting, problem.message)
    errors = [f"{p.setting}: {p.message}" for p in found if p.level == "error"]
    if errors:
        raise CliError("\n".join([*errors, "see `mailtickets check`"]), EX_CONFIG)


COMMANDS = [run_command]

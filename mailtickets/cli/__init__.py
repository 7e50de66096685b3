"""The `mailtickets` command. Each command group lives in its own module and is registered here.

The command names, options and output shapes are a contract that other tools drive: keep them stable.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from mailtickets.cli.common import CliState, config_option, settings_from

# Command name → "module:attribute". Modules are imported only when their command runs, so that a
# pipe delivery (`mailtickets ingest`, started once per message by the MTA) does not pay for the API,
# the IMAP server of the demo, or Alembic.
LAZY_COMMANDS = {
    "db": "mailtickets.cli.core:db",
    "ingest": "mailtickets.cli.pipe:ingest",
    "tickets": "mailtickets.cli.lifecycle:tickets_group",
    "clients": "mailtickets.cli.directory:clients",
    "contacts": "mailtickets.cli.directory:contacts",
    "agents": "mailtickets.cli.directory:agents",
    "apikey": "mailtickets.cli.api:apikey",
    "api": "mailtickets.cli.api:api",
    "rules": "mailtickets.cli.rules:rules",
    "run": "mailtickets.cli.run:run_command",
    "templates": "mailtickets.cli.templates:templates",
    "jobs": "mailtickets.cli.jobs:jobs",
    "demo": "mailtickets.cli.demo:demo",
    "quarantine": "mailtickets.cli.quarantine:quarantine",
    "backfill": "mailtickets.cli.backfill:backfill",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module_name, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@config_option("TOML settings file (also MAILTICKETS_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """mailtickets: email to helpdesk tickets."""
    try:
        ctx.obj = CliState(settings_from(config_file))
    except click.ClickException as exc:
        if ctx.invoked_subcommand == "ingest":  # the MTA's pipe: a config error must not bounce the mail
            from mailtickets.cli.pipe import tempfail

            tempfail(exc.format_message())
        raise

"""`mailtickets templates check`: render every email template with a sample context."""

from __future__ import annotations

import sys

import click

from mailtickets.cli.common import CliState, pass_state
from mailtickets.errors import ConfigurationError
from mailtickets.notify.templates import BUILTIN_DIR, check_templates


@click.group("templates")
def templates() -> None:
    """Email templates."""


@templates.command("check")
@pass_state
def check(state: CliState) -> None:
    """Render every template (built-in and overrides): undefined variables and syntax errors fail."""
    override = state.settings.templates_dir
    if override is not None and not override.is_dir():
        raise ConfigurationError(f"templates_dir is not a folder: {override}")
    click.echo(f"templates: {override or '-'} (overrides), {BUILTIN_DIR} (built-in)")
    failures = 0
    for kind, error in check_templates(override).items():
        click.echo(f"{'ok  ' if error is None else 'FAIL'} {kind}{': ' + error if error else ''}")
        failures += error is not None
    if failures:
        sys.exit(1)

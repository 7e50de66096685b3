"""`mailtickets check`: the effective settings (secrets masked) and every problem found; non-zero on errors."""

from __future__ import annotations

import asyncio
import json
import os

import click

from mailtickets.cli.common import CliState, echo_json, pass_state
from mailtickets.cli.errors import EX_CONFIG
from mailtickets.service.posture import security_warnings
from mailtickets.service.settings_check import Problem, masked, problems, reachability


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: settings, problems.")
@click.option("--offline", is_flag=True, help="Do not try the database and the SMTP server.")
@pass_state
def check(state: CliState, as_json: bool, offline: bool) -> None:
    """Print the effective settings and every problem in them; exit 78 (EX_CONFIG) if any is an error."""
    settings = state.settings
    found = problems(settings, os.environ)
    if not any(p.setting == "mailboxes" and p.level == "error" for p in found):
        # The trust posture `run` logs at start (service/posture.py), listed here as well.
        found += [Problem("warning", "security", warning) for warning in security_warnings(settings)]
    if not offline:
        found += asyncio.run(reachability(settings))
    shown = masked(settings)
    if as_json:
        echo_json({"settings": shown, "problems": [vars(p) for p in found]})
    else:
        for name, value in shown.items():
            click.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}")
        click.echo("")
        for problem in found:
            click.echo(str(problem), err=problem.level == "error")
        errors = sum(p.level == "error" for p in found)
        click.echo(f"{errors} error(s), {len(found) - errors} warning(s)")
    if any(p.level == "error" for p in found):
        raise SystemExit(EX_CONFIG)


COMMANDS = [check]

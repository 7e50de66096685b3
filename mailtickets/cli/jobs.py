"""`mailtickets jobs autoclose`: one pass of a scheduled job, by hand."""

from __future__ import annotations

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.clock import SystemClock
from mailtickets.jobs.autoclose import AutocloseReport, run_autoclose_once


@click.group("jobs")
def jobs() -> None:
    """Scheduled jobs (they also run inside `mailtickets run`)."""


@jobs.command("autoclose")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def autoclose(state: CliState, as_json: bool) -> None:
    """Send due auto-close chasers and close tickets that stayed quiet (one pass)."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> AutocloseReport:
        return await run_autoclose_once(state.settings, sessions, SystemClock())

    report = run_with_store(state.settings, work)
    if as_json:
        echo_json({"chasers": list(report.chasers), "closed": list(report.closed)})
    else:
        click.echo(f"auto-close: {len(report.chasers)} chasers queued, {len(report.closed)} tickets closed")

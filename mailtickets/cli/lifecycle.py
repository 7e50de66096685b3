"""`mailtickets tickets assign|status|close|reply|merge|priority`: the lifecycle service from the shell.

Each command runs one transaction: the change and the notifications it causes (the outbox) commit
together; the running service's sender task delivers them.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, pass_state, run_with_store
from mailtickets.cli.core import tickets
from mailtickets.clock import SystemClock
from mailtickets.db import transaction
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketEvent

Operation = Callable[[AsyncSession, datetime], Awaitable[list[TicketEvent]]]


def _apply(state: CliState, operation: Operation) -> list[TicketEvent]:
    settings, clock = state.settings, SystemClock()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[TicketEvent]:
        async with transaction(sessions) as session:
            events = await operation(session, clock.now())
            await enqueue_notifications(session, settings, clock, events)
            return events

    return run_with_store(settings, work)


@click.command("assign")
@click.argument("reference")
@click.argument("agent_email")
@pass_state
def assign(state: CliState, reference: str, agent_email: str) -> None:
    """Assign ticket REFERENCE to the agent with AGENT_EMAIL (the agent is notified)."""
    _apply(state, lambda s, now: lifecycle.assign(s, state.settings, now, reference, agent_email))
    click.echo(f"{reference} assigned to {agent_email}")


@click.command("status")
@click.argument("reference")
@click.argument("status")
@pass_state
def status(state: CliState, reference: str, status: str) -> None:
    """Set STATUS: open, working, hold, auto-close or closed."""
    _apply(state, lambda s, now: lifecycle.set_status(s, state.settings, now, reference, status))
    click.echo(f"{reference} is {lifecycle.parse_status(status).value}")


@click.command("close")
@click.argument("reference")
@pass_state
def close(state: CliState, reference: str) -> None:
    """Close a ticket (the client gets the closure notice)."""
    _apply(state, lambda s, now: lifecycle.close(s, state.settings, now, reference))
    click.echo(f"{reference} closed")


@click.command("reply")
@click.argument("reference")
@click.option("--body-file", required=True, type=click.Path(allow_dash=True, path_type=Path))
@click.option("--agent", "agent_email", default=None, help="The replying agent (default: the assigned one).")
@click.option("--private", is_flag=True, help="An internal note: kept on the ticket, not mailed.")
@pass_state
def reply(state: CliState, reference: str, body_file: Path, agent_email: str | None, private: bool) -> None:
    """Reply to the client (or add a private note) with the text of --body-file (`-` for stdin)."""
    body = _read_body(body_file)
    _apply(
        state,
        lambda s, now: lifecycle.reply(
            s, state.settings, now, reference, body, private=private, agent_email=agent_email
        ),
    )
    click.echo(f"{'note added to' if private else 'reply queued for'} {reference}")


def _read_body(body_file: Path) -> str:
    return sys.stdin.read() if str(body_file) == "-" else body_file.read_text("utf-8")


@click.command("merge")
@click.argument("source")
@click.argument("into")
@pass_state
def merge(state: CliState, source: str, into: str) -> None:
    """Merge ticket SOURCE into INTO: its messages move, SOURCE is closed and points to INTO."""
    _apply(state, lambda s, now: lifecycle.merge(s, state.settings, now, source, into))
    click.echo(f"{source} merged into {into}")


@click.command("priority")
@click.argument("reference")
@click.argument("priority")
@pass_state
def priority(state: CliState, reference: str, priority: str) -> None:
    """Set PRIORITY: low, medium or high."""
    _apply(state, lambda s, now: lifecycle.set_priority(s, state.settings, now, reference, priority))
    click.echo(f"{reference} priority {lifecycle.parse_priority(priority).value}")


def register() -> None:
    for command in (assign, status, close, reply, merge, priority):
        tickets.add_command(command)


register()
tickets_group = tickets  # the `tickets` group of cli.core, with the lifecycle commands added

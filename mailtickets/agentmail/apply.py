"""Applying an agent's `#commands` to a ticket, through the lifecycle the CLI and the API use.

The caller runs them in one savepoint: a command that cannot be applied raises `CommandError` naming its
line, and the savepoint is rolled back, so a mail's commands take effect together or not at all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.agentmail.commands import Command, CommandError
from mailtickets.agentmail.store import agent_by_address, agents_named
from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.models import Agent, Ticket, TicketStatus
from mailtickets.settings import Settings
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketEvent

_STATUS_OF = {"close": TicketStatus.CLOSED, "reopen": TicketStatus.OPEN, "hold": TicketStatus.HOLD}


async def apply_commands(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    ticket: Ticket,
    agent: Agent,
    commands: tuple[Command, ...],
) -> list[TicketEvent]:
    events: list[TicketEvent] = []
    for command in commands:
        try:
            events += await _apply(session, settings, now, ticket, agent, command)
        except (InvalidInput, Conflict, NotFound) as exc:
            raise CommandError(command.line, str(command), str(exc)) from exc
    return events


async def _apply(
    session: AsyncSession, settings: Settings, now: datetime, ticket: Ticket, agent: Agent, command: Command
) -> list[TicketEvent]:
    ref, name, argument = ticket.reference, command.name, command.argument
    if name in _STATUS_OF:
        return await lifecycle.set_status(session, settings, now, ref, _STATUS_OF[name])
    if name == "status":
        return await lifecycle.set_status(session, settings, now, ref, argument)
    if name == "priority":
        return await lifecycle.set_priority(session, settings, now, ref, argument)
    if name == "assign":
        return await lifecycle.assign(session, settings, now, ref, (await _assignee(session, agent, argument)).email)
    if name == "unassign":
        ticket.assigned_agent = None
        return []
    if name == "merge":
        return await lifecycle.merge(session, settings, now, ref, argument)
    if name == "category":
        ticket.category = argument
        return []
    raise CommandError(command.line, str(command), f"#{name} cannot be applied")


async def _assignee(session: AsyncSession, sender: Agent, argument: str) -> Agent:
    """`me`, an agent's address (or alias), or an agent's name (or first name) that names exactly one agent."""
    if argument.lower() == "me":
        return sender
    if "@" in argument:
        found = await agent_by_address(session, argument)
        if found is None:
            raise NotFound(f"no active agent {argument}")
        return found
    named = await agents_named(session, argument)
    if not named:
        raise NotFound(f"no active agent named {argument}")
    if len(named) > 1:
        raise NotFound(f"{len(named)} agents are named {argument}: use an address")
    return named[0]

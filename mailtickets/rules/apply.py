"""Turning a rule decision into database objects (the pipeline's edge for rule actions).

A rule naming a client, contact or agent that no longer exists does not stop intake: the action is
skipped and the reason logged, and the rest of the decision still applies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.models import Agent, Client, Contact, Priority, TicketStatus
from mailtickets.rules.engine import RuleDecision

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TicketOverrides:
    """What rules set on a new ticket; None leaves the pipeline's own choice."""

    client: Client | None = None
    contact: Contact | None = None
    agent: Agent | None = None
    priority: Priority | None = None
    category: str | None = None
    status: TicketStatus | None = None
    tags: tuple[str, ...] = ()
    suppress_acknowledgement: bool = False


async def resolve(session: AsyncSession, decision: RuleDecision) -> TicketOverrides:
    client = contact = agent = None
    if decision.client_name:
        client = await _named(session, select(Client).where(func.lower(Client.name) == decision.client_name.lower()))
    if decision.contact_email:
        contact = await _named(
            session, select(Contact).where(func.lower(Contact.email) == decision.contact_email.lower())
        )
    if decision.assign_agent_email:
        agent = await _named(
            session, select(Agent).where(func.lower(Agent.email) == decision.assign_agent_email.lower())
        )
    return TicketOverrides(
        client=client,
        contact=contact,
        agent=agent,
        priority=Priority(decision.priority) if decision.priority else None,
        category=decision.category,
        status=TicketStatus(decision.status) if decision.status else None,
        tags=decision.tags,
        suppress_acknowledgement=decision.suppress_acknowledgement,
    )


async def _named(session: AsyncSession, query: Select[T]) -> T | None:
    found = await session.scalar(query)
    if found is None:
        log.warning("a rule action names something that does not exist (action skipped): %s", query.whereclause)
    return found

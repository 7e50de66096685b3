"""Agents: the people who answer tickets, with the other addresses they write from (aliases)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from mailtickets.directory.validation import (
    AGENT_NAME_MAX,
    EMAIL_MAX,
    FieldConflict,
    normalize_email,
    require_name,
)
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Agent, AgentAlias, AgentRole


def _agent_fields(name: str, email: str) -> tuple[str, str]:
    fields: dict[str, str] = {}
    clean_name = clean_email = ""
    try:
        clean_name = require_name(name, max_length=AGENT_NAME_MAX)
    except InvalidInput as exc:
        fields.update(exc.fields)
    try:
        clean_email = normalize_email(email.strip())
        if len(clean_email) > EMAIL_MAX:
            raise ValueError(f"at most {EMAIL_MAX} characters")
    except ValueError as exc:
        fields["email"] = str(exc)
    if fields:
        raise InvalidInput("the agent is not valid", fields)
    return clean_name, clean_email


async def _address_owner(session: AsyncSession, email: str) -> str | None:
    """Who already writes from `email` (an agent's address or alias), for the conflict message."""
    email = email.lower()
    agent = await session.scalar(select(Agent).where(func.lower(Agent.email) == email))
    if agent is not None:
        return f"agent {agent.id} ({agent.name})"
    alias = await session.scalar(select(AgentAlias).where(func.lower(AgentAlias.email) == email))
    return f"agent {alias.agent_id} (an alias)" if alias is not None else None


async def create_agent(
    session: AsyncSession, name: str, email: str, role: AgentRole = AgentRole.AGENT, aliases: Sequence[str] = ()
) -> Agent:
    """A new agent; Conflict when another agent has the email or an alias (case-insensitively)."""
    name, email = _agent_fields(name, email)
    owner = await _address_owner(session, email)
    if owner is not None:
        raise FieldConflict(f"{owner} already has {email}", {"email": "taken"})
    agent = Agent(name=name, email=email, role=role, aliases=[])
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise FieldConflict(f"another agent already has {email}", {"email": "taken"}) from exc
    for alias in aliases:
        await add_alias(session, agent, alias)
    await session.refresh(agent)
    return await get_agent(session, agent.id)


async def add_alias(session: AsyncSession, agent: Agent, alias: str) -> AgentAlias:
    """Another address `agent` writes from; Conflict when any agent already has it."""
    try:
        email = normalize_email(alias.strip())
        if len(email) > EMAIL_MAX:
            raise ValueError(f"at most {EMAIL_MAX} characters")
    except ValueError as exc:
        raise InvalidInput("the alias is not valid", {"alias": str(exc)}) from exc
    owner = await _address_owner(session, email)
    if owner is not None:
        raise FieldConflict(f"{owner} already has {email}", {"alias": "taken"})
    row = AgentAlias(agent_id=agent.id, email=email)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise FieldConflict(f"another agent already has {email}", {"alias": "taken"}) from exc
    return row


async def remove_alias(session: AsyncSession, agent: Agent, alias: str) -> None:
    row = await session.scalar(
        select(AgentAlias).where(AgentAlias.agent_id == agent.id, func.lower(AgentAlias.email) == alias.strip().lower())
    )
    if row is None:
        raise NotFound(f"{agent.email} has no alias {alias}")
    await session.delete(row)
    await session.flush()


async def get_agent(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id, options=[selectinload(Agent.aliases)], populate_existing=True)
    if agent is None:
        raise NotFound(f"no agent with id {agent_id}")
    return agent


async def find_agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return await session.scalar(
        select(Agent).where(func.lower(Agent.email) == email.strip().lower()).options(selectinload(Agent.aliases))
    )


async def set_agent_active(session: AsyncSession, email: str, active: bool) -> Agent:
    """Mark an agent inactive (someone who left) or active again; their tickets and history stay."""
    agent = await find_agent_by_email(session, email)
    if agent is None:
        raise NotFound(f"no agent with email {email.strip()}")
    agent.active = active
    await session.flush()
    return agent


async def list_agents(session: AsyncSession) -> list[Agent]:
    return list(await session.scalars(select(Agent).order_by(Agent.id).options(selectinload(Agent.aliases))))

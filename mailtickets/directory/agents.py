"""Agents: the people who answer tickets."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.directory.validation import (
    AGENT_NAME_MAX,
    EMAIL_MAX,
    FieldConflict,
    normalize_email,
    require_name,
)
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Agent, AgentRole


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


async def create_agent(session: AsyncSession, name: str, email: str, role: AgentRole = AgentRole.AGENT) -> Agent:
    """A new agent; Conflict when another agent has the email (case-insensitively)."""
    name, email = _agent_fields(name, email)
    clash = await session.scalar(select(Agent).where(func.lower(Agent.email) == email.lower()))
    if clash is not None:
        raise FieldConflict(f"agent {clash.id} ({clash.name}) already has {email}", {"email": "taken"})
    agent = Agent(name=name, email=email, role=role)
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise FieldConflict(f"another agent already has {email}", {"email": "taken"}) from exc
    await session.refresh(agent)
    return agent


async def get_agent(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"no agent with id {agent_id}")
    return agent


async def find_agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return await session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))


async def set_agent_active(session: AsyncSession, email: str, active: bool) -> Agent:
    """Mark an agent inactive (someone who left) or active again; their tickets and history stay."""
    agent = await find_agent_by_email(session, email)
    if agent is None:
        raise NotFound(f"no agent with email {email.strip()}")
    agent.active = active
    await session.flush()
    return agent


async def list_agents(session: AsyncSession) -> list[Agent]:
    return list(await session.scalars(select(Agent).order_by(Agent.id)))

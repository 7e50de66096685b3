"""Agents as agent mail needs them: by address or alias, by name, and every address they write from."""

from __future__ import annotations

from sqlalchemy import func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.db import VersionedCache
from mailtickets.models import Agent, AgentAlias


async def agent_by_address(session: AsyncSession, address: str) -> Agent | None:
    """The active agent whose email or alias is `address` (case-insensitively); an inactive one is nobody."""
    address = address.strip().lower()
    agent = await session.scalar(
        select(Agent)
        .outerjoin(AgentAlias, AgentAlias.agent_id == Agent.id)
        .where(or_(func.lower(Agent.email) == address, func.lower(AgentAlias.email) == address))
        .limit(1)
    )
    return agent if agent is not None and agent.active else None


async def agent_addresses(session: AsyncSession) -> dict[str, int]:
    """Every active agent's email and aliases, lower-cased, to the agent's id (do not change the dict: it
    is shared). Read on every message, so kept in memory until the directory counter moves."""
    return await _AGENT_ADDRESSES.get(session)


async def _load_agent_addresses(session: AsyncSession) -> dict[str, int]:
    emails = select(func.lower(Agent.email), Agent.id).where(Agent.active.is_(True))
    aliases = (
        select(func.lower(AgentAlias.email), AgentAlias.agent_id)
        .join(Agent, AgentAlias.agent_id == Agent.id)
        .where(Agent.active.is_(True))
    )
    rows = await session.execute(union_all(emails, aliases))
    return {str(address): int(agent_id) for address, agent_id in rows}


async def agents_named(session: AsyncSession, name: str) -> list[Agent]:
    """Active agents with this name, or with this first name when no full name matches."""
    wanted = " ".join(name.split()).lower()
    active = list(await session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.id)))
    exact = [a for a in active if " ".join(a.name.split()).lower() == wanted]
    return exact or [a for a in active if a.name.split() and a.name.split()[0].lower() == wanted]


_AGENT_ADDRESSES = VersionedCache(_load_agent_addresses)

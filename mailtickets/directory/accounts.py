"""Console accounts: an agent's role and password (argon2id through argon2-cffi, never stored in clear)."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.directory.agents import find_agent_by_email
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Agent, AgentRole, ConsoleSession

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this bounds the work an attacker can ask for
_HASHER = PasswordHasher()  # the library's current recommended parameters (RFC 9106 low-memory profile)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the address is unknown, so a sign-in takes as long for a stranger as for an agent."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def parse_role(value: str) -> AgentRole:
    try:
        return AgentRole(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}", {"role": "one of admin, agent"}) from None


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput("the password is too short", {"password": f"at least {MIN_PASSWORD_CHARS} characters"})
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput("the password is too long", {"password": f"at most {MAX_PASSWORD_CHARS} characters"})


def generate_password() -> str:
    """A one-time password to hand over (the agent should change it): 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)


async def set_password(session: AsyncSession, email: str, password: str) -> Agent:
    check_password_strength(password)
    agent = await find_agent_by_email(session, email)
    if agent is None:
        raise NotFound(f"no agent {email}")
    agent.password_hash = _HASHER.hash(password)
    # A new password ends every console session of the agent: the old one may be why it changed.
    await session.execute(delete(ConsoleSession).where(ConsoleSession.agent_id == agent.id))
    return agent


def verify_password(agent: Agent | None, password: str) -> bool:
    """True when `agent` is active and `password` is theirs; constant work whether or not they exist."""
    stored = agent.password_hash if agent is not None and agent.active else None
    try:
        return _HASHER.verify(stored or _dummy_hash(), password[:MAX_PASSWORD_CHARS]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(agent: Agent) -> bool:
    return agent.password_hash is not None and _HASHER.check_needs_rehash(agent.password_hash)


def rehashed(current: str | None, password: str) -> str:
    """A fresh hash with today's parameters (after a sign-in proved the password)."""
    return _HASHER.hash(password) if current is None or _HASHER.check_needs_rehash(current) else current

"""Signing in to the console: password check, rate limit, server-side sessions, CSRF, roles.

The cookie holds a random token; the database holds only its SHA-256, so a leaked table grants no
session, and signing out ends the session everywhere at once. Every form carries the session's CSRF
token (the sign-in form a token of its own, paired with a cookie), checked before anything is done.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.deps import AppContext, get_context
from mailtickets.clock import Clock
from mailtickets.console.web import ConsoleDenied, SignInRequired, form_of
from mailtickets.db import transaction
from mailtickets.directory.accounts import needs_rehash, rehashed, verify_password
from mailtickets.directory.agents import find_agent_by_email
from mailtickets.models import Agent, AgentRole, ConsoleSession, LoginFailure
from mailtickets.settings import Settings

SESSION_COOKIE = "mt_session"
LOGIN_CSRF_COOKIE = "mt_login_csrf"
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    agent_id: int
    name: str
    email: str
    role: AgentRole
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == AgentRole.ADMIN


class LoginLimiter:
    """Failed sign-ins per account and per client address within a sliding window, counted in the
    database (`login_failures`): every instance on one database shares the limit."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.window = timedelta(minutes=settings.console_login_window_minutes)
        self.limits = {
            "account": settings.console_login_failures_per_account,
            "address": settings.console_login_failures_per_address,
        }

    async def retry_after(self, sessions: Sessions, address: str, account: str) -> timedelta | None:
        """None when a sign-in may be tried now; otherwise how long until it may."""
        now = self.clock.now()
        async with sessions() as session:  # read only
            waits = [await self._wait(session, kind, key, now) for kind, key in _keys(address, account)]
        found = [w for w in waits if w is not None]
        return max(found) if found else None

    async def failed(self, sessions: Sessions, address: str, account: str) -> None:
        now = self.clock.now()
        async with transaction(sessions) as session:
            # What left the window counts no more: the table holds at most a window of failures.
            await session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window))
            session.add_all(LoginFailure(kind=kind, key=key, failed_at=now) for kind, key in _keys(address, account))

    async def succeeded(self, sessions: Sessions, account: str) -> None:
        async with transaction(sessions) as session:
            key = _account_key(account)
            await session.execute(delete(LoginFailure).where(LoginFailure.kind == "account", LoginFailure.key == key))

    async def _wait(self, session: AsyncSession, kind: str, key: str, now: datetime) -> timedelta | None:
        recent = (LoginFailure.kind == kind, LoginFailure.key == key, LoginFailure.failed_at > now - self.window)
        count, oldest = (
            await session.execute(select(func.count(), func.min(LoginFailure.failed_at)).where(*recent))
        ).one()
        if count < self.limits[kind] or oldest is None:
            return None
        return oldest + self.window - now


def _account_key(account: str) -> str:
    return account.strip().lower()[:191]


def _keys(address: str, account: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("address", address[:191]), ("account", _account_key(account))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(context: AppContext, email: str, password: str) -> tuple[str, ConsoleUser] | None:
    """A new session token for the agent, or None when the address or password is wrong."""
    async with context.sessions() as session:  # short: SQLite's lock is not held while argon2 works
        agent = await find_agent_by_email(session, email) if email else None
    # argon2 is slow on purpose: off the event loop, so other requests and mail keep flowing.
    verified = await asyncio.to_thread(verify_password, agent, password)
    if agent is None or not verified:
        return None
    new_hash = await asyncio.to_thread(rehashed, agent.password_hash, password) if needs_rehash(agent) else None
    now = context.clock.now()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + timedelta(hours=context.settings.console_session_hours)
    async with transaction(context.sessions) as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        row = ConsoleSession(
            token_sha256=_digest(token), agent_id=agent.id, csrf_token=csrf, created_at=now, expires_at=expires
        )
        session.add(row)
        if new_hash is not None:
            await session.execute(update(Agent).where(Agent.id == agent.id).values(password_hash=new_hash))
    return token, ConsoleUser(agent.id, agent.name, agent.email, agent.role, csrf)


async def sign_out(context: AppContext, token: str) -> None:
    async with transaction(context.sessions) as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token)))


async def _session_user(session: AsyncSession, token: str, now: datetime) -> ConsoleUser | None:
    row = await session.scalar(select(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token)))
    if row is None or row.expires_at <= now or not row.agent.active:
        return None
    agent = row.agent
    return ConsoleUser(agent.id, agent.name, agent.email, agent.role, row.csrf_token)


async def signed_in(request: Request, context: Annotated[AppContext, Depends(get_context)]) -> ConsoleUser:
    """The agent of this request's session; a form post must also carry the session's CSRF token."""
    token = request.cookies.get(SESSION_COOKIE, "")
    user = None
    if token:
        async with context.sessions() as session:
            user = await _session_user(session, token, context.clock.now())
    if user is None:
        raise SignInRequired()
    request.state.console_user = user
    if request.method not in ("GET", "HEAD"):
        await require_csrf(request, user.csrf)
    return user


async def require_csrf(request: Request, expected: str) -> None:
    sent = (await form_of(request)).get("csrf")
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        raise ConsoleDenied("The form was refused: its security token is missing or out of date. Reload the page.")


def admin_only(user: Annotated[ConsoleUser, Depends(signed_in)]) -> ConsoleUser:
    if not user.is_admin:
        raise ConsoleDenied("Only an admin may change rules, clients, contacts and agents.")
    return user


def cookie_options(settings: Settings) -> dict[str, Any]:
    secure = settings.public_url.lower().startswith("https://")
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/admin"}


User = Annotated[ConsoleUser, Depends(signed_in)]
Admin = Annotated[ConsoleUser, Depends(admin_only)]

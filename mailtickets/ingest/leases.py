"""Leases in the database: which instance consumes a mailbox (or runs a job) right now.

A lease is a row (name, owner, expires_at).  The holder renews it well before it expires; when the
holder dies, the row expires and the next instance that asks takes it over.  Taking and renewing are
single conditional UPDATEs or an INSERT that loses on conflict, so two instances never both win.
Works the same on PostgreSQL and SQLite (where a single instance simply always wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import Clock
from mailtickets.db import transaction
from mailtickets.models import Lease

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another instance holds the lease now (or the database could not confirm ours)."""


def instance_owner() -> str:
    """An owner name unique to this process, readable in the table: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """Takes, renews and releases named leases for one owner.

    `seconds` is the time after which a silent holder loses its lease to a waiting instance:
    leases last `seconds / 2` and are renewed (and waited for) every `seconds / 6`, so a takeover
    happens within about 2/3 of `seconds` after the holder's last heartbeat.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, owner: str, seconds: float = 30.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.owner = owner
        self.ttl = timedelta(seconds=seconds / 2)
        self.interval = seconds / 6

    async def try_acquire(self, name: str) -> bool:
        """Take the lease if it is free, expired or already ours; renew it in that case."""
        now = self._clock.now()
        async with transaction(self._sessions) as session:
            if await self._extend(session, name, now, allow_expired=True):
                return True
            return await self._insert(session, name, now)

    async def renew(self, name: str) -> None:
        async with transaction(self._sessions) as session:
            if not await self._extend(session, name, self._clock.now(), allow_expired=False):
                raise LeaseLost(name)

    async def release(self, name: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(delete(Lease).where(Lease.name == name, Lease.owner == self.owner))

    async def wait_acquire(self, name: str, stop: asyncio.Event) -> bool:
        """Block until the lease is ours (True) or `stop` is set (False)."""
        while not stop.is_set():
            if await self.try_acquire(name):
                return True
            await wait_or_stop(stop, self.interval)
        return False

    async def keep(self, name: str) -> None:
        """Renew the lease forever; raises LeaseLost when it cannot (the caller stops consuming)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew(name)
            except OperationalError as exc:
                raise LeaseLost(f"{name}: database unavailable: {exc.orig}") from exc

    async def _extend(self, session: AsyncSession, name: str, now: datetime, *, allow_expired: bool) -> bool:
        condition = Lease.owner == self.owner
        if allow_expired:
            condition = or_(condition, Lease.expires_at < now)
        result = await session.execute(
            update(Lease)
            .where(Lease.name == name, condition)
            .values(owner=self.owner, expires_at=now + self.ttl)
            .execution_options(synchronize_session=False)
        )
        return cast("CursorResult[Any]", result).rowcount == 1

    async def _insert(self, session: AsyncSession, name: str, now: datetime) -> bool:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        result = await session.execute(
            insert(Lease)
            .values(name=name, owner=self.owner, expires_at=now + self.ttl)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return cast("CursorResult[Any]", result).rowcount == 1


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, returning early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)

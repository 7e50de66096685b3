"""Poison: a message whose "temporary" failure keeps coming back is quarantined instead of retried for ever.

Each temporary failure of a message (known by the SHA-256 of its bytes) is counted in `ingest_failures`,
in a transaction of its own. Once the same message has failed `poison_max_attempts` times, or
`poison_max_age_seconds` after its first failure, it is poison: the pipeline quarantines it with the
last error, so the mailbox moves on, LMTP stops answering 451 and the pipe exits 0. A count whose last
failure is older than the age limit starts afresh. If even the count cannot be written, the store is
really unavailable and the failure stays temporary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.db import transaction
from mailtickets.models import IngestFailure
from mailtickets.settings import Settings


@dataclass(frozen=True, slots=True)
class FailureCount:
    attempts: int
    first_failed_at: datetime

    def is_poison(self, settings: Settings, now: datetime) -> bool:
        too_old = now - self.first_failed_at >= timedelta(seconds=settings.poison_max_age_seconds)
        return self.attempts >= settings.poison_max_attempts or too_old


async def count_failure(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, sha256: str, error: str, now: datetime
) -> FailureCount:
    """Record one more temporary failure of the message with this digest; returns its count so far."""
    stale = now - timedelta(seconds=settings.poison_max_age_seconds)
    async with transaction(sessions) as session:
        row = await session.get(IngestFailure, sha256, with_for_update=True)
        if row is None or row.last_failed_at < stale:
            if row is not None:
                await session.delete(row)
                await session.flush()
            await _forget_stale(session, stale)
            row = IngestFailure(raw_sha256=sha256, attempts=0, first_failed_at=now)
            session.add(row)
        row.attempts += 1
        row.last_failed_at = now
        row.last_error = error
        return FailureCount(row.attempts, row.first_failed_at)


async def forget_failures(sessions: async_sessionmaker[AsyncSession], sha256: str) -> None:
    """The message went through (or was quarantined): its count is no longer needed."""
    async with transaction(sessions) as session:
        await session.execute(delete(IngestFailure).where(IngestFailure.raw_sha256 == sha256))


async def _forget_stale(session: AsyncSession, stale: datetime) -> None:
    # Counts of messages that later went through (in another process, say) would otherwise pile up.
    await session.execute(delete(IngestFailure).where(IngestFailure.last_failed_at < stale))

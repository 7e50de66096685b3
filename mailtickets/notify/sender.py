"""Delivering the outbox: claim due rows, send them over one SMTP connection, record each outcome.

Delivery guarantee, honestly: a mail is marked sent in its own commit right after the server's 250
reply, so a restart never re-sends what was recorded as delivered.  If the process dies (or the
database fails) in the few milliseconds between the 250 and that commit, the claim expires after
CLAIM_SECONDS and the mail is sent a second time: at-least-once, with that window as the only gap.
Several instances share the outbox: the claim takes rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
and sets ``locked_until``; on SQLite the claim runs in a ``BEGIN IMMEDIATE`` transaction (db.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import Clock
from mailtickets.db import is_sqlite, transaction
from mailtickets.models import OutboxMail, OutboxState
from mailtickets.notify.smtp import Failure, SmtpTarget, classify, smtp_target
from mailtickets.settings import Settings

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300.0  # a claimed row is left alone this long; longer than any batch takes
FIRST_RETRY_SECONDS = 60.0
MAX_RETRY_SECONDS = 3600.0
IDLE_POLL_SECONDS = 2.0
ERROR_PAUSE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    recipient: str
    raw: bytes
    attempts: int
    message_id: str


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after the `attempts`-th failed try: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


async def claim_due(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> list[Claimed]:
    query = (
        select(OutboxMail)
        .where(OutboxMail.state == OutboxState.PENDING, OutboxMail.next_attempt_at <= now)
        .where(or_(OutboxMail.locked_until.is_(None), OutboxMail.locked_until < now))
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(settings.outbox_batch_size)
    )
    if not is_sqlite(settings.database_url):
        query = query.with_for_update(skip_locked=True)
    async with transaction(sessions) as session:
        rows = (await session.scalars(query)).all()
        for row in rows:
            row.locked_until = now + timedelta(seconds=CLAIM_SECONDS)
        return [Claimed(r.id, r.recipient, r.raw, r.attempts, r.message_id) for r in rows]


async def _mark_sent(sessions: async_sessionmaker[AsyncSession], mail: Claimed, now: datetime) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail.id)
            .values(state=OutboxState.SENT, sent_at=now, attempts=mail.attempts + 1, locked_until=None)
            .execution_options(synchronize_session=False)
        )


async def _mark_failed(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, mail: Claimed, failure: Failure, now: datetime
) -> None:
    attempts = mail.attempts + 1
    final = failure.permanent or attempts >= settings.outbox_max_attempts
    state = OutboxState.FAILED if final else OutboxState.PENDING
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail.id)
            .values(
                state=state,
                attempts=attempts,
                last_error=failure.reply[:2000],
                locked_until=None,
                next_attempt_at=now + retry_delay(attempts),
            )
            .execution_options(synchronize_session=False)
        )
    level = logging.WARNING if final else logging.INFO
    log.log(level, "outbox mail %s %s: %s", mail.message_id, "failed" if final else "deferred", failure.reply)


async def _send_batch(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, batch: list[Claimed]
) -> int:
    target: SmtpTarget = smtp_target(settings)
    unsent = list(batch)  # a mail leaves this list once its outcome is being recorded
    # Each "sent" commit runs while the next mail is on the wire; at most one is in flight, so the
    # window between a 250 and its commit stays about one mail long.
    marking: asyncio.Task[None] | None = None
    sent = 0
    try:
        async with target.client() as smtp:
            while unsent:
                mail = unsent[0]
                try:
                    await smtp.sendmail(settings.support_address, [mail.recipient], mail.raw)
                except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
                    # The server answered for this mail alone; the connection stays usable.
                    await _settled(marking)
                    await _mark_failed(sessions, settings, unsent.pop(0), classify(exc), clock.now())
                    await smtp.rset()
                    continue
                unsent.pop(0)
                await _settled(marking)
                marking = asyncio.create_task(_mark_sent(sessions, mail, clock.now()))
                sent += 1
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _settled(marking)
        failure = Failure(permanent=False, reply=classify(exc).reply)
        for mail in unsent:
            await _mark_failed(sessions, settings, mail, failure, clock.now())
    finally:
        await _settled(marking)
    return sent


async def _settled(marking: asyncio.Task[None] | None) -> None:
    """Wait for the "sent" commit in flight (one writer at a time: SQLite runs on the loop's thread)."""
    if marking is not None:
        await marking


async def deliver_due(settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    """One pass: send up to one batch of due mail over one connection; returns how many were sent."""
    batch = await claim_due(sessions, settings, clock.now())
    if not batch:
        return 0
    sent = await _send_batch(sessions, settings, clock, batch)
    log.info("outbox: %d of %d mails delivered", sent, len(batch))
    return sent


async def run_outbox_sender(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock, stop: asyncio.Event
) -> None:
    """Deliver the outbox until `stop` is set: full batches back to back, then poll every few seconds."""
    while not stop.is_set():
        pause = IDLE_POLL_SECONDS
        try:
            if await deliver_due(settings, sessions, clock) >= settings.outbox_batch_size:
                pause = 0.0
        except Exception:  # the worker boundary: log, pause, keep the sender alive
            log.exception("outbox sender pass failed")
            pause = ERROR_PAUSE_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)

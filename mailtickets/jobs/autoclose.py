"""The auto-close chaser: tickets left in auto-close get a friendly chaser, then are closed.

After ``autoclose_chaser_hours`` of quiet (counted from ``Ticket.autoclose_since``) the client gets a
chaser; after ``autoclose_close_hours`` the ticket is closed with the closure notice, but never sooner
than the gap the chaser announced (close minus chaser hours) after the chaser was queued.  A chaser
held back by the rate limit does not start that countdown, and a closure whose notice is held back
does not happen: both are tried again on a later pass.  A client reply in between puts the ticket
back to open and clears the countdown (`lifecycle.client_answered`, called by the pipeline).

Safe with several instances: each step is one conditional ``UPDATE … WHERE chaser_sent_at IS NULL``
(or ``status = 'auto-close'``) ``RETURNING id``, and notifications are queued only for the rows this
instance changed, in the same transaction, so no ticket ever gets two chasers or two closures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import Clock
from mailtickets.db import transaction
from mailtickets.models import Ticket, TicketStatus
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.settings import Settings
from mailtickets.tickets.events import ChaserDue, TicketClosed, TicketEvent

log = logging.getLogger(__name__)

ERROR_PAUSE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class AutocloseReport:
    chasers: tuple[int, ...]  # ticket ids whose chaser went out (or never can) in this pass: countdown started
    closed: tuple[int, ...]  # ticket ids closed in this pass


def _quiet_since(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Ticket.status == TicketStatus.AUTO_CLOSE,
        Ticket.autoclose_since.is_not(None),
        Ticket.autoclose_since <= cutoff,
        Ticket.merged_into_id.is_(None),
    )


async def _close_due(session: AsyncSession, now: datetime, settings: Settings) -> list[int]:
    conditions = list(_quiet_since(now - timedelta(hours=settings.autoclose_close_hours)))
    if _chasers_enabled(settings):
        # Keep the chaser's promise even when the job was down: close only after the announced gap.
        gap = timedelta(hours=settings.autoclose_close_hours - settings.autoclose_chaser_hours)
        conditions += [Ticket.chaser_sent_at.is_not(None), Ticket.chaser_sent_at <= now - gap]
    result = await session.execute(
        update(Ticket)
        .where(*conditions)
        .values(status=TicketStatus.CLOSED, closed_at=now)  # the countdown is cleared once the notice is queued
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def _close(session: AsyncSession, settings: Settings, clock: Clock, now: datetime) -> list[int]:
    """Close the due tickets and queue their closure notices; returns the tickets closed.

    A notice held back by the rate limit puts its ticket back into auto-close with its countdown as it
    was, so no ticket closes without the client being told; a later pass tries again.
    """
    due = await _close_due(session, now, settings)
    retry = await _enqueue_each(session, settings, clock, [TicketClosed(t, automatic=True) for t in due])
    closed = [t for t in due if t not in retry]
    if retry:
        await _set(session, retry, status=TicketStatus.AUTO_CLOSE, closed_at=None)
        log.info("auto-close: %d closures held back (rate limit, failed notice), retried later", len(retry))
    if closed:
        await _set(session, closed, autoclose_since=None, chaser_sent_at=None)
    return closed


async def _enqueue_each(session: AsyncSession, settings: Settings, clock: Clock, events: list[TicketEvent]) -> set[int]:
    """Each ticket's notice in a savepoint of its own; returns the tickets to try again on a later pass:
    those held back by the rate limit, and any whose notice failed (logged; the other tickets proceed)."""
    retry: set[int] = set()
    for event in events:
        try:
            async with session.begin_nested():
                held = await enqueue_notifications(session, settings, clock, [event])
        except Exception:  # one ticket's boundary: a bad ticket must not stop the job for all the others
            log.exception("auto-close: ticket id %s skipped this pass", event.ticket_id)
            if event.ticket_id is not None:  # always set for this job's events (closures, chasers)
                retry.add(event.ticket_id)
            continue
        retry.update(h.ticket_id for h in held if h.rate_limited)
    return retry


async def _set(session: AsyncSession, ticket_ids: Iterable[int], **values: object) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.id.in_(list(ticket_ids)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _chasers_enabled(settings: Settings) -> bool:
    return settings.autoclose_chaser_hours < settings.autoclose_close_hours


async def _chase_due(session: AsyncSession, now: datetime, cutoff: datetime) -> list[int]:
    result = await session.execute(
        update(Ticket)
        .where(*_quiet_since(cutoff), Ticket.chaser_sent_at.is_(None))
        .values(chaser_sent_at=now)
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def _chase(session: AsyncSession, settings: Settings, clock: Clock, now: datetime) -> list[int]:
    """Claim the due tickets and queue their chasers; returns the tickets whose countdown now runs.

    A chaser held back by the rate limit releases its claim (``chaser_sent_at`` back to NULL), so the
    close countdown never runs without a chaser and a later pass tries again.  A chaser that can never
    go out (no contact, a no-reply address, chasers switched off) keeps it: the ticket still closes.
    """
    due = await _chase_due(session, now, now - timedelta(hours=settings.autoclose_chaser_hours))
    retry = await _enqueue_each(session, settings, clock, [ChaserDue(t) for t in due])
    if retry:
        await _set(session, retry, chaser_sent_at=None)
        log.info("auto-close: %d chasers held back (rate limit, failed notice), retried later", len(retry))
    return [t for t in due if t not in retry]


async def run_autoclose_once(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> AutocloseReport:
    """One pass: close what has been quiet long enough, then chase what is due for a chaser."""
    now = clock.now()
    async with transaction(sessions) as session:
        closed = await _close(session, settings, clock, now)
    chasers: list[int] = []
    if _chasers_enabled(settings):
        async with transaction(sessions) as session:
            chasers = await _chase(session, settings, clock, now)
    if closed or chasers:
        log.info("auto-close: %d chasers, %d tickets closed", len(chasers), len(closed))
    return AutocloseReport(chasers=tuple(chasers), closed=tuple(closed))


async def run_autoclose_loop(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    stop: asyncio.Event,
    on_report: Callable[[AutocloseReport], None] | None = None,
) -> None:
    """Run a pass every ``autoclose_interval_seconds`` until `stop` is set; `on_report` sees each pass."""
    while not stop.is_set():
        pause = settings.autoclose_interval_seconds
        try:
            report = await run_autoclose_once(settings, sessions, clock)
            if on_report is not None:
                on_report(report)
        except Exception:  # the worker boundary: log, pause, keep the job alive
            log.exception("auto-close pass failed")
            pause = max(pause, ERROR_PAUSE_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)

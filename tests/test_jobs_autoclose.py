from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.jobs.autoclose import run_autoclose_loop, run_autoclose_once
from mailtickets.models import OutboxMail, Outcome, Ticket, TicketStatus
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketCreated
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import World, notify_settings, seed_ticket


@pytest.fixture
async def world(store: Store) -> World:
    settings = notify_settings(store.settings, notify_new_tickets_to=[])
    seeded = await seed_ticket(store.sessions)
    async with transaction(store.sessions) as session:
        await lifecycle.set_status(session, settings, store.clock.now(), "TCK-12", "auto-close")
    return World(settings, store.sessions, store.clock, seeded)


async def _kinds(world: World) -> list[str]:
    async with transaction(world.sessions) as session:
        return list((await session.scalars(select(OutboxMail.kind).order_by(OutboxMail.id))).all())


async def _status(world: World) -> TicketStatus:
    async with transaction(world.sessions) as session:
        ticket = await session.get(Ticket, world.ticket.ticket_id)
        assert ticket is not None
        return ticket.status


async def test_chaser_then_closure(world: World) -> None:
    world.clock.advance(timedelta(hours=47, minutes=59))
    assert (await run_autoclose_once(world.settings, world.sessions, world.clock)).chasers == ()
    world.clock.advance(timedelta(minutes=1))
    report = await run_autoclose_once(world.settings, world.sessions, world.clock)
    assert report.chasers == (world.ticket.ticket_id,) and report.closed == ()
    world.clock.advance(timedelta(hours=1))
    assert await run_autoclose_once(world.settings, world.sessions, world.clock) == type(report)((), ())
    assert await _kinds(world) == ["chaser"]
    world.clock.advance(timedelta(hours=23))
    report = await run_autoclose_once(world.settings, world.sessions, world.clock)
    assert report.closed == (world.ticket.ticket_id,)
    assert await _status(world) == TicketStatus.CLOSED
    assert await _kinds(world) == ["chaser", "closed"]


async def test_client_reply_cancels_the_countdown(world: World) -> None:
    world.clock.advance(timedelta(hours=50))
    await run_autoclose_once(world.settings, world.sessions, world.clock)
    async with transaction(world.sessions) as session:
        chaser = await session.scalar(select(OutboxMail.message_id).where(OutboxMail.kind == "chaser"))
    answer = make_message(sender="zoe@client.example", subject="still broken", in_reply_to=chaser)
    result = await Pipeline(world.settings, world.sessions, world.clock).ingest(answer, "test")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-12")
    assert await _status(world) == TicketStatus.OPEN
    world.clock.advance(timedelta(hours=100))
    await run_autoclose_once(world.settings, world.sessions, world.clock)
    assert await _status(world) == TicketStatus.OPEN
    assert await _kinds(world) == ["chaser"]


async def test_concurrent_passes_send_one_chaser(world: World) -> None:
    others = [await seed_ticket(world.sessions, number=n, contact_email=f"c{n}@client.example") for n in (20, 21)]
    async with transaction(world.sessions) as session:
        for other in others:
            await lifecycle.set_status(session, world.settings, world.clock.now(), other.reference, "auto-close")
    world.clock.advance(timedelta(hours=49))
    reports = await asyncio.gather(*(run_autoclose_once(world.settings, world.sessions, world.clock) for _ in range(4)))
    chased = sorted(t for r in reports for t in r.chasers)
    assert chased == sorted([world.ticket.ticket_id, *(o.ticket_id for o in others)])
    assert await _kinds(world) == ["chaser"] * 3


async def test_late_job_still_chases_before_closing(world: World) -> None:
    world.clock.advance(timedelta(hours=200))  # the job was down for days
    report = await run_autoclose_once(world.settings, world.sessions, world.clock)
    assert (report.chasers, report.closed) == ((world.ticket.ticket_id,), ())
    world.clock.advance(timedelta(hours=23))
    assert (await run_autoclose_once(world.settings, world.sessions, world.clock)).closed == ()
    world.clock.advance(timedelta(hours=1))
    assert (await run_autoclose_once(world.settings, world.sessions, world.clock)).closed == (world.ticket.ticket_id,)


async def test_without_chaser_period_closes_directly(world: World) -> None:
    settings = notify_settings(world.settings, autoclose_chaser_hours=72, autoclose_close_hours=72)
    world.clock.advance(timedelta(hours=72))
    report = await run_autoclose_once(settings, world.sessions, world.clock)
    assert (report.chasers, report.closed) == ((), (world.ticket.ticket_id,))
    assert await _kinds(world) == ["closed"]


async def test_loop_runs_and_stops(world: World) -> None:
    world.clock.advance(timedelta(hours=50))
    stop = asyncio.Event()
    task = asyncio.create_task(run_autoclose_loop(world.settings, world.sessions, world.clock, stop))
    for _ in range(100):
        if await _kinds(world):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await _kinds(world) == ["chaser"]


async def _chasers_by_ticket(world: World) -> list[int | None]:
    async with transaction(world.sessions) as session:
        query = select(OutboxMail.ticket_id).where(OutboxMail.kind == "chaser").order_by(OutboxMail.id)
        return list((await session.scalars(query)).all())


async def test_rate_limited_chaser_is_retried_and_the_countdown_waits_for_it(world: World) -> None:
    settings = notify_settings(world.settings, auto_mail_limit_short=1, auto_mail_limit_long=1)
    other = await seed_ticket(world.sessions, number=20)  # the same client contact: one chaser an hour
    async with transaction(world.sessions) as session:
        await lifecycle.set_status(session, settings, world.clock.now(), other.reference, "auto-close")
    both = {world.ticket.ticket_id, other.ticket_id}
    world.clock.advance(timedelta(hours=48))
    first = (await run_autoclose_once(settings, world.sessions, world.clock)).chasers
    assert len(first) == 1 and await _chasers_by_ticket(world) == list(first)
    world.clock.advance(timedelta(minutes=61))  # the rate limit's hour has passed
    second = (await run_autoclose_once(settings, world.sessions, world.clock)).chasers
    assert set(first + second) == both
    world.clock.advance(timedelta(hours=24) - timedelta(minutes=61))  # 24 hours after the first chaser
    assert (await run_autoclose_once(settings, world.sessions, world.clock)).closed == first
    world.clock.advance(timedelta(minutes=61))  # 24 hours after the second chaser
    assert (await run_autoclose_once(settings, world.sessions, world.clock)).closed == second
    assert set(await _chasers_by_ticket(world)) == both


async def test_closure_waits_until_its_notice_is_not_rate_limited(world: World) -> None:
    settings = notify_settings(world.settings, auto_mail_limit_short=1, auto_mail_limit_long=1)
    world.clock.advance(timedelta(hours=48))
    assert (await run_autoclose_once(settings, world.sessions, world.clock)).chasers == (world.ticket.ticket_id,)
    world.clock.advance(timedelta(hours=24))
    other = await seed_ticket(world.sessions, number=20)  # the same client just got an acknowledgement
    async with transaction(world.sessions) as session:
        await enqueue_notifications(session, settings, world.clock, [TicketCreated(other.ticket_id, other.message_id)])
    assert (await run_autoclose_once(settings, world.sessions, world.clock)).closed == ()
    assert await _status(world) == TicketStatus.AUTO_CLOSE
    world.clock.advance(timedelta(minutes=61))
    assert (await run_autoclose_once(settings, world.sessions, world.clock)).closed == (world.ticket.ticket_id,)
    # The team's new-ticket alert is internal: never held back by the rate limit the client's mail obeys.
    assert await _kinds(world) == ["chaser", "acknowledgement", "new_ticket", "closed"]
    async with transaction(world.sessions) as session:
        ticket = await session.get(Ticket, world.ticket.ticket_id)
        assert ticket is not None and (ticket.autoclose_since, ticket.chaser_sent_at) == (None, None)

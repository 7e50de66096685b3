from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailtickets.clock import ManualClock
from mailtickets.db import transaction
from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.models import Direction, OutboxMail, Priority, Ticket, TicketMessage, TicketStatus
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import AgentReplied, TicketAssigned, TicketClosed, TicketEvent, TicketMerged
from tests.conftest import Store
from tests.notify_support import World, notify_settings, seed_ticket


@pytest.fixture
async def world(store: Store) -> World:
    return World(notify_settings(store.settings), store.sessions, store.clock, await seed_ticket(store.sessions))


async def _do(world: World, name: str, *args: str, **kwargs: object) -> list[TicketEvent]:
    """Run one lifecycle call and its notifications in one transaction, as the CLI and API do."""
    operation = getattr(lifecycle, name)
    async with transaction(world.sessions) as session:
        events: list[TicketEvent] = await operation(session, world.settings, world.clock.now(), *args, **kwargs)
        await enqueue_notifications(session, world.settings, world.clock, events)
    return events


async def _outbox(world: World) -> list[tuple[str, str]]:
    async with transaction(world.sessions) as session:
        rows = (await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all()
        return [(r.kind, r.recipient) for r in rows]


async def _ticket(world: World, ticket_id: int | None = None) -> Ticket:
    async with transaction(world.sessions) as session:
        ticket = await session.get(Ticket, ticket_id or world.ticket.ticket_id)
        assert ticket is not None
        return ticket


async def test_assign_notifies_the_agent_once(world: World) -> None:
    events = await _do(world, "assign", "TCK-12", "ANA@corp.example")
    assert events == [TicketAssigned(world.ticket.ticket_id, world.ticket.agent_id, None)]
    assert await _do(world, "assign", "TCK-12", "ana@corp.example") == []
    assert await _outbox(world) == [("assigned", "ana@corp.example")]


async def test_assign_unknown_agent_or_ticket(world: World) -> None:
    with pytest.raises(NotFound):
        await _do(world, "assign", "TCK-12", "nobody@corp.example")
    with pytest.raises(NotFound):
        await _do(world, "assign", "TCK-99", "ana@corp.example")


async def test_status_transitions(world: World) -> None:
    assert await _do(world, "set_status", "TCK-12", "working") == []
    assert await _do(world, "set_status", "TCK-12", "auto-close") == []
    ticket = await _ticket(world)
    assert ticket.status == TicketStatus.AUTO_CLOSE and ticket.autoclose_since == world.clock.now()
    events = await _do(world, "set_status", "TCK-12", "closed")
    assert events == [TicketClosed(world.ticket.ticket_id)]
    with pytest.raises(Conflict):
        await _do(world, "set_status", "TCK-12", "hold")
    with pytest.raises(InvalidInput):
        await _do(world, "set_status", "TCK-12", "resolved")
    assert await _do(world, "set_status", "TCK-12", "open") == []
    ticket = await _ticket(world)
    assert (ticket.status, ticket.closed_at, ticket.autoclose_since) == (TicketStatus.OPEN, None, None)


async def test_close_sends_closure_notice(world: World) -> None:
    await _do(world, "close", "TCK-12")
    assert await _outbox(world) == [("closed", "zoe@client.example")]
    with pytest.raises(Conflict):
        await _do(world, "close", "TCK-12")


async def test_public_reply_is_mailed_and_threaded(world: World) -> None:
    events = await _do(world, "reply", "TCK-12", "Please restart it.", private=False, agent_email="ana@corp.example")
    assert len(events) == 1 and isinstance(events[0], AgentReplied)
    assert await _outbox(world) == [("agent_reply", "zoe@client.example")]
    async with transaction(world.sessions) as session:
        message = await session.get(TicketMessage, events[0].message_id)
        row = await session.scalar(select(OutboxMail))
    assert message is not None and row is not None
    assert (message.direction, message.public, message.body_text) == (Direction.OUTBOUND, True, "Please restart it.")
    assert message.message_id == row.message_id
    assert message.in_reply_to == "client-12@client.example"
    assert b"Auto-Submitted" not in row.raw  # a person wrote it
    assert not row.automatic


async def test_private_note_is_not_mailed(world: World) -> None:
    assert await _do(world, "reply", "TCK-12", "internal", private=True, agent_email="ana@corp.example") == []
    assert await _outbox(world) == []
    with pytest.raises(InvalidInput):
        await _do(world, "reply", "TCK-12", "  ", private=True, agent_email="ana@corp.example")


async def test_merge_moves_messages_and_closes_source(world: World) -> None:
    other = await seed_ticket(world.sessions, number=13, subject="Printer still on fire")
    events = await _do(world, "merge", "TCK-13", "TCK-12")
    assert events == [TicketMerged(other.ticket_id, world.ticket.ticket_id, (other.message_id,))]
    source = await _ticket(world, other.ticket_id)
    assert (source.status, source.merged_into_id) == (TicketStatus.CLOSED, world.ticket.ticket_id)
    async with transaction(world.sessions) as session:
        moved = await session.get(TicketMessage, other.message_id)
    assert moved is not None and moved.ticket_id == world.ticket.ticket_id
    with pytest.raises(Conflict):
        await _do(world, "close", "TCK-13")
    with pytest.raises(InvalidInput):
        await _do(world, "merge", "TCK-12", "TCK-12")


async def test_merge_tells_the_merged_tickets_client_where_it_continues(world: World) -> None:
    await seed_ticket(world.sessions, number=13, subject="Printer still on fire", contact_email="max@client.example")
    await _do(world, "merge", "TCK-13", "TCK-12")
    assert await _outbox(world) == [("merged", "max@client.example")]
    async with transaction(world.sessions) as session:
        row = await session.scalar(select(OutboxMail))
    assert row is not None and row.automatic
    mail = message_from_bytes(row.raw, policy=policy.default)
    assert mail["Subject"] == "[TCK-13] Merged into TCK-12: Printer still on fire"
    assert mail["In-Reply-To"] == "<client-13@client.example>"  # the client's own message, though it moved
    assert mail["Auto-Submitted"] == "auto-replied"
    text = mail.get_body(("plain",))
    assert text is not None and "merged into ticket TCK-12" in text.get_content()


async def test_merge_notice_can_be_switched_off(world: World) -> None:
    world.settings = notify_settings(world.settings, notify_client_on_merge=False)
    await seed_ticket(world.sessions, number=13, contact_email="max@client.example")
    await _do(world, "merge", "TCK-13", "TCK-12")
    assert await _outbox(world) == []


async def test_set_priority(world: World) -> None:
    await _do(world, "set_priority", "TCK-12", "high")
    assert (await _ticket(world)).priority == Priority.HIGH
    with pytest.raises(InvalidInput):
        await _do(world, "set_priority", "TCK-12", "urgent")


@pytest.mark.parametrize("status", [TicketStatus.AUTO_CLOSE, TicketStatus.HOLD])
def test_a_client_answer_reopens_and_ends_the_countdown(status: TicketStatus) -> None:
    now = ManualClock().now()
    ticket = Ticket(status=status, autoclose_since=now, chaser_sent_at=now)
    lifecycle.client_answered(ticket)
    assert (ticket.status, ticket.autoclose_since, ticket.chaser_sent_at) == (TicketStatus.OPEN, None, None)


def test_a_client_answer_leaves_a_working_ticket_working() -> None:
    ticket = Ticket(status=TicketStatus.WORKING)
    lifecycle.client_answered(ticket)
    assert ticket.status == TicketStatus.WORKING

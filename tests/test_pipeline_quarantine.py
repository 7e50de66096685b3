"""The quarantine: list, show, release through the pipeline, discard."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from mailtickets.errors import Conflict
from mailtickets.models import Client, InboundMail, Outcome, QuarantineState, Ticket
from mailtickets.pipeline.quarantine import discard_held, list_held, show_held
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world


@pytest.fixture
async def held(sqlite_store: Store) -> tuple[Store, int]:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    raw = make_message(
        sender="Zoe <zoe@newclient.example>", subject="Quote please", message_id="<z1@newclient.example>"
    )
    result = await sqlite_store.pipeline().ingest(raw, "imap:support")
    assert result.outcome == Outcome.QUARANTINED
    async with sqlite_store.sessions() as session:
        record = (await session.scalars(select(InboundMail))).one()
    return sqlite_store, record.id


async def test_list_and_show_a_held_message(held: tuple[Store, int]) -> None:
    store, inbound_id = held
    async with store.sessions() as session:
        rows = await list_held(session)
        pipeline = store.pipeline()
        detail = await show_held(session, pipeline.raw_store, inbound_id, pipeline.parser)
    assert [r["sender"] for r in rows] == ["zoe@newclient.example"]
    assert "unknown sender" in rows[0]["reason"]
    assert detail["subject"] == "Quote please" and "Hello" in detail["text"]


async def test_release_to_a_client_opens_a_ticket_once(held: tuple[Store, int]) -> None:
    store, inbound_id = held
    async with store.sessions() as session:
        globex = (await session.scalars(select(Client).where(Client.name == "Globex"))).one()
    result = await store.pipeline().release(inbound_id, client_id=globex.id)
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4")
    async with store.sessions() as session:
        ticket = (await session.scalars(select(Ticket).where(Ticket.number == 4))).one()
        original = await session.get_one(InboundMail, inbound_id)
    assert ticket.client_id == globex.id
    assert original.quarantine_state == QuarantineState.RELEASED
    with pytest.raises(Conflict):
        await store.pipeline().release(inbound_id)
    # The same mail arriving again is now a duplicate of the released one, not a second ticket.
    again = await store.pipeline().ingest(
        make_message(sender="Zoe <zoe@newclient.example>", subject="Quote please", message_id="<z1@newclient.example>"),
        "imap:support",
    )
    assert again.outcome == Outcome.DUPLICATE


async def test_release_logs_the_new_outcome_once(held: tuple[Store, int], caplog: pytest.LogCaptureFixture) -> None:
    store, inbound_id = held
    caplog.set_level(logging.INFO, logger="mailtickets.pipeline.ingest")
    await store.pipeline().release(inbound_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "mailtickets.pipeline.ingest"]
    assert lines == ["quarantined message z1@newclient.example released: created TCK-4"]


async def test_discard_keeps_the_record_but_ends_the_hold(held: tuple[Store, int]) -> None:
    store, inbound_id = held
    async with store.sessions() as session, session.begin():
        await discard_held(session, inbound_id)
    async with store.sessions() as session:
        assert await list_held(session) == []
        assert len(await list_held(session, state=None)) == 1
    with pytest.raises(Conflict):
        await store.pipeline().release(inbound_id)

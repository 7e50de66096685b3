"""Mail from a deactivated client: handled as an unknown sender's, with a reason the trace shows; its
tickets stay; reactivated, the same senders are known again from the next message on."""

from __future__ import annotations

import pytest
from builders import make_message
from conftest import Store
from sqlalchemy import func, select
from world import build_world

from mailtickets import directory
from mailtickets.db import transaction
from mailtickets.models import Client, InboundMail, Outcome, Ticket


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    return store


async def _set_acme(store: Store, active: bool) -> None:
    async with transaction(store.sessions) as session:
        acme = (await session.scalars(select(Client).where(Client.name == "Acme Corp"))).one()
        await directory.set_client_active(session, acme.id, active)


async def test_contact_and_domain_mail_is_quarantined_then_known_after_reactivation(world: Store) -> None:
    pipeline = world.pipeline()
    await _set_acme(world, False)
    from_contact = await pipeline.ingest(make_message(message_id="<c1@acme.example>"), "pipe")
    from_domain = await pipeline.ingest(
        make_message(sender="New Person <new.person@acme.co.uk>", message_id="<d1@acme.co.uk>"), "pipe"
    )
    for result, address in ((from_contact, "alice@acme.example"), (from_domain, "new.person@acme.co.uk")):
        assert result.outcome == Outcome.QUARANTINED and result.ticket is None
        assert result.reason == f"unknown sender {address} (client 'Acme Corp' is deactivated) and no ticket reference"
    async with world.sessions() as session:
        reasons = list(await session.scalars(select(InboundMail.reason).order_by(InboundMail.id)))
        kept = int(await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.client_id == 1)) or 0)
    assert all("is deactivated" in (reason or "") for reason in reasons)  # the trace explains it
    assert kept == 2  # its tickets stay

    await _set_acme(world, True)
    again_contact = await pipeline.ingest(make_message(message_id="<c2@acme.example>"), "pipe")
    again_domain = await pipeline.ingest(
        make_message(sender="New Person <new.person@acme.co.uk>", message_id="<d2@acme.co.uk>"), "pipe"
    )
    assert (again_contact.outcome, again_domain.outcome) == (Outcome.CREATED, Outcome.CREATED)


async def test_the_unknown_sender_policy_applies(world: Store) -> None:
    world.settings.unknown_sender = "drop"
    await _set_acme(world, False)
    result = await world.pipeline().ingest(make_message(message_id="<c3@acme.example>"), "pipe")
    assert result.outcome == Outcome.DROPPED and "client 'Acme Corp' is deactivated" in (result.reason or "")

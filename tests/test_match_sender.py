"""The sender matcher over a real store: contacts by address, clients by domain, and a deactivated
client's domains and contacts known no more (until it is reactivated)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import Store
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from world import build_world

from mailtickets import directory
from mailtickets.match.sender import match_sender
from mailtickets.models import Client


@pytest.fixture
async def session(store: Store) -> AsyncIterator[AsyncSession]:
    await build_world(store.sessions, store.clock)
    async with store.sessions() as session, session.begin():
        yield session


async def _acme(session: AsyncSession) -> Client:
    return (await session.scalars(select(Client).where(Client.name == "Acme Corp"))).one()


async def test_a_contact_and_a_domain_are_known(session: AsyncSession) -> None:
    by_contact = await match_sender(session, "Alice@ACME.example")
    assert (by_contact.matched_by, by_contact.client_id) == ("contact", 1) and by_contact.why_unknown is None
    by_domain = await match_sender(session, "someone@mail.acme.co.uk")
    assert by_domain.matched_by == "domain" and by_domain.client is not None and by_domain.client.name == "Acme Corp"
    assert not (await match_sender(session, "x@stranger.example")).known


async def test_a_deactivated_clients_domain_and_contacts_are_unknown(session: AsyncSession) -> None:
    acme = await _acme(session)
    await directory.set_client_active(session, acme.id, False)
    contact = await match_sender(session, "alice@acme.example")
    assert not contact.known and contact.client is None
    assert contact.contact is not None and contact.contact.email == "alice@acme.example"  # kept, not deleted
    assert contact.why_unknown == "client 'Acme Corp' is deactivated"
    domain = await match_sender(session, "new.person@acme.co.uk")
    assert not domain.known and domain.client is None and domain.why_unknown == "client 'Acme Corp' is deactivated"
    other = await match_sender(session, "carol@globex.example")
    assert other.known and other.why_unknown is None  # another client is untouched


async def test_a_reactivated_client_is_known_again(session: AsyncSession) -> None:
    acme = await _acme(session)
    await directory.set_client_active(session, acme.id, False)
    await directory.set_client_active(session, acme.id, True)
    assert (await match_sender(session, "alice@acme.example")).matched_by == "contact"
    assert (await match_sender(session, "new.person@acme.co.uk")).matched_by == "domain"

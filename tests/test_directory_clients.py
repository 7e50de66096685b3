"""Clients and domains, and agents: normalisation, one owner per domain, conflicts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import Store
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets import directory
from mailtickets.directory import FieldConflict
from mailtickets.errors import InvalidInput, NotFound


@pytest.fixture
async def session(store: Store) -> AsyncIterator[AsyncSession]:
    async with store.sessions() as session, session.begin():
        yield session


async def test_domains_are_lower_case_and_idna(session: AsyncSession) -> None:
    client = await directory.create_client(session, "Bücher", ["Bücher.DE.", "@Example.COM", "example.com"])
    assert [d.domain for d in client.domains] == ["example.com", "xn--bcher-kva.de"]


async def test_domain_belongs_to_one_client(session: AsyncSession) -> None:
    await directory.create_client(session, "Acme", ["acme.example"])
    with pytest.raises(FieldConflict) as caught:
        await directory.create_client(session, "Other", ["ACME.example"])
    assert "Acme" in str(caught.value) and caught.value.fields == {"domains": "acme.example is taken"}


async def test_client_name_unique_and_required(session: AsyncSession) -> None:
    await directory.create_client(session, "Acme")
    with pytest.raises(FieldConflict):
        await directory.create_client(session, "Acme")
    with pytest.raises(InvalidInput) as caught:
        await directory.create_client(session, "  ")
    assert caught.value.fields == {"name": "required"}


async def test_names_are_one_line(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as caught:
        await directory.create_client(session, "Acme\r\nCorp")
    assert set(caught.value.fields) == {"name"}
    with pytest.raises(InvalidInput):
        await directory.create_agent(session, "Dan\nAgent", "dan@helpdesk.example")


async def test_invalid_domains_all_named(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as caught:
        await directory.create_client(session, "Acme", ["no_underscore.example", "nodot", "fine.example"])
    assert "no_underscore" in caught.value.fields["domains"] and "nodot" in caught.value.fields["domains"]


async def test_add_and_remove_domain(session: AsyncSession) -> None:
    acme = await directory.create_client(session, "Acme", ["acme.example"])
    other = await directory.create_client(session, "Other")
    await directory.add_domain(session, acme.id, "Acme.Org")
    assert (await directory.add_domain(session, acme.id, "acme.org")).domain == "acme.org"  # idempotent
    with pytest.raises(FieldConflict):
        await directory.add_domain(session, other.id, "acme.org")
    await directory.remove_domain(session, acme.id, "acme.example")
    assert [d.domain for d in (await directory.get_client(session, acme.id)).domains] == ["acme.org"]
    with pytest.raises(NotFound):
        await directory.remove_domain(session, acme.id, "acme.example")


async def test_get_and_list_clients(session: AsyncSession) -> None:
    acme = await directory.create_client(session, "Acme")
    await directory.create_client(session, "Beta")
    assert (await directory.get_client_by_name(session, "Acme")).id == acme.id
    assert [c.name for c in await directory.list_clients(session)] == ["Acme", "Beta"]
    with pytest.raises(NotFound):
        await directory.get_client(session, 999)
    with pytest.raises(NotFound):
        await directory.get_client_by_name(session, "Nobody")


async def test_agents(session: AsyncSession) -> None:
    agent = await directory.create_agent(session, "Ann Agent", "Ann@Support.example")
    assert agent.email == "Ann@support.example"
    with pytest.raises(FieldConflict):
        await directory.create_agent(session, "Other", "ann@support.example")
    with pytest.raises(InvalidInput) as caught:
        await directory.create_agent(session, "", "nope")
    assert set(caught.value.fields) == {"name", "email"}
    assert [a.id for a in await directory.list_agents(session)] == [agent.id]
    assert await directory.find_agent_by_email(session, "ANN@support.example") is not None
    with pytest.raises(NotFound):
        await directory.get_agent(session, 999)

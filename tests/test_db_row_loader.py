"""Rows loaded as ORM objects past the ORM's query machinery (`db.RowLoader`): the same objects a query
returns, with their eager relationships set, the session's own object when it holds one, and nothing
left to flush; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, event, func, inspect, select, update

from mailtickets.db import RowLoader
from mailtickets.models import Agent, Contact, Ticket
from tests.conftest import Store
from tests.world import build_world

TICKET = RowLoader(Ticket, Ticket.number == bindparam("number"), joined=("contact", "assigned_agent"))
CONTACT = RowLoader(Contact, func.lower(Contact.email) == bindparam("address"))


def columns(instance: Any) -> dict[str, Any]:
    mapper = inspect(instance).mapper
    return {attribute.key: getattr(instance, attribute.key) for attribute in mapper.column_attrs}


async def test_a_loaded_ticket_is_what_the_orm_query_returns_with_its_people(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    async with store.sessions() as session, session.begin():
        agent = await session.scalar(select(Agent))
        await session.execute(update(Ticket).where(Ticket.number == 1).values(assigned_agent_id=agent.id))
    async with store.sessions() as session:
        by_orm = await session.scalar(select(Ticket).where(Ticket.number == 1))
        assert by_orm is not None
        expected = columns(by_orm) | {"contact": columns(by_orm.contact), "agent": columns(by_orm.assigned_agent)}
    async with store.sessions() as session, session.begin():
        statements: list[str] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", lambda _c, _u, sql, *_: statements.append(sql))
        ticket = await TICKET.first(session, {"number": 1})
        assert ticket is not None and inspect(ticket).persistent
        people = {"contact": columns(ticket.contact), "agent": columns(ticket.assigned_agent)}
        assert columns(ticket) | people == expected
        # Every eager relationship is set (no lazy load under asyncio): the ones joined, and the clients.
        assert ticket.client is not None and ticket.client.name == "Acme Corp"
        assert ticket.contact is not None and ticket.contact.client is ticket.client
        assert ticket.assigned_agent is not None and ticket.assigned_agent.name == "Dan Agent"
        loads = [sql.split()[0] for sql in statements if not sql.startswith("BEGIN")]
        assert loads == ["SELECT", "SELECT"]  # the ticket with its contact and agent; then the client once
        before = len(statements)
        await session.flush()
        assert len(statements) == before  # nothing to flush
        ticket.subject = "Printer on fire, still"
        await session.flush()
        assert [sql.split()[0] for sql in statements[before:]] == ["UPDATE"]
    async with store.sessions() as session:
        assert await session.scalar(select(Ticket.subject).where(Ticket.number == 1)) == "Printer on fire, still"


async def test_a_missing_row_or_relationship_is_none(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    async with store.sessions() as session, session.begin():
        assert await TICKET.first(session, {"number": 404}) is None
        ticket = await TICKET.first(session, {"number": 2})  # no agent assigned
        assert ticket is not None and ticket.assigned_agent is None and ticket.contact is not None


async def test_the_session_s_own_object_is_returned_and_an_expired_one_is_loaded_again(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    async with store.sessions() as session, session.begin():
        held = await session.scalar(select(Contact).where(Contact.email == "alice@acme.example"))
        assert await CONTACT.first(session, {"address": "alice@acme.example"}) is held
        held.name = "Alice A."  # pending: seen by the load, as a query's autoflush would
        other = await CONTACT.first(session, {"address": "alice@acme.example"})
        assert other is held and not session.dirty
        await session.execute(update(Contact).where(Contact.id == held.id).values(name="Alice Z."))
        session.expire(held, ["name"])
        reloaded = await CONTACT.first(session, {"address": "alice@acme.example"})
        assert reloaded is held and held.name == "Alice Z."

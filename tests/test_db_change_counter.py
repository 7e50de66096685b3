"""The directory counter behind the pipeline's caches (agents, client domains, rules): every write through
SQLAlchemy bumps it in the writer's transaction, and a cache re-reads only when it moved."""

from __future__ import annotations

from pathlib import Path

from rules_support import open_db
from sqlalchemy import delete, event, select, text, update

from mailtickets.agentmail.store import agent_addresses
from mailtickets.db import create_engine, directory_version, session_factory, transaction
from mailtickets.directory.agents import create_agent
from mailtickets.directory.clients import add_domain, create_client
from mailtickets.match.sender import client_for_domain
from mailtickets.models import Agent, ChangeCounter, ClientDomain


async def _version(sessions: object) -> int:
    async with sessions() as session:  # type: ignore[operator]
        return int(await session.scalar(select(ChangeCounter.version)))


async def test_orm_and_core_writes_to_cached_tables_bump_the_counter_and_others_do_not(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    start = await _version(sessions)
    async with transaction(sessions) as session:
        await create_agent(session, "Ann Agent", "ann@helpdesk.example")  # an ORM flush
    after_orm = await _version(sessions)
    async with transaction(sessions) as session:
        await session.execute(update(Agent).values(name="Ann B. Agent"))  # a Core statement
    after_core = await _version(sessions)
    async with transaction(sessions) as session:
        await session.execute(text("SELECT 1"))
        await session.execute(delete(ClientDomain).where(ClientDomain.domain == "nobody.example"))
    assert start < after_orm < after_core < await _version(sessions)
    async with transaction(sessions) as session:  # contacts and tickets are not cached: no bump
        await session.execute(text("SELECT count(*) FROM contacts"))
    before_rollback = await _version(sessions)
    async with sessions() as session:
        await session.execute(update(Agent).values(name="rolled back"))
        await session.rollback()  # the bump goes with the change
    assert await _version(sessions) == before_rollback
    await engine.dispose()


async def test_a_domain_added_through_another_engine_is_matched_from_the_next_transaction(tmp_path: Path) -> None:
    url, engine, sessions = await open_db(tmp_path)
    async with transaction(sessions) as session:
        await create_client(session, "Acme", ["acme.example"])
    async with sessions() as session:
        assert (await client_for_domain(session, "mail.acme.example")) is not None
        assert await client_for_domain(session, "globex.example") is None
    other = create_engine(url)  # another instance (or the CLI) on the same database
    async with transaction(session_factory(other)) as session:
        acme = await create_client(session, "Globex", ["globex.example"])
    async with sessions() as session:
        found = await client_for_domain(session, "globex.example")
        assert found is not None and found.id == acme.id
    await other.dispose()
    await engine.dispose()


async def test_the_counter_is_read_once_per_transaction_and_not_cached_over_own_uncommitted_writes(
    tmp_path: Path,
) -> None:
    _, engine, sessions = await open_db(tmp_path)
    reads: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: reads.append(statement) if "FROM change_counters" in statement else None,
    )
    async with sessions() as session:
        await agent_addresses(session)
        await agent_addresses(session)
        await client_for_domain(session, "acme.example")
        assert len(reads) == 1
    async with transaction(sessions) as session:
        agent = await create_agent(session, "Bo Agent", "bo@helpdesk.example")
        assert await directory_version(session) is None  # written here, not committed: nothing is cached
        assert (await agent_addresses(session))["bo@helpdesk.example"] == agent.id
        client = await create_client(session, "Initech", [])
        await add_domain(session, client.id, "initech.example")
        assert await client_for_domain(session, "initech.example") is not None
        await session.rollback()
    async with sessions() as session:  # the rolled-back agent and domain were never cached
        assert "bo@helpdesk.example" not in await agent_addresses(session)
        assert await client_for_domain(session, "initech.example") is None
    await engine.dispose()

"""Durability: a commit the intakes acknowledge must survive a power cut (SQLite FULL, PostgreSQL on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from mailtickets.db import create_engine
from tests.conftest import Store

SQLITE_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


async def test_every_sqlite_connection_syncs_fully_in_wal(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/d.db", pool_size=3, max_overflow=0)
    try:
        # Hold three connections at once, so the pool opens three distinct DB-API connections.
        connections = []
        for _ in range(3):
            connection = await engine.connect()
            connections.append(connection)
            assert (await connection.execute(text("PRAGMA synchronous"))).scalar_one() == SQLITE_FULL
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            await connection.commit()  # every transaction begins IMMEDIATE: release the write lock
        await asyncio.gather(*(connection.close() for connection in connections))
    finally:
        await engine.dispose()


async def test_the_stores_engine_commits_durably(store: Store) -> None:
    async with store.engine.connect() as connection:
        if store.backend == "sqlite":
            assert (await connection.execute(text("PRAGMA synchronous"))).scalar_one() == SQLITE_FULL
        else:
            assert (await connection.execute(text("SHOW synchronous_commit"))).scalar_one() == "on"


async def test_a_full_database_is_a_temporary_failure_and_records_nothing(sqlite_store: Store) -> None:
    """SQLite's own "database or disk is full" (reached here by capping the file's pages, SQLite's
    max_page_count: the error a full disk gives): the message is left to be tried again (pipe exit 75,
    LMTP 451, kept in the mailbox), not quarantined, and nothing of it is written."""
    import sqlite3

    import pytest
    from sqlalchemy import event, func, select

    from mailtickets.db import session_factory
    from mailtickets.errors import TemporaryError
    from mailtickets.models import InboundMail, Ticket
    from mailtickets.parse.limits import ParseLimits
    from mailtickets.pipeline.ingest import Pipeline
    from mailtickets.pipeline.parse_worker import InProcessParser
    from tests.builders import make_message
    from tests.world import build_world

    await build_world(sqlite_store.sessions, sqlite_store.clock)
    database = sqlite3.connect(sqlite_store.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    (pages,) = database.execute("PRAGMA page_count").fetchone()
    database.close()
    async with sqlite_store.sessions() as session:
        tickets_before = await session.scalar(select(func.count()).select_from(Ticket))
    full = create_engine(sqlite_store.settings.database_url)

    @event.listens_for(full.sync_engine, "connect")
    def no_room(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: full
        cursor.close()

    pipeline = Pipeline(
        sqlite_store.settings, session_factory(full), sqlite_store.clock, parser=InProcessParser(ParseLimits())
    )
    try:
        with pytest.raises(TemporaryError, match="store unavailable") as raised:
            await pipeline.ingest(make_message(body="The printer is on fire. " * 2000), "pipe")
        assert "database or disk is full" in str(raised.value.__cause__)
    finally:
        await pipeline.close()
        await full.dispose()
    async with sqlite_store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMail)) == 0
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
    assert tickets == tickets_before

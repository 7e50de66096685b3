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

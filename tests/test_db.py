"""The database edge: inline SQLite must never deadlock two tasks of one event loop."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from mailtickets.db import transaction
from mailtickets.models import Client
from tests.conftest import Store


async def test_a_read_session_closing_while_another_task_writes_does_not_block(sqlite_store: Store) -> None:
    async def read() -> int:
        async with sqlite_store.sessions() as session:  # no begin(): closed without a commit
            return int(await session.scalar(select(func.count()).select_from(Client)) or 0)

    async def write(name: str) -> None:
        async with transaction(sqlite_store.sessions) as session:
            session.add(Client(name=name))

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(read() for _ in range(5)), *(write(f"c{i}") for i in range(5)))
    # A deadlock would stall the loop for the whole busy timeout (5 s) and then fail with "locked".
    assert loop.time() - started < 3
    assert await read() == 5

"""A lock held by another process never stalls the event loop: the waiting write sleeps asynchronously.

The MTA's `mailtickets ingest` or a backup holding the SQLite file is the normal case of an MTA set-up;
before, the inline connection waited inside the loop (busy_timeout) and nothing else ran for seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mailtickets.api import create_app
from mailtickets.db import create_engine, session_factory
from mailtickets.models import Outcome
from mailtickets.sqlite_inline import INLINE_BUSY_TIMEOUT_MS
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

HOLD_SECONDS = 3.0
PROBE_LIMIT_SECONDS = 0.1

# Another process takes the exclusive lock, says so, holds it, and lets go.
HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


async def _hold_lock(database: str, seconds: float) -> asyncio.subprocess.Process:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, database, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
    return holder


async def test_healthz_answers_within_100_ms_while_another_process_holds_the_lock(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    app = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)
    database = sqlite_store.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await client.get("/healthz")  # warm: the first request builds the app's routes and a connection
        await sqlite_store.pipeline().ingest(make_message(message_id="<warm@acme.example>"), "test")
        holder = await _hold_lock(database, HOLD_SECONDS)
        locked_at = loop.time()
        # A delivery arrives meanwhile: it must wait for the lock without holding up anything else.
        delivery = asyncio.create_task(sqlite_store.pipeline().ingest(make_message(), "test"))
        latencies = []
        while loop.time() - locked_at < HOLD_SECONDS - 0.1:  # probing while the lock is held
            started = loop.time()
            response = await client.get("/healthz")
            latencies.append(round(loop.time() - started, 3))
            assert response.status_code == 200
            await asyncio.sleep(0.02)
        assert not delivery.done()  # still waiting for the lock
        await asyncio.wait_for(holder.wait(), 5)
        result = await asyncio.wait_for(delivery, 10)
    assert len(latencies) > 50 and max(latencies) < PROBE_LIMIT_SECONDS, latencies
    assert result.outcome == Outcome.CREATED  # written once the lock was released


async def test_a_lock_held_past_the_wait_limit_fails_the_write_as_locked(sqlite_store: Store) -> None:
    """The wait is bounded: past INLINE_BUSY_TIMEOUT_MS the statement fails, which the pipeline reports
    as a temporary error (LMTP 451, pipe exit 75), and the loop ran meanwhile."""
    database = sqlite_store.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    engine = create_engine(sqlite_store.settings.database_url)
    holder = await _hold_lock(database, INLINE_BUSY_TIMEOUT_MS / 1000 + 2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with session_factory(engine)() as session, session.begin():
                await session.execute(text("SELECT 1"))
    finally:
        ticker.cancel()
        await engine.dispose()
        holder.kill()
        await holder.wait()
    assert ticks > 100  # 5 s of waiting: the loop kept running


def test_the_retry_leaves_statements_inside_a_transaction_alone(sqlite_store: Store) -> None:
    """Only statements that hold nothing are retried: a busy one inside a transaction is the caller's."""
    from mailtickets.sqlite_inline import _is_busy

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5  # type: ignore[attr-defined]
    snapshot = sqlite3.OperationalError("database is locked")
    snapshot.sqlite_errorcode = 517  # type: ignore[attr-defined]  # SQLITE_BUSY_SNAPSHOT
    other = sqlite3.OperationalError("no such table: x")
    other.sqlite_errorcode = 1  # type: ignore[attr-defined]
    assert _is_busy(busy) and _is_busy(snapshot) and not _is_busy(other)

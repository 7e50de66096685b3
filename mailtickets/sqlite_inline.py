"""aiosqlite's interface, with every call run directly on the event loop's thread.

aiosqlite hands each statement to a worker thread and wakes the loop when it is done; on this kind of
machine that hop costs ~10 times the statement itself (a `SELECT 1` took ~450 µs through aiosqlite and
~40 µs through SQLAlchemy's synchronous driver), and a message needs about fifteen statements. SQLite
on a local file answers in microseconds, so running it inline is both faster and simpler.

A lock held by another process (`mailtickets ingest` from the MTA, a backup) must not stall the loop, so
SQLite's own busy handler, which sleeps in the calling thread, is off (busy_timeout 0): a statement that
finds the database locked is retried here after an asyncio sleep that lets every other task run, up to
INLINE_BUSY_TIMEOUT_MS; past it the statement fails as "database is locked", which the pipeline reports as
a temporary error. Only statements that hold nothing yet are retried (a BEGIN, a statement outside a
transaction, a COMMIT): inside a transaction a busy statement is the caller's to roll back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiosqlite

INLINE_BUSY_TIMEOUT_MS = 5000
_BUSY_FIRST_WAIT_SECONDS = 0.001
_BUSY_LONGEST_WAIT_SECONDS = 0.05
_SQLITE_BUSY = 5
# Threads of their own: the loop's default executor may be full of work that waits for these very commits.
_COMMITS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-commit")


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to whoever awaits the future, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite.Connection that never starts its worker thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        # SQLAlchemy's adapter also talks to the queue directly (to set isolation_level).
        self._tx = _RunNow()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        connection = self._connection
        deadline = asyncio.get_running_loop().time() + INLINE_BUSY_TIMEOUT_MS / 1000
        wait = _BUSY_FIRST_WAIT_SECONDS
        while True:
            committing = fn == connection.commit and connection.in_transaction
            retryable = not connection.in_transaction or fn == connection.commit
            try:
                if committing:
                    # The one call that waits on the disk (synchronous=FULL: an fsync of the WAL). It runs in
                    # a thread, the loop goes on meanwhile: the next messages are parsed and queue up, and the
                    # next group commit takes them all. Nothing else uses this connection until it returns.
                    return await asyncio.get_running_loop().run_in_executor(_COMMITS, lambda: fn(*args, **kwargs))
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                left = deadline - asyncio.get_running_loop().time()
                if not (retryable and _is_busy(exc)) or left <= 0:
                    raise
            await asyncio.sleep(min(wait, left))
            wait = min(wait * 2, _BUSY_LONGEST_WAIT_SECONDS)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY  # extended codes keep it in the low byte


def connect_inline(database: str | Path, iter_chunk_size: int = 64, **kwargs: Any) -> InlineConnection:
    """Used as SQLAlchemy's `async_creator_fn` for the aiosqlite dialect."""
    return InlineConnection(lambda: sqlite3.connect(str(database), **kwargs), iter_chunk_size)

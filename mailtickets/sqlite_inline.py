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

`InlineCursor` goes one step further for statements: SQLAlchemy's adapter would cross from its greenlet to
the loop and through aiosqlite's coroutine wrappers four times per statement (cursor, execute, fetch,
close), a fifth of a simple statement's time here. It calls the sqlite3 cursor directly, and goes the
awaited way only for what must wait: a busy database (the retry above) and the commit.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import await_only

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
            retryable = _retryable(connection, fn)
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

    def raw(self) -> sqlite3.Connection:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY  # extended codes keep it in the low byte


class _Done:
    """An awaitable that is complete at once."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


_DONE = _Done()


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's cursor adapter on a plain sqlite3 cursor of an InlineConnection: no greenlet switch."""

    __slots__ = ()
    _awaitable_cursor_close = False  # closing a sqlite3 cursor is a plain call

    def _make_new_cursor(self, connection: Any) -> Any:
        return cast(InlineConnection, connection).raw().cursor()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    def _raw_cursor(self) -> sqlite3.Cursor:
        return cast(sqlite3.Cursor, self._cursor)  # what _make_new_cursor made

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        # SQLAlchemy's async Core checks that a statement crossed to the loop at least once (to catch a
        # synchronous driver by mistake): one switch with nothing to wait for, instead of four through aiosqlite.
        await_only(_DONE)
        cursor = self._raw_cursor()
        try:
            try:
                result = cursor.execute(operation) if parameters is None else cursor.execute(operation, parameters)
            except sqlite3.OperationalError as exc:
                if not (_is_busy(exc) and _retryable(cast(InlineConnection, self._connection).raw(), None)):
                    raise
                # Nothing is held yet: wait for the lock the asynchronous way (the loop runs meanwhile).
                arguments = (operation,) if parameters is None else (operation, parameters)
                result = await_only(cast(InlineConnection, self._connection)._execute(cursor.execute, *arguments))
            if cursor.description:
                self._rows = collections.deque(cursor.fetchall())
            return result
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        await_only(_DONE)  # as in execute
        try:
            return self._raw_cursor().executemany(operation, seq_of_parameters)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _async_soft_close(self) -> None:
        self._soft_closed_memoized = self._soft_closed_memoized.union({"description": self._cursor.description})
        self._raw_cursor().close()

    def close(self) -> None:
        self._rows.clear()
        self._raw_cursor().close()


class InlineAdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = InlineCursor


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim whose connections hand out InlineCursors (`module=` of the engine)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> InlineAdaptedConnection:
        connection: Any = await_only(connect_inline(*arg, **kw))  # aiosqlite's interface, which the shim expects
        return InlineAdaptedConnection(self, connection)


def _retryable(connection: sqlite3.Connection, fn: object) -> bool:
    return not connection.in_transaction or fn == connection.commit


def connect_inline(database: str | Path, iter_chunk_size: int = 64, **kwargs: Any) -> InlineConnection:
    """An InlineConnection (aiosqlite's interface) to the database file, not yet opened."""
    return InlineConnection(lambda: sqlite3.connect(str(database), **kwargs), iter_chunk_size)

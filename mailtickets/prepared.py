"""Core statements compiled once and run on the driver's own connection: the ingest path's statements.

`Connection.execute` costs about 100 µs of Python per statement (cache key, execution context, result
object) and an ORM query twice that: more than SQLite takes to insert a row, and a message runs ten of
them. A `Prepared` statement is SQLAlchemy's own SQL, compiled once per dialect and set of parameter
names; at execution its values go through the same type processors (bind and result) and straight to
the driver (the inline sqlite3 connection, or asyncpg's), inside the transaction SQLAlchemy began on
that connection. Errors come back as SQLAlchemy's exceptions (`IntegrityError` and the rest), so callers
handle them as before. Any other driver, or a statement this cannot run as is (expanding IN lists), goes
through `Connection.execute` unchanged.

Listeners of `before_cursor_execute` see every statement (tests and the bench count them); no
`after_execute` listener runs, so `db.prepare`, the way to build one, refuses a statement on a table
whose writes bump the directory counter (`db.CACHED_TABLES`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from mailtickets.sqlite_inline import InlineConnection

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Bind:
    name: str
    process: _Processor
    default: Callable[[], Any] | None  # when the caller gives no value: the statement's literal, a column default


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[_Bind, ...]
    results: tuple[_Processor, ...]  # one per returned column; () for a statement returning nothing

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for bind in self.binds:
            if bind.name in values:
                value = values[bind.name]
            elif bind.default is not None:
                value = bind.default()
            else:
                raise KeyError(f"no value for the bound parameter {bind.name!r}")
            arguments.append(bind.process(value) if bind.process is not None and value is not None else value)
        return arguments

    def rows(self, raw_rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not any(self.results):
            return [tuple(row) for row in raw_rows]
        processes = self.results
        return [
            tuple(v if process is None or v is None else process(v) for process, v in zip(processes, row, strict=True))
            for row in raw_rows
        ]


class Prepared:
    """One Core statement, compiled once per dialect and set of parameter names, run on the driver."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled | None] = {}

    async def rows(self, on: AsyncConnection, values: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows it returns, on a connection in a transaction (`db.connection_of`)."""
        values = values or {}
        connection = on.sync_connection
        assert connection is not None  # a started connection
        if not connection.in_transaction():
            # Past SQLAlchemy, nothing else would stop it: a session whose failed flush rolled its transaction
            # back keeps its connection, and a statement on the driver would then commit on its own.
            raise InvalidRequestError("a prepared statement runs only inside a transaction, and this one has ended")
        dialect = connection.dialect
        key = (dialect.name, frozenset(values))
        compiled: _Compiled | None = self._compiled.get(key, _UNKNOWN)
        if compiled is _UNKNOWN:
            compiled = self._compiled[key] = _compile(self.statement, dialect, sorted(values))
        if compiled is None:  # a driver or statement this does not handle: SQLAlchemy's own way
            result = await on.execute(self.statement, dict(values))
            return [tuple(row) for row in result] if result.returns_rows else []
        arguments = compiled.arguments(values)
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(connection, None, compiled.sql, arguments, None, False)
        driver = connection.connection.driver_connection
        if isinstance(driver, InlineConnection):
            raw_rows = _run_sqlite(driver, compiled.sql, arguments)
        else:
            raw_rows = await _run_asyncpg(connection, compiled.sql, arguments)
        return compiled.rows(raw_rows)

    async def one(self, on: AsyncConnection, values: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        rows = await self.rows(on, values)
        if len(rows) != 1:
            raise ValueError(f"expected one row, got {len(rows)}")
        return rows[0]

    async def scalar(self, on: AsyncConnection, values: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, None when there is none."""
        rows = await self.rows(on, values)
        return rows[0][0] if rows else None

    async def run(self, on: AsyncConnection, values: Mapping[str, Any] | None = None) -> None:
        await self.rows(on, values)


_UNKNOWN: Any = object()


def costly_round_trips(on: AsyncConnection) -> bool:
    """Whether a round trip to the database costs more than most statements: a server over a socket
    (asyncpg: ~100 µs of the loop's CPU and ~200-400 µs of waiting each, measured on this machine kind),
    not SQLite in the process. Where it does, the ingest path merges statements (`Script`, `db.Before`)."""
    return on.dialect.driver == "asyncpg"


def column_default(column: Column[Any]) -> Callable[[], Any] | None:
    """The column's Python-side default as a function of nothing (None: it has none), as SQLAlchemy's
    execution computes it for a row that gives no value."""
    default = column.default
    if default is None or getattr(default, "is_clause_element", False) or getattr(default, "is_sequence", False):
        return None
    return _column_default(column)


class Script:
    """Statements without parameters or rows, run in one round trip where the driver allows it.

    On asyncpg they go as one simple-protocol query (PostgreSQL takes several statements in one); a round
    trip costs far more there than the statement (two context switches with the server on this machine
    kind). Elsewhere each runs as a `Prepared` statement. Listeners of `before_cursor_execute` see one
    execution per round trip."""

    __slots__ = ("_each", "_joined")

    def __init__(self, *statements: str) -> None:
        self._joined = "; ".join(statements)
        self._each = tuple(Prepared(text(statement)) for statement in statements)

    async def run(self, on: AsyncConnection) -> None:
        if not costly_round_trips(on):
            for statement in self._each:
                await statement.run(on)
            return
        connection = on.sync_connection
        assert connection is not None  # a started connection
        if not connection.in_transaction():  # as in Prepared.rows
            raise InvalidRequestError("a prepared statement runs only inside a transaction, and this one has ended")
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(connection, None, self._joined, [], None, False)
        await _run_asyncpg(connection, self._joined, [], simple=True)


def _compile(statement: Executable, dialect: Dialect, keys: list[str]) -> _Compiled | None:
    driver = getattr(dialect, "driver", "")
    if (dialect.name, driver) not in (("sqlite", "aiosqlite"), ("postgresql", "asyncpg")):
        return None
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    assert isinstance(compiled, SQLCompiler)
    if compiled.positiontup is None or compiled.post_compile_params or compiled.literal_execute_params:
        return None
    if compiled.escaped_bind_names:
        return None
    processors = compiled._bind_processors
    defaults: dict[str, Callable[[], Any]] = {}
    for column in compiled.insert_prefetch:  # Python-side column defaults, as the execution context computes them
        defaults[column.key] = _column_default(column)
    for bind, name in compiled.bind_names.items():
        if name not in defaults and not bind.required:
            defaults[name] = bind.callable or _constant(bind.value)
    binds = []
    for name in compiled.positiontup:
        process = processors.get(name)
        if process is not None and not callable(process):  # a tuple type's processors: not on the hot path
            return None
        binds.append(_Bind(name, process, defaults.get(name)))
    results = tuple(entry[3]._cached_result_processor(dialect, None) for entry in compiled._result_columns)
    return _Compiled(compiled.string, tuple(binds), results)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _column_default(column: Column[Any]) -> Callable[[], Any]:
    default = column.default
    assert default is not None and not getattr(default, "is_clause_element", False)
    if getattr(default, "is_callable", False):
        function = default.arg  # type: ignore[attr-defined]
        return lambda: function(None)  # SQLAlchemy wraps a default that takes no context to ignore it
    return _constant(default.arg)  # type: ignore[attr-defined]


def _run_sqlite(driver: InlineConnection, sql: str, arguments: list[Any]) -> list[Any]:
    # In a transaction begun IMMEDIATE (db.py): the write lock is held, so nothing here waits for one.
    try:
        cursor = driver.raw().execute(sql, arguments)
        try:
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, arguments, error, sqlite3.Error) from error


async def _run_asyncpg(connection: Connection, sql: str, arguments: list[Any], *, simple: bool = False) -> list[Any]:
    """`simple`: no parameters, no rows, maybe several statements (asyncpg's `execute`, the simple protocol)."""
    adapted: Any = connection.connection.dbapi_connection  # SQLAlchemy's adapter: it owns the transaction
    dbapi: Any = connection.dialect.loaded_dbapi
    async with adapted._execute_mutex:
        try:
            if adapted._transaction is None:  # the adapter begins lazily, at the first statement
                await adapted._start_transaction()
            if simple:
                await adapted._connection.execute(sql)
                return []
            return list(await adapted._connection.fetch(sql, *arguments))
        except dbapi.Error as error:
            raise DBAPIError.instance(sql, arguments, error, dbapi.Error) from error
        except Exception as error:
            try:
                adapted._handle_exception(error)  # asyncpg's exception → the DBAPI's, as SQLAlchemy maps it
            except dbapi.Error as translated:
                raise DBAPIError.instance(sql, arguments, translated, dbapi.Error) from error
            raise

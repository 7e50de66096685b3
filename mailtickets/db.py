"""Database engine and sessions, created at start-up (never at import) from the settings."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import InstanceState, Mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert, UpdateBase

from mailtickets.errors import TemporaryError
from mailtickets.models import ChangeCounter
from mailtickets.prepared import Prepared, Script, column_default, costly_round_trips
from mailtickets.sqlite_inline import InlineDBAPI
from mailtickets.storage import create_private_file, make_private_dirs
from mailtickets.store_status import parse_database_url, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parse_database_url(url)  # a wrong scheme or driver is one sentence saying the right one, not a traceback
    if is_sqlite(url):
        kwargs.setdefault(
            "connect_args",
            # timeout 0: a lock wait would sleep in the loop's thread; sqlite_inline retries asynchronously.
            {"timeout": 0, "check_same_thread": False},
        )
        kwargs.setdefault("module", InlineDBAPI())  # statements straight on the loop's thread (sqlite_inline)
    elif make_url(url).get_backend_name() == "postgresql" and make_url(url).get_driver_name() == "asyncpg":
        # A commit returns only once it is on disk, whatever the server's default says.
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("server_settings", {}).setdefault("synchronous_commit", "on")
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "after_execute", _bump_on_cached_write)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (API, CLI) work while the pipeline writes. FULL syncs the WAL at every commit:
    # an intake acknowledges a mail (IMAP move, LMTP 250, exit 0) only after its commit, so that commit
    # must survive a power cut; group commit (pipeline/batch.py) pays the fsync once per batch.
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" hook issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=0")  # lock waits are sqlite_inline's, off the loop's thread
    cursor.close()


# Execution option for a read that must not queue behind a writer (health checks): it begins DEFERRED.
READ_ONLY = {"mailtickets_read_only": True}


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock at BEGIN, so two writers queue (sqlite_inline retries) instead of one failing
    # with "database is locked" when it upgrades a read transaction. Under WAL a DEFERRED read never waits.
    deferred = connection.get_execution_options().get("mailtickets_read_only", False)
    connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


# Tables the pipeline keeps in memory (VersionedCache): a write to any of them bumps the "directory" counter.
CACHED_TABLES = frozenset({"agents", "agent_aliases", "clients", "client_domains", "rules"})


def prepare(statement: Executable) -> Prepared:
    """A statement for the hot path, compiled once and run on the driver (`prepared.py`). Not for a
    cached table: no `after_execute` hook runs there, so its write would not bump the counter."""
    table = statement.table if isinstance(statement, UpdateBase) else None
    if isinstance(table, Table) and table.name in CACHED_TABLES:
        raise ValueError(f"{table.name} is cached in memory: its writes must go through Connection.execute")
    return Prepared(statement)


_DIRECTORY = "directory"
_BUMP = update(ChangeCounter).where(ChangeCounter.name == _DIRECTORY).values(version=ChangeCounter.version + 1)
_VERSION = prepare(select(ChangeCounter.version).where(ChangeCounter.name == _DIRECTORY))  # read on every message
_WROTE = "mailtickets_directory_written_in"  # on the connection: the transaction that wrote a cached table
_SEEN = "mailtickets_directory_version"  # on the session: (its transaction, the version read in it)
_CONNECTION = "mailtickets_connection"  # on the session: (its transaction, that transaction's connection)


def _bump_on_cached_write(connection: Connection, statement: Any, *_: Any) -> None:
    """Every INSERT/UPDATE/DELETE through SQLAlchemy (ORM flushes, Core, any door) on a cached table
    bumps the counter in the same transaction: the change and the bump commit or roll back together."""
    if not isinstance(statement, UpdateBase) or statement is _BUMP:
        return
    table = getattr(statement, "table", None)
    if getattr(table, "name", None) in CACHED_TABLES:
        connection.execute(_BUMP)
        connection.info[_WROTE] = connection.get_transaction()


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The connection of the session's transaction (begun if need be), looked up once per transaction.

    `AsyncSession.connection()` crosses into SQLAlchemy's greenlet on every call; the ingest path runs
    its Core statements through this instead, a dozen times per message. It is looked up again in each
    savepoint (SQLAlchemy emits the SAVEPOINT only when the nested transaction first asks for its
    connection: a statement run before that would not be undone with it) and each new transaction.
    """
    sync = session.sync_session
    current = sync.get_nested_transaction() or sync.get_transaction()
    seen = session.info.get(_CONNECTION)
    if seen is not None and seen[0] is current:
        return seen[1]  # type: ignore[no-any-return]
    connection = await session.connection()
    session.info[_CONNECTION] = (sync.get_nested_transaction() or sync.get_transaction(), connection)
    return connection


_SAVEPOINT = prepare(text("SAVEPOINT mailtickets_item"))
_ROLLBACK_TO_SAVEPOINT = prepare(text("ROLLBACK TO SAVEPOINT mailtickets_item"))
_RELEASE_SAVEPOINT = prepare(text("RELEASE SAVEPOINT mailtickets_item"))
_RELEASE_THEN_SAVEPOINT = Script("RELEASE SAVEPOINT mailtickets_item", "SAVEPOINT mailtickets_item")
_RELEASE_OWED = "mailtickets_release_owed"  # on the session: the transaction whose last item is not yet released


@asynccontextmanager
async def item_savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """One item of a group commit in a SAVEPOINT of the session's transaction, kept on the driver.

    `session.begin_nested()` does the same at about 70 µs of SQLAlchemy per item (it compiles each
    SAVEPOINT anew, under a new name) and asks for its connection again. Here the ORM does not know of
    the savepoint, so on a failure its objects are expunged, not expired: the Core-written ones
    (`attach_as_loaded`) would outlive their rows otherwise. A failed flush inside rolls back the whole
    transaction, as SQLAlchemy does outside a nested one: the caller's transaction then fails and
    GroupCommit runs each item alone. Not reentrant; nested `begin_nested()` inside it works as usual.

    Where one round trip can carry two statements (PostgreSQL), an item's RELEASE goes with the next
    item's SAVEPOINT, or with the COMMIT, which releases it too: one round trip per item instead of two.
    Until then what runs is inside the released-to-be savepoint, which changes nothing: a later item that
    fails rolls back to its own, newer one.
    """
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what came before belongs to the transaction, not to this item
    connection = await connection_of(session)
    root = session.sync_session.get_transaction()
    if session.info.pop(_RELEASE_OWED, None) is root and root is not None:
        await _RELEASE_THEN_SAVEPOINT.run(connection)
    else:
        await _SAVEPOINT.run(connection)
    try:
        yield
        if session.new or session.dirty or session.deleted:
            await session.flush()  # what the item left pending is written inside its savepoint
    except BaseException:
        if root is not None and root.is_active and session.sync_session.get_transaction() is root:
            await _ROLLBACK_TO_SAVEPOINT.run(connection)
            await _RELEASE_SAVEPOINT.run(connection)
        session.expunge_all()
        raise
    if costly_round_trips(connection):  # the RELEASE then rides with the next SAVEPOINT (_RELEASE_THEN_SAVEPOINT)
        session.info[_RELEASE_OWED] = root
    else:
        await _RELEASE_SAVEPOINT.run(connection)


async def directory_version(session: AsyncSession) -> int | None:
    """The directory counter, read at most once per transaction. None: nothing may be cached now, because
    this transaction wrote to a cached table (not committed yet) or the row is missing (a schema not made
    by the migrations)."""
    if session.new or session.dirty or session.deleted:  # as a query's autoflush would: a pending write
        await session.flush()  # to a cached table then counts as this transaction's
    connection = await connection_of(session)
    if connection.sync_connection is not None and (
        connection.sync_connection.info.get(_WROTE) is connection.sync_connection.get_transaction()
    ):
        return None
    root = session.sync_session.get_transaction()
    seen = session.info.get(_SEEN)
    if seen is not None and seen[0] is root:
        return seen[1]  # type: ignore[no-any-return]
    version: int | None = await _VERSION.scalar(connection)
    session.info[_SEEN] = (root, version)
    return version


Value = TypeVar("Value")


@dataclass(slots=True)
class _Cached(Generic[Value]):
    version: int
    value: Value


class VersionedCache(Generic[Value]):
    """A value loaded from cached tables, kept per database and re-loaded when the directory counter moved.

    Checked once per transaction: the messages of one group commit share one check, and a change made by
    another instance or door applies from the next transaction on.
    """

    def __init__(self, load: Callable[[AsyncSession], Awaitable[Value]]) -> None:
        self._load = load
        self._by_engine: weakref.WeakKeyDictionary[Engine, _Cached[Value]] = weakref.WeakKeyDictionary()

    async def get(self, session: AsyncSession) -> Value:
        version = await directory_version(session)
        if version is None:
            return await self._load(session)
        bind = session.sync_session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        cached = self._by_engine.get(engine)
        if cached is not None and cached.version == version:
            return cached.value
        value = await self._load(session)
        self._by_engine[engine] = _Cached(version, value)
        return value


@dataclass(frozen=True, slots=True)
class _RowInsert:
    statement: Prepared
    attributes: tuple[tuple[str, Column[Any]], ...]  # (attribute key, column), in RETURNING order


_ROW_INSERTS: dict[Mapper[Any], _RowInsert] = {}


def _row_insert(mapper: Mapper[Any]) -> _RowInsert:
    known = _ROW_INSERTS.get(mapper)
    if known is None:
        table = mapper.local_table
        assert isinstance(table, Table)
        attributes = tuple((mapper.get_property_by_column(c).key, c) for c in table.c)
        statement = prepare(insert(table).returning(*(column for _, column in attributes)))
        known = _ROW_INSERTS[mapper] = _RowInsert(statement, attributes)
    return known


_COLUMN_KEYS: dict[Mapper[Any], frozenset[str]] = {}


def new_row(model: type[Model], **columns: Any) -> Model:
    """A new (transient) object with its columns set as the constructor sets them, past the attribute
    instrumentation (the constructor fires an event per attribute: ~20 µs for a ticket). For column
    attributes only, on the ingest path; it goes to `insert_row` or to the session as usual."""
    mapper: Mapper[Any] = inspect(model)
    known = _COLUMN_KEYS.get(mapper)
    if known is None:
        known = _COLUMN_KEYS[mapper] = frozenset(mapper.column_attrs.keys())
    unknown = columns.keys() - known
    if unknown:
        raise TypeError(f"{model.__name__} has no column attribute {sorted(unknown)}")
    instance: Model = mapper.class_manager.new_instance()
    instance.__dict__.update(columns)
    return instance


@dataclass(frozen=True, slots=True)
class Before:
    """A Core INSERT … RETURNING one column, written just before a row (`insert_row`) whose attribute
    `key` takes the value it returns: the ticket counter's next number, the inbound record's id. Where
    round trips are costly (PostgreSQL) both go in one statement: the first as a data-modifying WITH."""

    statement: Prepared
    values: Mapping[str, Any]
    key: str


async def insert_row(session: AsyncSession, instance: Any, before: Before | None = None) -> None:
    """Write a new (transient) ORM object with one Core INSERT … RETURNING every column, and set what the
    database stored (id, defaults) on it. The ingest path's way around the unit of work's flush, which
    costs more than the statement; `attach_as_loaded` then hands the object to the session."""
    mapper = inspect(instance).mapper
    row_insert = _row_insert(mapper)
    state = instance.__dict__
    connection = await connection_of(session)
    if before is not None and costly_round_trips(connection):
        values = {column.key: state[key] for key, column in row_insert.attributes if key in state and key != before.key}
        link = mapper.get_property(before.key).columns[0]
        chained = _chained_insert(before.statement.statement, frozenset(before.values), row_insert, link, values)
        row = await chained.statement.one(connection, {**before.values, **chained.row.values(values)})
    else:
        if before is not None:
            state[before.key] = (await before.statement.one(connection, before.values))[0]
        values = {column.key: state[key] for key, column in row_insert.attributes if key in state}
        row = await row_insert.statement.one(connection, values)
    # Into the object's dict, past the attribute instrumentation: the object is transient, and
    # `attach_as_loaded` takes its whole dict as the loaded state (no history, nothing to flush).
    state.update(zip((key for key, _ in row_insert.attributes), row, strict=True))


@dataclass(frozen=True, slots=True)
class _NamedRow:
    """A row's parameters under names of their own (`prefix` + column key), with the Python-side column
    defaults of the columns not given filled in here: in a statement of several rows SQLAlchemy would
    name those after their columns, and two tables may share a column name."""

    prefix: str
    columns: tuple[Column[Any], ...]  # those given, then those with a Python-side default
    defaults: tuple[tuple[str, Callable[[], Any]], ...]

    @classmethod
    def of(cls, table: Table, given: frozenset[str], prefix: str, *, without: Column[Any] | None = None) -> _NamedRow:
        defaults = tuple(
            (column.key, default)
            for column in table.c
            if column.key not in given and column is not without and (default := column_default(column)) is not None
        )
        defaulted = {key for key, _ in defaults}
        columns = tuple(column for column in table.c if column.key in given or column.key in defaulted)
        return cls(prefix, columns, defaults)

    def binds(self) -> list[BindParameter[Any]]:
        return [bindparam(self.prefix + column.key, type_=column.type) for column in self.columns]

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = {self.prefix + key: value for key, value in given.items()}
        for key, default in self.defaults:
            values[self.prefix + key] = default()
        return values


@dataclass(frozen=True, slots=True)
class _Chained:
    statement: Prepared
    row: _NamedRow  # the second row's; the first statement's parameters keep their own names


# Keyed by the statements themselves (built once, at module level; Core statements hash by identity).
_CHAINED: dict[tuple[Executable, frozenset[str], str, str, frozenset[str]], _Chained] = {}


def _chained_insert(
    before: Executable, before_keys: frozenset[str], row_insert: _RowInsert, link: Column[Any], given: Mapping[str, Any]
) -> _Chained:
    """WITH first AS (<before> RETURNING x) INSERT INTO table (<given>, <defaults>, link) SELECT …, first.x
    FROM first RETURNING every column: built once per statement, table and set of columns given."""
    table = link.table
    assert isinstance(before, Insert) and isinstance(table, Table)
    cache_key = (before, before_keys, table.name, link.key, frozenset(given))  # not the Column: its == is SQL
    known = _CHAINED.get(cache_key)
    if known is not None:
        return known
    # Its values as named parameters (in a WITH, SQLAlchemy would name the ones it adds anonymously).
    first_table = before.table
    assert isinstance(first_table, Table)
    named = before.values({key: bindparam(key, type_=first_table.c[key].type) for key in before_keys})
    first = named.cte("mailtickets_first")
    (returned,) = first.c
    row = _NamedRow.of(table, frozenset(given), "mailtickets_row_", without=link)
    statement = (
        insert(table)
        .from_select([*row.columns, link], select(*row.binds(), returned), include_defaults=False)
        .returning(*(column for _, column in row_insert.attributes))
    )
    chained = _Chained(prepare(statement), row)
    _CHAINED[cache_key] = chained
    return chained


async def insert_together(session: AsyncSession, *rows: tuple[Prepared, Mapping[str, Any]]) -> None:
    """Rows of plain INSERTs (`prepare(insert(table))`, returning nothing), one after the other. Where
    round trips are costly (PostgreSQL) they go in one statement: all but the last as WITHs, which
    PostgreSQL runs whether or not the statement reads them (a notification's outbox row and its copy on
    the ticket, on every notification's path)."""
    connection = await connection_of(session)
    if len(rows) < 2 or not costly_round_trips(connection):
        for statement, values in rows:
            await statement.run(connection, values)
        return
    combined, named = _combined_insert(tuple((statement.statement, frozenset(values)) for statement, values in rows))
    merged: dict[str, Any] = {}
    for row, (_, values) in zip(named, rows, strict=True):
        merged |= row.values(values)
    await combined.run(connection, merged)


_COMBINED: dict[tuple[tuple[Executable, frozenset[str]], ...], tuple[Prepared, tuple[_NamedRow, ...]]] = {}


def _combined_insert(rows: tuple[tuple[Executable, frozenset[str]], ...]) -> tuple[Prepared, tuple[_NamedRow, ...]]:
    known = _COMBINED.get(rows)
    if known is not None:
        return known
    named: list[_NamedRow] = []
    inserts: list[Insert] = []
    for index, (statement, keys) in enumerate(rows):
        assert isinstance(statement, Insert)
        table = statement.table
        assert isinstance(table, Table)
        row = _NamedRow.of(table, keys, f"mailtickets_{index}_")
        named.append(row)
        inserts.append(insert(table).values(dict(zip((c.key for c in row.columns), row.binds(), strict=True))))
    *firsts, last = inserts
    statement = last.add_cte(*(first.cte(f"mailtickets_row_{index}") for index, first in enumerate(firsts)))
    _COMBINED[rows] = (prepare(statement), tuple(named))
    return _COMBINED[rows]


async def flush_pending(session: AsyncSession) -> None:
    """What the session holds unwritten, written: one changed object (a reply's ticket, on every reply's
    path) by a prepared UPDATE of the columns that changed, anything else by the ORM's flush.

    The object is then marked clean as the flush marks it (SQLAlchemy's `InstanceState._commit_all`,
    pinned by the lock and tested in tests/test_db_insert_row.py). A change the UPDATE cannot carry
    goes to the flush: a relationship set (its foreign key is synchronised there), a column left to its
    `onupdate` (the flush then expires it), a table in CACHED_TABLES (whose counter the flush's hook bumps)."""
    if not (session.new or session.dirty or session.deleted):
        return
    dirty = list(session.dirty)
    if session.new or session.deleted or len(dirty) != 1:
        await session.flush()
        return
    state = inspect(dirty[0])
    update_row = _row_update(state.mapper)
    if update_row is None:
        await session.flush()
        return
    changed: dict[str, Any] = {}
    for key in state.committed_state:
        column = update_row.columns.get(key)
        if column is None:  # not a plain column: the flush knows what to do with it
            await session.flush()
            return
        if state.attrs[key].history.added:  # set to a value other than the loaded one
            changed[column.key] = state.dict[key]
    if any(column.key not in changed for column in update_row.on_update):
        await session.flush()
        return
    if changed:
        ident = {_ROW_ID: state.identity[0]}
        await update_row.statement.run(await connection_of(session), changed | ident)
    state._commit_all(state.dict, session.sync_session.identity_map)


_ROW_ID = "mailtickets_row_id"  # the WHERE's parameter: a column's name would clash with its SET


@dataclass(frozen=True, slots=True)
class _RowUpdate:
    statement: Prepared
    columns: dict[str, Column[Any]]  # attribute key → column
    on_update: tuple[Column[Any], ...]  # columns with an `onupdate`: each must be given a value


_ROW_UPDATES: dict[Mapper[Any], _RowUpdate | None] = {}


def _row_update(mapper: Mapper[Any]) -> _RowUpdate | None:
    if mapper not in _ROW_UPDATES:
        table = mapper.local_table
        assert isinstance(table, Table)
        plain = table.name not in CACHED_TABLES and len(mapper.primary_key) == 1 and mapper.version_id_col is None
        on_update = tuple(c for c in table.c if c.onupdate is not None or c.server_onupdate is not None)
        columns = {mapper.get_property_by_column(column).key: column for column in table.c}
        statement = prepare(update(table).where(mapper.primary_key[0] == bindparam(_ROW_ID)))
        _ROW_UPDATES[mapper] = _RowUpdate(statement, columns, on_update) if plain else None
    return _ROW_UPDATES[mapper]


Model = TypeVar("Model")


async def get_held(session: AsyncSession, model: type[Model], ident: Any, **options: Any) -> Model | None:
    """`session.get`, but an object the session holds with nothing expired comes back without crossing
    into SQLAlchemy's greenlet (as `get` itself would return it: loader options apply to a load only).
    The pipeline's notifications read back, per message, the ticket and message it has just written."""
    held = session.identity_map.get(identity_key(model, ident))
    if held is not None:
        state = inspect(held)
        if not state.expired and not state.expired_attributes:
            return held
    return await session.get(model, ident, **options)


def attach_as_loaded(session: AsyncSession, *instances: Any) -> None:
    """Objects written by `insert_row` join the session as if just loaded: persistent, nothing to flush.
    Relationships set on them before stay (as loaded values); unset ones load on access as usual.

    A savepoint rolled back after this does not expunge them as it would flushed objects: the caller
    must (see GroupCommit), or a later row given the same id would clash with the stale object."""
    sync = session.sync_session
    for instance in instances:
        make_transient_to_detached(instance)
    for instance in instances:
        state = inspect(instance)
        if _reaches_only_attached(state, sync.hash_key):
            # `Session.add` without walking its save-update cascade (a third of its cost): nothing it
            # reaches is new to the session. SQLAlchemy's own step, pinned by the lock, tested.
            state._orphaned_outside_of_session = False
            sync._update_impl(state)
        else:
            session.add(instance)


def _reaches_only_attached(state: InstanceState[Any], session_key: int) -> bool:
    """Whether every object the state's save-update cascade would reach is in the session already."""
    for key in _cascading_relationships(state.mapper):
        value = state.dict.get(key)
        if value is None:
            continue
        for related in value if isinstance(value, Collection) else (value,):
            if instance_state(related).session_id != session_key:
                return False
    return True


_CASCADING: dict[Mapper[Any], tuple[str, ...]] = {}


def _cascading_relationships(mapper: Mapper[Any]) -> tuple[str, ...]:
    keys = _CASCADING.get(mapper)
    if keys is None:
        keys = _CASCADING[mapper] = tuple(r.key for r in mapper.relationships if r.cascade.save_update)
    return keys


class RowLoader(Generic[Model]):
    """One model's rows found by a prepared SELECT (`prepare`), joined to the session as loaded objects.

    What `session.scalar(select(Model).where(...))` returns, at a tenth of its cost: the ORM's query
    machinery costs more than the statement. The objects are built as `insert_row` builds them and
    attached with `attach_as_loaded`; their eagerly loaded (`lazy="joined"`) many-to-one relationships
    are set too, asyncio forbidding lazy loads: those named in `joined` from the same statement (LEFT
    OUTER JOINs), the others from the session or `session.get`. As in a query, an object the session
    holds already is the one returned; if that one has expired attributes, the ORM query runs instead.
    """

    def __init__(self, model: type[Model], *where: Any, joined: tuple[str, ...] = ()) -> None:
        self._model = model
        self._query = select(model).where(*where)
        mapper: Mapper[Any] = inspect(model)
        table = mapper.local_table
        assert isinstance(table, Table)
        self._parts: list[tuple[str | None, Mapper[Any], tuple[str, ...], int]] = [
            (None, mapper, _keys(mapper), len(table.c))
        ]
        columns: list[Any] = list(table.c)
        source: Any = table
        for name in joined:
            relationship = mapper.relationships[name]
            (local, remote), *more = relationship.local_remote_pairs
            assert not more and relationship.direction.name == "MANYTOONE", name
            target = relationship.mapper.local_table.alias(f"joined_{name}")
            source = source.outerjoin(target, local == target.corresponding_column(cast(Column[Any], remote)))
            columns.extend(target.c)
            self._parts.append((name, relationship.mapper, _keys(relationship.mapper), len(target.c)))
        self._statement = prepare(select(*columns).select_from(source).where(*where))

    async def first(self, session: AsyncSession, values: dict[str, Any]) -> Model | None:
        if session.new or session.dirty or session.deleted:
            await session.flush()  # as the query's autoflush would: it must see this transaction's changes
        rows = await self._statement.rows(await connection_of(session), values)
        if not rows:
            return None
        row, start, found = rows[0], 0, []
        for _, mapper, keys, width in self._parts:
            part = row[start : start + width]
            start += width
            found.append(_held_or_built(session, mapper, keys, part))
        if any(each is _EXPIRED for each in found):
            return cast(Model | None, await session.scalar(self._query, values))
        main = found[0]
        for (name, _, _, _), related in zip(self._parts[1:], found[1:], strict=True):
            if name is not None and name not in main.__dict__:  # built here (one held keeps what it has)
                set_committed_value(main, name, related)
        for built in reversed(found):  # the related first: adding the main one cascades to them (as pending)
            if built is not None and not inspect(built).persistent:
                await _set_joined_relationships(session, built)
                attach_as_loaded(session, built)
        return cast(Model, main)


_EXPIRED: Any = object()


def _keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    table = mapper.local_table
    assert isinstance(table, Table)
    return tuple(mapper.get_property_by_column(column).key for column in table.c)


def _held_or_built(session: AsyncSession, mapper: Mapper[Any], keys: tuple[str, ...], values: Sequence[Any]) -> Any:
    primary_key = tuple(values[keys.index(mapper.get_property_by_column(c).key)] for c in mapper.primary_key)
    if all(value is None for value in primary_key):
        return None  # a LEFT OUTER JOIN that found nothing
    held = session.identity_map.get(mapper.identity_key_from_primary_key(primary_key))
    if held is not None:
        state = inspect(held)
        return _EXPIRED if state.expired or state.expired_attributes else held
    built = mapper.class_manager.new_instance()
    built.__dict__.update(zip(keys, values, strict=True))  # as loaded: past the instrumentation, as insert_row
    return built


async def _set_joined_relationships(session: AsyncSession, built: Any) -> None:
    """The eagerly loaded many-to-one relationships a query would have loaded with the object."""
    for relationship in inspect(built).mapper.relationships:
        if relationship.lazy != "joined" or relationship.key in built.__dict__:
            continue
        assert relationship.direction.name == "MANYTOONE", relationship
        ((local, _remote),) = relationship.local_remote_pairs
        ident = built.__dict__[inspect(built).mapper.get_property_by_column(local).key]
        target = relationship.mapper.class_
        set_committed_value(built, relationship.key, None if ident is None else await get_held(session, target, ident))


class _InlineSQLiteSession(AsyncSession):
    """Closes without first yielding to the event loop.

    AsyncSession.__aexit__ runs close() in a shielded task, which hands control to the loop before the
    rollback that releases SQLite's write lock (every transaction here begins IMMEDIATE, reads too).
    Another task would then wait (asynchronously, in sqlite_inline) for a lock that only this task can
    release. A rollback never waits for a lock, so closing directly is safe.
    """

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    session_class = _InlineSQLiteSession if engine.dialect.name == "sqlite" else AsyncSession
    return async_sessionmaker(engine, expire_on_commit=False, class_=session_class)


async def ping(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The database answers a read; on SQLite without waiting for another process's write lock."""
    async with sessions() as session:
        connection = await session.connection(execution_options=READ_ONLY)
        await connection.execute(text("SELECT 1"))


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed when the block ends, rolled back if it raises.

    Raises TemporaryError if the block ends normally on a transaction that was already rolled back (a
    failed ORM flush does that, whoever caught its error): SQLAlchemy would end it without a word, and
    the caller would take for committed what is gone. A group commit's item savepoint is such a case."""
    async with sessions() as session, session.begin():
        yield session
        began = session.sync_session.get_transaction()
        if began is not None and not began.is_active:
            raise TemporaryError("the transaction was rolled back by a failed flush: nothing of it was committed")


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported here: Alembic is slow to import and only needed here

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous: Alembic's env runs its own event loop for async drivers)."""
    from alembic import command

    database = sqlite_path(parse_database_url(url))
    if database is not None:  # the one place a database is created: private (0600, folders 0700) from the start
        make_private_dirs(database.parent)  # the CLI's `db upgrade` refuses a missing folder before this
        create_private_file(database)
    command.upgrade(alembic_config(url), revision)

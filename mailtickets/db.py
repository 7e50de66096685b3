"""Database engine and sessions, created at start-up (never at import) from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from mailtickets.errors import TemporaryError
from mailtickets.sqlite_inline import connect_inline
from mailtickets.storage import create_private_file, make_private_dirs

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                make_private_dirs(Path(database).parent)
                create_private_file(Path(database))
            except OSError as exc:
                raise TemporaryError(f"database folder unavailable: {exc}") from exc
        kwargs.setdefault(
            "connect_args",
            # timeout 0: a lock wait would sleep in the loop's thread; sqlite_inline retries asynchronously.
            {"timeout": 0, "async_creator_fn": connect_inline, "check_same_thread": False},
        )
    elif make_url(url).get_backend_name() == "postgresql" and make_url(url).get_driver_name() == "asyncpg":
        # A commit returns only once it is on disk, whatever the server's default says.
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("server_settings", {}).setdefault("synchronous_commit", "on")
    engine = create_async_engine(url, **kwargs)
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
    """One unit of work: committed when the block ends, rolled back if it raises."""
    async with sessions() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported here: Alembic is slow to import and only needed here

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous: Alembic's env runs its own event loop for async drivers)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)

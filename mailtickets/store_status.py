"""Is the configured database usable? One clear sentence when it is not, before any command touches it.

Checked before a command opens its store, so that a wrong URL, a database that does not answer, or a
missing schema is one line saying what to do, and so that no command but `mailtickets db upgrade`
creates a database (SQLite would otherwise create an empty file on first connect).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from mailtickets.errors import StoreMisconfigured, TemporaryError

SUPPORTED_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
CONNECT_TIMEOUT_SECONDS = 10.0
EXAMPLES = "sqlite+aiosqlite:///./mailtickets.db or postgresql+asyncpg://user@host/db"


def parse_database_url(url: str) -> URL:
    """The URL, if it names a backend and an asyncio driver this product runs with."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreMisconfigured(f"database_url {url!r} is not a database URL: use {EXAMPLES}") from exc
    backend = "postgresql" if parsed.drivername in ("postgres", "postgresql") else parsed.get_backend_name()
    wanted = SUPPORTED_DRIVERS.get(backend)
    if wanted is None:
        raise StoreMisconfigured(f"database_url: unsupported database {backend!r}: use {EXAMPLES}")
    if parsed.drivername != wanted:
        fixed = parsed.set(drivername=wanted).render_as_string(hide_password=True)
        raise StoreMisconfigured(f"database_url must name the asyncio driver: {fixed}")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file of an on-disk SQLite database, else None (memory, or not SQLite)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def describe(url: URL) -> str:
    path = sqlite_path(url)
    return str(path.resolve()) if path is not None else url.render_as_string(hide_password=True)


def refuse_missing_sqlite_file(url: URL) -> None:
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreMisconfigured(f"there is no database at {path}: run `mailtickets db upgrade` to create it")


async def check_store(engine: AsyncEngine, database_url: str) -> None:
    """Raise StoreMisconfigured or TemporaryError, with what to do, unless the store answers and has a schema."""
    url = parse_database_url(database_url)
    refuse_missing_sqlite_file(url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS), engine.connect() as connection:
            has_schema = await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
    except (OSError, DBAPIError, TimeoutError) as exc:
        raise TemporaryError(f"cannot reach the database at {describe(url)}: {first_line(exc)}") from exc
    if not has_schema:
        raise StoreMisconfigured(f"the database at {describe(url)} has no schema: run `mailtickets db upgrade`")


def first_line(exc: BaseException) -> str:
    """An exception as one short line (DBAPI errors carry the SQL and a link on further lines)."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__



async def schema_revision(engine: AsyncEngine, database_url: str) -> str | None:
    """The Alembic revision the database is at; None when it has no schema (or no SQLite file yet)."""
    from alembic.runtime.migration import MigrationContext  # slow to import: only `db upgrade` needs it

    url = parse_database_url(database_url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS), engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    except (OSError, DBAPIError, TimeoutError) as exc:
        raise TemporaryError(f"cannot reach the database at {describe(url)}: {first_line(exc)}") from exc


def refuse_missing_folder(database_url: str) -> None:
    """`db upgrade` creates a SQLite file, never the folders above it (a typo would be made real)."""
    path = sqlite_path(parse_database_url(database_url))
    if path is not None and not path.parent.is_dir():
        raise StoreMisconfigured(f"the folder {path.parent} does not exist: create it, or fix database_url")

"""`mailtickets db copy --to URL`: every row of this database into another one (SQLite ↔ PostgreSQL).

The target gets the schema by the migrations (so it is at the same revision) and must be empty. Rows
go table by table in dependency order, in batches, in one transaction on the target: a failure leaves
it empty. PostgreSQL's id sequences are moved past the copied ids afterwards. Stop the service first:
the copy reads the source as it is while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, MetaData, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mailtickets.db import create_engine, upgrade
from mailtickets.errors import ConfigurationError
from mailtickets.models import Base
from mailtickets.service.app import check_schema
from mailtickets.store_status import check_store, refuse_missing_folder

BATCH_ROWS = 500


SEEDED_TABLES = frozenset({"change_counters"})  # rows the migrations write into a new database


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # table → rows copied


async def copy_database(
    source_url: str, target_url: str, on_table: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy every table of `source_url` into the empty database at `target_url` (see prepare_target)."""
    source, target = create_engine(source_url), create_engine(target_url)
    try:
        await check_store(source, source_url)
        await check_schema(source, source_url)  # the same revision as the target, so the columns match
        rows: dict[str, int] = {}
        async with source.connect() as reading, target.begin() as writing:
            await _refuse_non_empty(writing)
            for table in Base.metadata.sorted_tables:
                if table.name in SEEDED_TABLES:  # the target's own seed rows give way to the source's
                    await writing.execute(table.delete())
                rows[table.name] = await _copy_table(reading, writing, table)
                if on_table is not None:
                    on_table(table.name, rows[table.name])
            if target.dialect.name == "postgresql":
                await writing.run_sync(_advance_sequences)
        return CopyReport(rows)
    finally:
        await source.dispose()
        await target.dispose()


def prepare_target(source_url: str, target_url: str) -> None:
    """Create or upgrade the target's schema (synchronous: Alembic runs its own event loop)."""
    if source_url == target_url:
        raise ConfigurationError("the target is the database itself: give another URL with --to")
    refuse_missing_folder(target_url)
    upgrade(target_url)


async def _refuse_non_empty(connection: AsyncConnection) -> None:
    for table in Base.metadata.sorted_tables:
        if table.name not in SEEDED_TABLES and await connection.scalar(select(func.count()).select_from(table)):
            url = connection.engine.url.render_as_string(hide_password=True)
            raise ConfigurationError(f"the target {url} already holds data ({table.name}): give an empty database")


async def _copy_table(reading: AsyncConnection, writing: AsyncConnection, table: Table) -> int:
    copied = 0
    result = await reading.stream(select(table).order_by(*table.primary_key.columns))
    async for batch in result.mappings().partitions(BATCH_ROWS):
        await writing.execute(table.insert(), [dict(row) for row in batch])
        copied += len(batch)
    return copied


def _advance_sequences(connection: Connection) -> None:
    metadata = MetaData()
    metadata.reflect(connection)
    for table in metadata.sorted_tables:
        if "id" in table.columns and table.columns["id"].autoincrement:
            # Names come from our own reflected schema, never from input; no construct exists for setval.
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false) "
                    f"WHERE pg_get_serial_sequence('{table.name}', 'id') IS NOT NULL"
                )
            )

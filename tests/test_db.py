"""The database edge: inline SQLite must never deadlock two tasks of one event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
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


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::sqlalchemy.exc.SAWarning")
def test_the_migrations_build_the_schema_the_models_declare(tmp_path: Path) -> None:
    """Alembic's autogenerate finds nothing to add or drop after the migrations ran (a model change that
    forgot its migration fails here; expression indexes, which SQLite cannot reflect, are not compared)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine as create_sync_engine

    from mailtickets.db import upgrade
    from mailtickets.models import Base

    upgrade(f"sqlite+aiosqlite:///{tmp_path}/schema.db")
    engine = create_sync_engine(f"sqlite:///{tmp_path}/schema.db")
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()

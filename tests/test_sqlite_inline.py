"""The inline SQLite cursor: SQLAlchemy's DBAPI contract, kept without aiosqlite's wrappers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailtickets.db import create_engine
from mailtickets.sqlite_inline import InlineCursor

METADATA = MetaData()
ITEMS = Table("items", METADATA, Column("id", Integer, primary_key=True), Column("name", String(20), unique=True))


async def test_a_failed_statement_raises_sqlalchemys_error_and_its_transaction_rolls_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            raw = await connection.get_raw_connection()
            assert isinstance(raw.dbapi_connection.cursor(), InlineCursor)  # type: ignore[union-attr]
        with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: items\.name"):
            async with engine.begin() as connection:
                returned = await connection.execute(insert(ITEMS).returning(ITEMS.c.id), {"name": "first"})
                assert returned.scalar_one() == 1
                await connection.execute(insert(ITEMS), [{"name": "second"}, {"name": "first"}])  # executemany
        async with engine.connect() as connection:
            assert (await connection.execute(select(ITEMS.c.name))).all() == []  # nothing of it was kept
            await connection.execute(insert(ITEMS), {"name": "after"})  # the connection is usable again
            assert (await connection.execute(select(ITEMS.c.name))).scalars().all() == ["after"]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("rows", [0, 1, 250])
async def test_fetching_gives_every_row_and_the_rowcount_of_an_update(tmp_path: Path, rows: int) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            if rows:
                await connection.execute(insert(ITEMS), [{"name": f"n{n}"} for n in range(rows)])
            changed = await connection.execute(update(ITEMS).where(ITEMS.c.id % 2 == 0).values(name=ITEMS.c.name + "!"))
            assert changed.rowcount == rows // 2
            streamed = await connection.stream(select(ITEMS.c.name).order_by(ITEMS.c.id))
            assert len([name async for name in streamed.scalars()]) == rows
            fetched = (await connection.execute(select(ITEMS.c.name).order_by(ITEMS.c.id))).scalars().all()
            assert fetched == [f"n{n}!" if (n + 1) % 2 == 0 else f"n{n}" for n in range(rows)]
    finally:
        await engine.dispose()

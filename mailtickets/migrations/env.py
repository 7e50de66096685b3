"""Alembic environment: runs migrations over the async engine of the configured database."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mailtickets.db import create_engine
from mailtickets.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async(url))
    else:  # called from inside a running loop (tests, `mailtickets run`): use a worker thread
        import threading

        error: list[BaseException] = []

        def worker() -> None:
            try:
                asyncio.run(_run_async(url))
            except BaseException as exc:  # re-raised in the caller's thread just below
                error.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        if error:
            raise error[0]

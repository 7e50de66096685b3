"""What /readyz checks beyond "the database answers": that it and the data folder can be written.

A store that answers reads but refuses writes (a read-only file or folder, a full disk, a PostgreSQL in
read-only mode, no schema) makes every delivery fail as temporary: the service is not ready. Each probe
writes nothing that lasts and says why not in a few words, without secrets.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from sqlalchemy import delete, false
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.models import Lease

PROBE_SECONDS = 2.0  # a lock held longer than this by another process reads as "busy"
OK = "ok"


async def database_writable(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A write statement that changes no row, rolled back: it needs the write lock, a writable file and
    the schema, which a plain SELECT does not."""
    try:
        async with asyncio.timeout(PROBE_SECONDS), sessions() as session:
            await session.execute(delete(Lease).where(false()))
            await session.rollback()
    except TimeoutError:
        return f"busy: another process has held the write lock for over {PROBE_SECONDS:g} s"
    except (SQLAlchemyError, OSError) as exc:
        return f"not writable: {_reason(exc)}"
    return OK


async def folder_writable(folder: Path) -> str:
    """Creates the folder if needed, then writes, syncs and removes a small file in it."""
    try:
        await asyncio.to_thread(_write_and_remove, folder)
    except OSError as exc:
        return f"not writable: {exc.strerror or type(exc).__name__}"
    return OK


def _write_and_remove(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-") as handle:
        handle.write(b"readyz")
        handle.flush()
        os.fsync(handle.fileno())


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0][:160] or type(original).__name__

"""Shared fixtures: a migrated store on SQLite (always) and PostgreSQL (when configured), a clock."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailtickets.clock import ManualClock
from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Base
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.parse_worker import InProcessParser, limits_from
from mailtickets.settings import Settings

POSTGRES_URL = os.environ.get("MAILTICKETS_TEST_POSTGRES_URL")

# CI replays the same examples every run, so that a green run means green; hunting for new failures is a
# separate, longer run by hand: HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_corpus.py
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("fuzz", max_examples=3000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass
class Store:
    """One test's database, settings and clock, with the pipeline built over them."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: ManualClock

    def pipeline(self) -> Pipeline:
        # Parsed in-process (quick); tests of the worker processes build ParseWorkers themselves.
        parser = InProcessParser(limits_from(self.settings))
        return Pipeline(self.settings, self.sessions, self.clock, parser=parser)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "support_address": "support@helpdesk.example",
        "message_id_domain": "helpdesk.example",
        "secret_key": "test-secret",
        "smtp_url": "smtp://127.0.0.1:1",
        "parse_workers": 1,  # where a test runs the real workers, one process is enough
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test: the migrations run (and are tested) once."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated with Alembic, dropped at the end."""
    with _scratch_postgres("mailtickets_test") as url:
        upgrade(url)
        yield url


@contextmanager
def _scratch_postgres(prefix: str) -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("MAILTICKETS_TEST_POSTGRES_URL is not set (.ci/run sets it to the local server)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_url = POSTGRES_URL

    async def admin(sql: str) -> None:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(sql))
        finally:
            await engine.dispose()

    _run_in_thread(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _run_in_thread(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def clean_cli_env(tmp_path: Path) -> dict[str, str | None]:
    """The environment for a CLI command: no MAILTICKETS_* from outside, a SQLite file and a data folder."""
    cleared: dict[str, str | None] = {name: None for name in os.environ if name.startswith("MAILTICKETS_")}
    return {
        **cleared,
        "MAILTICKETS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'mt.db'}",
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """An empty PostgreSQL database (no schema) for this test, dropped after it."""
    with _scratch_postgres("mailtickets_empty") as url:
        yield url


def _run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    # Session fixtures may be first requested from inside a running test loop: use a loop of our own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def _backends() -> list[object]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if backend == "sqlite":
        database = tmp_path / "mailtickets.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), database)
        url = f"sqlite+aiosqlite:///{database}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    if backend == "postgres":
        await _truncate_all(engine)
    yield Store(make_settings(tmp_path / "data", url), engine, session_factory(engine), ManualClock())
    await engine.dispose()


async def _truncate_all(engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def sqlite_store(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Store]:
    """SQLite only, for tests that are about behaviour rather than the backend."""
    database = tmp_path / "mailtickets.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    yield Store(make_settings(tmp_path / "data", url), engine, session_factory(engine), ManualClock())
    await engine.dispose()


@pytest.fixture
def sink() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives: tests.notify_support.SmtpSink."""
    from tests.notify_support import SmtpSink

    server = SmtpSink()
    server.start()
    yield server
    server.stop()

"""/healthz and /readyz (no API key) and /metrics (any key) over the real app and a migrated SQLite store."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from mailtickets.api import create_app
from mailtickets.db import create_engine, session_factory
from mailtickets.ingest.imap import STANDBY
from mailtickets.log_setup import configure_logging
from mailtickets.metrics import Metrics
from mailtickets.pipeline.ingest import Pipeline
from tests.api_support import make_key
from tests.builders import make_message
from tests.conftest import Store
from tests.test_metrics import FakeListenerState
from tests.world import build_world


@asynccontextmanager
async def client_for(store: Store, pipeline: Pipeline | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store.settings, store.sessions, store.clock, pipeline=pipeline)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def observed(store: Store, **mailboxes: bool | str) -> Pipeline:
    """A pipeline whose metrics watch fake listeners: True is connected, a string is why not."""
    pipeline = store.pipeline()
    pipeline.metrics = Metrics()
    for name, state in mailboxes.items():
        fake = FakeListenerState(True) if state is True else FakeListenerState(False, str(state))
        pipeline.metrics.watch_mailbox(name, fake)
    return pipeline


async def test_healthz_answers_without_a_key(sqlite_store: Store) -> None:
    async with client_for(sqlite_store) as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_ready_when_database_and_mailboxes_are_up(sqlite_store: Store) -> None:
    async with client_for(sqlite_store, observed(sqlite_store, support=True)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready", "database": "ok", "data_dir": "ok", "mailboxes": {"support": "connected"}
    }  # fmt: skip


async def test_readyz_names_the_mailbox_that_is_down(sqlite_store: Store) -> None:
    why = "login refused: AUTHENTICATIONFAILED"
    async with client_for(sqlite_store, observed(sqlite_store, support=True, sales=why)) as client:
        response = await client.get("/readyz")
    body = response.json()
    assert (response.status_code, body["status"]) == (503, "unavailable")
    assert body["mailboxes"] == {"support": "connected", "sales": why}


async def test_readyz_counts_a_standby_instance_as_ready(sqlite_store: Store) -> None:
    async with client_for(sqlite_store, observed(sqlite_store, support=STANDBY)) as client:
        response = await client.get("/readyz")
    assert (response.status_code, response.json()["mailboxes"]) == (200, {"support": STANDBY})


async def test_readyz_unavailable_when_the_database_is_unreachable(sqlite_store: Store) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    broken = Store(sqlite_store.settings, engine, session_factory(engine), sqlite_store.clock)
    async with client_for(broken) as client:
        response = await client.get("/readyz")
    await engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable")


async def test_readyz_unavailable_when_the_data_folder_cannot_be_written(sqlite_store: Store, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    settings = sqlite_store.settings.model_copy(update={"data_dir": tmp_path / "a-file" / "data"})
    unwritable = Store(settings, sqlite_store.engine, sqlite_store.sessions, sqlite_store.clock)
    async with client_for(unwritable) as client:
        response = await client.get("/readyz")
    body = response.json()
    assert (response.status_code, body["database"]) == (503, "ok")
    assert body["data_dir"].startswith("not writable")


async def test_readyz_unavailable_when_the_database_answers_but_refuses_writes(store: Store) -> None:
    """A read-only SQLite file (opened mode=ro) or a read-only PostgreSQL session: reads work, writes fail."""
    if store.backend == "sqlite":
        url = (
            store.settings.database_url.replace("sqlite+aiosqlite:///", "sqlite+aiosqlite:///file:")
            + "?mode=ro&uri=true"
        )
        engine = create_engine(url)
    else:
        settings = {"server_settings": {"default_transaction_read_only": "on"}}
        engine = create_engine(store.settings.database_url, connect_args=settings)
    read_only = Store(store.settings, engine, session_factory(engine), store.clock)
    try:
        async with client_for(read_only) as client:
            health, ready = await client.get("/healthz"), await client.get("/readyz")
    finally:
        await engine.dispose()
    assert health.status_code == 200  # alive: it reads
    assert ready.status_code == 503 and ready.json()["database"].startswith("not writable"), ready.json()


async def test_metrics_in_prometheus_text_format(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    pipeline = observed(sqlite_store, support=True)
    await pipeline.ingest(make_message(message_id="<h1@acme.example>"), "test")
    key = await make_key(sqlite_store, read_only=True)
    async with client_for(sqlite_store, pipeline) as client:
        response = await client.get("/metrics", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'mailtickets_messages_total{outcome="created"} 1.0' in text
    assert "mailtickets_ingest_seconds_bucket" in text
    assert 'mailtickets_imap_connected{mailbox="support"} 1.0' in text
    assert 'mailtickets_outbox_mails{state="pending"}' in text


async def test_metrics_served_alone_still_report_the_outbox(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, read_only=True)
    async with client_for(sqlite_store) as client:
        response = await client.get("/metrics", headers={"X-API-Key": key})
    assert response.status_code == 200 and 'mailtickets_outbox_mails{state="failed"} 0.0' in response.text


def test_json_log_lines(capsys: pytest.CaptureFixture[str], sqlite_store: Store) -> None:
    previous = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        configure_logging(sqlite_store.settings.model_copy(update={"log_format": "json"}))
        logging.getLogger("mailtickets.pipeline.ingest").info("message %s: created %s", "<a@b>", "TCK-1")
    finally:
        logging.getLogger().handlers[:] = previous[0]
        logging.getLogger().setLevel(previous[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["level"], line["logger"]) == ("INFO", "mailtickets.pipeline.ingest")
    assert line["message"] == "message <a@b>: created TCK-1"


async def test_readyz_unavailable_while_another_process_holds_the_write_lock(sqlite_store: Store) -> None:
    """Another writer (here a second sqlite3 connection, as a migration or a backup script would hold it)
    keeps the write lock past the probe's limit: not ready, "busy", and ready again once it lets go."""
    import sqlite3

    from mailtickets.api.probes import PROBE_SECONDS

    path = sqlite_store.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with client_for(sqlite_store) as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert (
                response.json()["database"]
                == f"busy: another process has held the write lock for over {PROBE_SECONDS:g} s"
            )
            other.execute("ROLLBACK")
            again = await client.get("/readyz")
        assert (again.status_code, again.json()["database"]) == (200, "ok")
    finally:
        other.close()

"""`mailtickets run`: the composition root in-process, as a subprocess, and the SIGKILL crash test."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import make_key
from conftest import Store
from imap_support import ImapServer, add_example_client, dovecot_from_env, free_port, make_message
from sqlalchemy import func, select

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Ticket
from mailtickets.service.app import SchemaNotCurrent, TemplatesBroken, run
from mailtickets.settings import Settings

pytest_plugins = ["imap_fixtures"]


def service_env(server: ImapServer, database: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKETS_")}
    env.update(
        MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        MAILTICKETS_DATA_DIR=str(data_dir),
        MAILTICKETS_IMAP_URL=f"imap://{server.user}:{server.password}@{server.host}:{server.port}/{server.prefix}",
        MAILTICKETS_SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
        MAILTICKETS_LEASE_SECONDS="3",
        MAILTICKETS_SUPPORT_ADDRESS="support@helpdesk.example",
        MAILTICKETS_HTTP_BIND=f"127.0.0.1:{free_port()}",
        **extra,
    )
    return env


def start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from mailtickets.cli import main; main()", "run"], env=env, stdout=out, stderr=out
        )


def count(database: Path, sql: str) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute(sql).fetchone()[0])


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Path]:
    database = tmp_path / "service.db"
    upgrade(f"sqlite+aiosqlite:///{database}")
    yield database


async def test_run_refuses_a_database_not_at_head(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaNotCurrent, match="mailtickets db upgrade"):
        await run(settings)


async def test_run_refuses_templates_that_do_not_render(tmp_path: Path) -> None:
    (tmp_path / "chaser.txt").write_text("Hello {{ recipent_name }}")  # a misspelt variable in an override
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", templates_dir=tmp_path)
    with pytest.raises(TemplatesBroken, match="recipent_name"):
        await run(settings)


async def test_run_feeds_imap_and_lmtp_into_the_pipeline_and_stops_cleanly(
    sqlite_store: Store, imap_server: ImapServer
) -> None:
    await add_example_client(sqlite_store.sessions)
    await asyncio.to_thread(imap_server.create, imap_server.prefix)
    lmtp_port, http = free_port(), f"127.0.0.1:{free_port()}"
    mailbox = imap_server.mailbox()
    update = {"mailboxes": [mailbox], "lmtp_bind": f"127.0.0.1:{lmtp_port}", "http_bind": http}
    settings = sqlite_store.settings.model_copy(update=update)
    stop = asyncio.Event()
    service = asyncio.create_task(run(settings, stop))
    await imap_server.a_append(imap_server.prefix, make_message(1))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(_lmtp_deliver, lmtp_port, make_message(2))
    async with asyncio.timeout(10):
        while await _tickets(sqlite_store) < 2:
            await asyncio.sleep(0.05)
    # The API runs on the same loop: it sees the listener's connection and the pipeline's counters.
    key = await make_key(sqlite_store, read_only=True)
    async with httpx.AsyncClient(base_url=f"http://{http}") as client:
        ready = await _poll_ready(client)
        metrics = (await client.get("/metrics", headers={"X-API-Key": key})).text
    stop.set()
    await asyncio.wait_for(service, 10)
    assert await imap_server.a_uids(imap_server.prefix) == []
    assert ready == {"status": "ready", "database": "ok", "data_dir": "ok", "mailboxes": {mailbox.name: "connected"}}
    assert 'mailtickets_messages_total{outcome="created"} 2.0' in metrics


async def _poll_ready(client: httpx.AsyncClient) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            try:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.ConnectError:
                pass
            await asyncio.sleep(0.05)


def _lmtp_deliver(port: int, raw: bytes) -> None:
    import smtplib
    import time

    # The service starts its LMTP server beside the other parts; on a loaded machine it may not listen yet.
    deadline = time.monotonic() + 10
    while True:
        try:
            client = smtplib.LMTP("127.0.0.1", port)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with client:
        client.sendmail("alice@example.com", ["support@helpdesk.example"], raw)


async def _tickets(store: Store) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_cli_run_stops_on_sigterm(tmp_path: Path, migrated: Path, imap_server: ImapServer) -> None:
    imap_server.create(imap_server.prefix)
    env = service_env(imap_server, migrated, tmp_path / "data")
    log = tmp_path / "service.log"
    process = start_service(env, log)
    deadline = time.monotonic() + 15
    while "connected" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0, log.read_text()
    assert "mailtickets stopped" in log.read_text()


@pytest.fixture
def crash_server(request: pytest.FixtureRequest) -> ImapServer:
    """Dovecot when it runs (the server users have), else pymap: one run keeps the suite short."""
    return dovecot_from_env() or request.getfixturevalue("own_pymap")


@pytest.mark.slow
def test_sigkill_while_draining_loses_and_doubles_nothing(
    tmp_path: Path, migrated: Path, crash_server: ImapServer
) -> None:
    imap_server = crash_server
    total = 500
    _add_example_client_sync(migrated)
    imap_server.create(imap_server.prefix)
    messages = [make_message(n) for n in range(total)]
    imap_server.append(imap_server.prefix, *messages)
    env = service_env(imap_server, migrated, tmp_path / "data")
    del env["MAILTICKETS_IMAP_URL"]  # a [[mailboxes]] entry instead, for the test's own processed folder
    env["MAILTICKETS_MAILBOXES"] = json.dumps([imap_server.mailbox().model_dump()])
    log = tmp_path / "service.log"
    rng = random.Random(7)
    for _ in range(4):
        process = start_service(env, log)
        time.sleep(rng.uniform(1.5, 3.0))
        process.kill()
        process.wait()
    process = start_service(env, log)
    try:
        deadline = time.monotonic() + 60
        while imap_server.uids(imap_server.prefix) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert imap_server.uids(imap_server.prefix) == [], log.read_text()[-3000:]
    assert len(imap_server.uids(f"{imap_server.prefix}-done")) == total
    assert count(migrated, "SELECT count(*) FROM inbound_mail") == total
    assert count(migrated, "SELECT count(*) FROM tickets") == total
    assert count(migrated, "SELECT count(DISTINCT message_id) FROM ticket_messages WHERE direction='inbound'") == total
    assert count(migrated, "SELECT count(*) FROM ticket_messages WHERE direction='inbound'") == total


def _add_example_client_sync(database: Path) -> None:
    async def work() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{database}")
        try:
            await add_example_client(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(work())

"""The API served for real by uvicorn: as a `mailtickets run` component that stops when told to."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from conftest import Store

from mailtickets.api.server import parse_bind, run_api


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError):
        parse_bind("localhost")


async def test_run_api_serves_until_stopped(sqlite_store: Store) -> None:
    port = _free_port()
    sqlite_store.settings.http_bind = f"127.0.0.1:{port}"
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_api(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock, sqlite_store.pipeline(), stop)
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            try:
                health = await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the API never started listening")
        unauthorised = await client.get("/api/v1/contacts")
    assert health.json() == {"status": "ok"} and unauthorised.status_code == 401
    stop.set()
    await asyncio.wait_for(task, timeout=10)

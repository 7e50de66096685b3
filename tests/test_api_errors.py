"""The one error shape for failures that are not the caller's: the store unavailable (503), a bug (500)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from conftest import Store, make_settings

from mailtickets.api import create_app
from mailtickets.clock import ManualClock
from mailtickets.db import create_engine, session_factory

UNREACHABLE = {
    "sqlite": "sqlite+aiosqlite:///{tmp}/no/such/dir/mailtickets.db",
    "postgres": "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",  # port 1: connection refused
}


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
async def test_store_unreachable_is_503_in_the_error_shape(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = UNREACHABLE[backend].format(tmp=tmp_path)
    engine = create_engine(url)
    app = create_app(make_settings(tmp_path, url), session_factory(engine), ManualClock())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            response = await api.get("/api/v1/contacts", headers={"X-API-Key": "mtk_anything"})
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "temporarily_unavailable", "message": "temporary failure, try again later", "fields": {}}
    }
    assert "unhandled error" not in caplog.text


async def test_a_bug_in_a_faked_route_is_500_in_the_error_shape(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/faked-bug", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            response = await api.get("/faked-bug")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error", "fields": {}}}
    assert "unhandled error in the HTTP API" in caplog.text

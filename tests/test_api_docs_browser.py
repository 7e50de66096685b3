"""The API docs page in a real headless Chromium: without internet (Swagger UI served from the package),
with the browser's own Basic login answering the 401 (one WWW-Authenticate line per scheme)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from api_support import api_client, make_key
from conftest import Store

from mailtickets.api import create_app
from mailtickets.api.server import EmbeddedServer, bind_socket

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
async def served(sqlite_store: Store) -> AsyncIterator[str]:
    """The API on a free loopback port, served by uvicorn on this test's loop."""
    import uvicorn

    listening = bind_socket("127.0.0.1:0")
    port = listening.getsockname()[1]
    app = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)
    server = EmbeddedServer(uvicorn.Config(app, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def test_a_401_carries_one_challenge_per_scheme(sqlite_store: Store) -> None:
    async with api_client(sqlite_store) as anonymous:
        refused = await anonymous.get("/api/v1/docs")
    challenges = refused.headers.get_list("www-authenticate")
    assert refused.status_code == 401 and len(challenges) == 2
    assert sorted(c.split()[0] for c in challenges) == ["Basic", "Bearer"]


async def test_the_docs_assets_come_from_the_package(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store)
    async with api_client(sqlite_store, key) as api:
        page = (await api.get("/api/v1/docs")).text
        script = await api.get("/api/v1/docs/assets/swagger-ui-bundle.js")
        css = await api.get("/api/v1/docs/assets/swagger-ui.css")
    assert "cdn" not in page.lower() and "/api/v1/docs/assets/swagger-ui-bundle.js" in page
    assert script.status_code == 200 and len(script.content) > 100_000
    assert css.status_code == 200 and "swagger-ui" in css.text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
async def test_chromium_opens_the_docs_with_a_key_and_sees_the_operations(sqlite_store: Store, served: str) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="needs the playwright package")
    key = await make_key(sqlite_store, "browser")
    outside: list[str] = []
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = await browser.new_context(http_credentials={"username": "browser", "password": key})

            async def only_loopback(route: object) -> None:  # no internet here: prove the page needs none
                request = route.request  # type: ignore[attr-defined]
                if request.url.startswith(served):
                    await route.continue_()  # type: ignore[attr-defined]
                else:
                    outside.append(request.url)
                    await route.abort()  # type: ignore[attr-defined]

            await context.route("**/*", only_loopback)
            page = await context.new_page()
            await page.goto(f"{served}/api/v1/docs")
            await page.wait_for_selector(".opblock", timeout=30_000)
            operations = await page.locator(".opblock").count()
            title = await page.locator(".title").first.inner_text()
        finally:
            await browser.close()
    assert operations > 20 and "mailtickets" in title
    assert outside == []


async def test_the_docs_page_is_refused_without_a_key_in_a_real_server(served: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{served}/api/v1/docs")
    assert response.status_code == 401

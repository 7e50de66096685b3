"""Shared by the HTTP API tests: an app over a test store and an httpx client holding an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from conftest import Store

from mailtickets.api import create_app
from mailtickets.api.keys import create_api_key


async def make_key(store: Store, name: str = "tester", *, read_only: bool = False) -> str:
    async with store.sessions() as session, session.begin():
        return (await create_api_key(session, name, read_only=read_only))[1]


@asynccontextmanager
async def api_client(store: Store, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process; with `key`, every request carries it as Bearer."""
    app = create_app(store.settings, store.sessions, store.clock, pipeline=store.pipeline())
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as client:
        yield client

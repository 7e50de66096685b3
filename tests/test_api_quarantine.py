"""/api/v1/quarantine: list, show, release (optionally to a client), discard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_support import api_client, make_key
from builders import make_message
from conftest import Store
from sqlalchemy import select

from mailtickets.models import Client, ClientDomain, InboundMail

BASE = "/api/v1/quarantine"


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def _hold(store: Store, n: int = 1) -> int:
    raw = make_message(sender=f"stranger{n}@unknown.example", message_id=f"<held-{n}@unknown.example>")
    result = await store.pipeline().ingest(raw, "test")
    assert result.outcome.value == "quarantined", result
    async with store.sessions() as session:
        query = select(InboundMail.id).where(InboundMail.message_id == f"held-{n}@unknown.example")
        return int(await session.scalar(query) or 0)


async def test_list_and_show(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    held = await _hold(sqlite_store)
    rows = (await api.get(BASE)).json()["data"]
    assert [r["id"] for r in rows] == [held] and rows[0]["state"] == "held" and rows[0]["reason"]
    detail = (await api.get(f"{BASE}/{held}")).json()
    assert "printer is on fire" in detail["text"] and detail["to"] == ["support@helpdesk.example"]
    assert (await api.get(f"{BASE}/999")).status_code == 404
    assert (await api.get(BASE, params={"state": "bogus"})).status_code == 422


async def test_list_in_pages_newest_first(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    held = [await _hold(sqlite_store, n) for n in range(3)]
    first = (await api.get(BASE, params={"limit": 2})).json()
    rest = (await api.get(BASE, params={"limit": 2, "offset": 2})).json()
    assert [r["id"] for r in first["data"] + rest["data"]] == held[::-1]
    assert (first["total"], first["limit"], first["offset"], rest["offset"]) == (3, 2, 0, 2)
    assert (await api.get(BASE, params={"limit": 0})).status_code == 422


async def test_release_makes_a_ticket(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    held = await _hold(sqlite_store)
    response = await api.post(f"{BASE}/{held}/release")
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "created" and response.json()["ticket"]
    assert (await api.post(f"{BASE}/{held}/release")).status_code == 409
    assert (await api.get(BASE, params={"state": "released"})).json()["data"][0]["id"] == held
    shown = (await api.get(f"{BASE}/{held}")).json()  # still readable once released
    assert shown["state"] == "released" and "printer is on fire" in shown["text"]


async def test_release_to_a_client(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    async with sqlite_store.sessions() as session, session.begin():
        session.add(Client(name="Acme"))
    held = await _hold(sqlite_store)
    unknown = await api.post(f"{BASE}/{held}/release", json={"client_id": 999})
    assert unknown.status_code == 422 and set(unknown.json()["error"]["fields"]) == {"client_id"}
    assert (await api.post(f"{BASE}/999/release", json={"client_id": 1})).status_code == 404
    assert (await api.post(f"{BASE}/{held}/release", json={"client_id": "x"})).status_code == 422
    released = await api.post(f"{BASE}/{held}/release", json={"client_id": 1})
    assert released.status_code == 200
    ticket = (await api.get(f"/api/v1/tickets/{released.json()['ticket']}")).json()
    assert ticket["client"] == "Acme"


async def test_discard(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    held = await _hold(sqlite_store)
    assert (await api.post(f"{BASE}/{held}/discard")).status_code == 204
    assert (await api.post(f"{BASE}/{held}/discard")).status_code == 409
    assert (await api.get(BASE)).json() == {"data": [], "total": 0, "limit": 50, "offset": 0}
    assert (await api.post(f"{BASE}/999/discard")).status_code == 404
    assert (await api.get(f"{BASE}/{held}")).json()["state"] == "discarded"


async def test_show_is_404_for_mail_that_was_never_quarantined(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    async with sqlite_store.sessions() as session, session.begin():
        session.add(Client(name="Acme", domains=[ClientDomain(domain="acme.example")]))
    result = await sqlite_store.pipeline().ingest(make_message(), "test")
    assert result.outcome.value == "created"
    async with sqlite_store.sessions() as session:
        inbound_id = await session.scalar(select(InboundMail.id))
    assert (await api.get(f"{BASE}/{inbound_id}")).status_code == 404

"""The API behaves one way everywhere: one envelope for every collection, references in any case, a reply
that could reach nobody refused, a reply to a closed ticket following reopen_policy, and every new-ticket
notification carrying the ticket's text."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from api_support import make_key
from builders import make_message
from conftest import Store
from sqlalchemy import select

from mailtickets.api import create_app
from mailtickets.models import Client, ClientDomain, Contact, OutboxMail

BASE = "/api/v1/tickets"
COLLECTIONS = ["/tickets", "/contacts", "/clients", "/agents", "/quarantine", "/rules"]


async def _api(store: Store, **settings: Any) -> httpx.AsyncClient:
    app = create_app(store.settings.model_copy(update=settings), store.sessions, store.clock)
    headers = {"Authorization": f"Bearer {await make_key(store)}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers)


async def _seed(store: Store) -> None:
    async with store.sessions() as session, session.begin():
        acme = Client(name="Acme", domains=[ClientDomain(domain="acme.example")])
        session.add(acme)
        await session.flush()
        session.add(Contact(name="Alice Able", email="alice@acme.example", client_id=acme.id))


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await _seed(sqlite_store)
    async with await _api(sqlite_store, notify_new_tickets_to=["dispatch@helpdesk.example"]) as client:
        yield client


@pytest.mark.parametrize("path", COLLECTIONS)
async def test_every_collection_has_the_same_envelope(api: httpx.AsyncClient, path: str) -> None:
    body = (await api.get(f"/api/v1{path}", params={"limit": 1, "offset": 0})).json()
    assert set(body) == {"total", "limit", "offset", "data"}, body
    assert (body["limit"], body["offset"]) == (1, 0) and isinstance(body["data"], list)


async def test_the_document_declares_no_bare_list(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    bare = []
    for path, methods in document["paths"].items():
        schema = methods.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
        if schema.get("application/json", {}).get("schema", {}).get("type") == "array":
            bare.append(path)
    assert bare == []


async def test_references_are_case_insensitive(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    await sqlite_store.pipeline().ingest(make_message(), "test")
    assert (await api.get(f"{BASE}/tck-1")).json()["ref"] == "TCK-1"
    assert (await api.get(f"{BASE}/Tck-1")).status_code == 200
    assert (await api.post(f"{BASE}/tck-1/replies", json={"body": "noted", "private": True})).status_code == 201


async def test_a_public_reply_that_reaches_nobody_is_422(api: httpx.AsyncClient) -> None:
    created = await api.post(BASE, json={"subject": "Phone call", "description": "Printer jammed"})
    ref = created.json()["ref"]
    refused = await api.post(f"{BASE}/{ref}/replies", json={"body": "On it."})
    assert refused.status_code == 422 and "no contact" in refused.json()["error"]["message"]
    assert (await api.post(f"{BASE}/{ref}/replies", json={"body": "called back", "private": True})).status_code == 201


async def test_a_reply_to_a_closed_ticket_reopens_it_within_the_window(
    api: httpx.AsyncClient, sqlite_store: Store
) -> None:
    await sqlite_store.pipeline().ingest(make_message(), "test")
    assert (await api.patch(f"{BASE}/TCK-1", json={"status": "closed"})).status_code == 200
    reply = await api.post(f"{BASE}/TCK-1/replies", json={"body": "One more thing."})
    assert reply.status_code == 201
    assert (await api.get(f"{BASE}/TCK-1")).json()["status"] == "open"


async def test_a_reply_to_a_ticket_closed_too_long_ago_is_refused(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    await sqlite_store.pipeline().ingest(make_message(), "test")
    assert (await api.patch(f"{BASE}/TCK-1", json={"status": "closed"})).status_code == 200
    sqlite_store.clock.advance(timedelta(days=sqlite_store.settings.reopen_window_days + 1))
    refused = await api.post(f"{BASE}/TCK-1/replies", json={"body": "Late."})
    assert refused.status_code == 409 and "reopen_policy" in refused.json()["error"]["message"]
    assert (await api.get(f"{BASE}/TCK-1")).json()["status"] == "closed"


async def test_new_linked_policy_never_reopens_by_reply(sqlite_store: Store) -> None:
    await _seed(sqlite_store)
    await sqlite_store.pipeline().ingest(make_message(), "test")
    async with await _api(sqlite_store, reopen_policy="new-linked") as api:
        assert (await api.patch(f"{BASE}/TCK-1", json={"status": "closed"})).status_code == 200
        assert (await api.post(f"{BASE}/TCK-1/replies", json={"body": "x"})).status_code == 409


def _text(raw: bytes) -> str:
    message: Message = email.message_from_bytes(raw)
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return "".join(str(p.get_payload(decode=True), "utf-8") for p in parts)


async def test_a_ticket_made_by_the_api_tells_the_dispatcher_its_text(
    api: httpx.AsyncClient, sqlite_store: Store
) -> None:
    created = await api.post(BASE, json={"subject": "Phone call", "description": "The printer on floor 3 is jammed."})
    assert created.status_code == 201
    async with sqlite_store.sessions() as session:
        mails = list(await session.scalars(select(OutboxMail).where(OutboxMail.kind == "new_ticket")))
    assert [m.recipient for m in mails] == ["dispatch@helpdesk.example"]
    assert "The printer on floor 3 is jammed." in _text(mails[0].raw)


async def test_a_ticket_takes_its_client_by_name_as_the_cli_does(api: httpx.AsyncClient) -> None:
    created = await api.post(BASE, json={"subject": "Phone call", "client": "Acme"})
    assert created.status_code == 201 and created.json()["client"] == "Acme"
    unknown = await api.post(BASE, json={"subject": "Phone call", "client": "Nobody"})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"] == {"client": "no client named 'Nobody'"}
    clash = await api.post(BASE, json={"subject": "Phone call", "client": "Acme", "client_id": 99})
    assert clash.status_code == 422 and "client" in clash.json()["error"]["fields"]

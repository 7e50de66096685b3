"""/api/v1/tickets: list with filters, show, attachment download, create by phone, update, reply, merge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_support import api_client, make_key
from builders import make_message
from conftest import Store
from sqlalchemy import select

from mailtickets.models import Agent, Client, ClientDomain, Contact, OutboxMail

BASE = "/api/v1/tickets"


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with sqlite_store.sessions() as session, session.begin():
        acme = Client(name="Acme", domains=[ClientDomain(domain="acme.example")])
        session.add(acme)
        await session.flush()
        session.add(Contact(name="Alice Able", email="alice@acme.example", client_id=acme.id))
        session.add(Agent(name="Dan Agent", email="dan@helpdesk.example"))
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def _ingest(store: Store, **message: Any) -> str:
    result = await store.pipeline().ingest(make_message(**message), "test")
    assert result.ticket is not None, result
    return result.ticket


async def _outbox(store: Store) -> list[OutboxMail]:
    async with store.sessions() as session:
        return list(await session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


async def test_show_with_messages_and_download_attachment(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    payload = "naïve report\n".encode()
    ref = await _ingest(sqlite_store, attachments=[("rapport é.txt", "text/plain", payload)])
    detail = (await api.get(f"{BASE}/{ref}")).json()
    assert detail["ref"] == ref and detail["client"] == "Acme" and detail["contact"]["email"] == "alice@acme.example"
    attachment = detail["messages"][0]["attachments"][0]
    assert attachment["filename"] == "rapport é.txt"
    download = await api.get(f"{BASE}/{ref}/attachments/{attachment['id']}")
    assert download.status_code == 200 and download.content == payload
    assert "filename*=UTF-8''rapport%20%C3%A9.txt" in download.headers["content-disposition"]
    assert (await api.get(f"{BASE}/{ref}/attachments/99999")).status_code == 404


async def test_show_unknown_and_malformed_refs(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{BASE}/TCK-999")).status_code == 404
    bad = await api.get(f"{BASE}/not-a-ref")
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == {"ticket": "expected e.g. TCK-12"}


async def test_create_by_phone_sends_acknowledgement(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    response = await api.post(
        BASE, json={"subject": "Phone: printer jam", "description": "Called at 9", "contact_id": 1, "priority": "high"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client"] == "Acme" and body["priority"] == "high" and body["status"] == "open"
    assert response.headers["location"] == f"{BASE}/{body['ref']}"
    outbox = await _outbox(sqlite_store)
    assert [(m.kind, m.recipient) for m in outbox if m.kind == "acknowledgement"] == [
        ("acknowledgement", "alice@acme.example")
    ]


async def test_create_with_an_assignee_notifies_the_agent(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    fields = {"subject": "Phone: VPN", "contact_id": 1, "assigned_agent": "dan@helpdesk.example"}
    response = await api.post(BASE, json=fields)
    assert response.status_code == 201, response.text
    outbox = [(m.kind, m.recipient) for m in await _outbox(sqlite_store)]
    assert ("assigned", "dan@helpdesk.example") in outbox


async def test_create_without_acknowledgement_mails_nothing_to_the_contact(
    api: httpx.AsyncClient, sqlite_store: Store
) -> None:
    response = await api.post(BASE, json={"subject": "Phone: quiet", "contact_id": 1, "acknowledge": False})
    assert response.status_code == 201, response.text
    assert [m for m in await _outbox(sqlite_store) if m.recipient == "alice@acme.example"] == []


async def test_create_failures(api: httpx.AsyncClient) -> None:
    missing = await api.post(BASE, json={"subject": "", "priority": "urgent", "contact_id": 0})
    assert missing.status_code == 422
    assert set(missing.json()["error"]["fields"]) == {"subject", "priority", "contact_id"}
    unknown = await api.post(BASE, json={"subject": "x", "contact_id": 77, "assigned_agent": "nobody@x.example"})
    assert unknown.status_code == 422
    assert set(unknown.json()["error"]["fields"]) == {"contact_id", "assigned_agent"}
    assert (await api.post(BASE, content=b"")).status_code == 400
    other = await api.post("/api/v1/clients", json={"name": "Other"})
    mismatch = await api.post(BASE, json={"subject": "x", "contact_id": 1, "client_id": other.json()["id"]})
    assert mismatch.status_code == 422 and "belongs to client 1" in mismatch.json()["error"]["fields"]["client_id"]
    two_lines = await api.post(BASE, json={"subject": "Printer\r\nBcc: evil@example.com", "contact_id": 1})
    assert two_lines.status_code == 422 and set(two_lines.json()["error"]["fields"]) == {"subject"}


async def test_update_status_priority_assignee(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    ref = await _ingest(sqlite_store)
    response = await api.patch(
        f"{BASE}/{ref}", json={"status": "working", "priority": "low", "assigned_agent": "dan@helpdesk.example"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["priority"], body["assigned_agent"]) == ("working", "low", "dan@helpdesk.example")
    unassigned = await api.patch(f"{BASE}/{ref}", json={"assigned_agent": None})
    assert unassigned.json()["assigned_agent"] is None
    closed = await api.patch(f"{BASE}/{ref}", json={"status": "closed"})
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    conflict = await api.patch(f"{BASE}/{ref}", json={"status": "hold"})
    assert conflict.status_code == 409


async def test_update_failures(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    ref = await _ingest(sqlite_store)
    invalid = await api.patch(f"{BASE}/{ref}", json={"status": "done", "priority": "x", "colour": "red"})
    assert invalid.status_code == 422 and set(invalid.json()["error"]["fields"]) == {"status", "priority", "colour"}
    ghost = await api.patch(f"{BASE}/{ref}", json={"status": "working", "assigned_agent": "ghost@x.example"})
    assert ghost.status_code == 422 and set(ghost.json()["error"]["fields"]) == {"assigned_agent"}
    assert (await api.get(f"{BASE}/{ref}")).json()["status"] == "open"  # nothing changed
    assert (await api.patch(f"{BASE}/TCK-999", json={"status": "open"})).status_code == 404


async def test_reply_is_mailed_and_note_is_not(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    ref = await _ingest(sqlite_store)
    before = len(await _outbox(sqlite_store))
    note = await api.post(f"{BASE}/{ref}/replies", json={"body": "internal only", "private": True})
    assert note.status_code == 201 and note.json()["public"] is False
    assert len(await _outbox(sqlite_store)) == before
    reply = await api.post(f"{BASE}/{ref}/replies", json={"body": "On it.", "agent": "dan@helpdesk.example"})
    assert reply.status_code == 201 and reply.json()["author_email"] == "dan@helpdesk.example"
    assert (note.json()["author_role"], reply.json()["author_role"]) == ("agent", "agent")
    mailed = await _outbox(sqlite_store)
    assert [m.recipient for m in mailed[before:]] == ["alice@acme.example"]
    assert (await api.post(f"{BASE}/{ref}/replies", json={"body": ""})).status_code == 422
    assert (await api.post(f"{BASE}/TCK-999/replies", json={"body": "x"})).status_code == 404
    ghost = await api.post(f"{BASE}/{ref}/replies", json={"body": "x", "agent": "ghost@x.example"})
    assert ghost.status_code == 422 and set(ghost.json()["error"]["fields"]) == {"agent"}


async def test_merge(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    first = await _ingest(sqlite_store, message_id="<a@acme.example>", subject="Printer")
    second = await _ingest(sqlite_store, message_id="<b@acme.example>", subject="Printer again")
    merged = await api.post(f"{BASE}/{second}/merge", json={"into": first})
    assert merged.status_code == 200 and merged.json()["ref"] == first
    inbound = [m["message_id"] for m in merged.json()["messages"] if m["direction"] == "inbound"]
    assert sorted(inbound) == ["a@acme.example", "b@acme.example"]
    source = (await api.get(f"{BASE}/{second}")).json()
    assert source["status"] == "closed" and source["merged_into_id"] == merged.json()["id"]
    assert (await api.post(f"{BASE}/{first}/merge", json={"into": first})).status_code == 422
    for into in ("TCK-999", "not-a-ref"):
        unknown = await api.post(f"{BASE}/{first}/merge", json={"into": into})
        assert unknown.status_code == 422 and set(unknown.json()["error"]["fields"]) == {"into"}, into
    assert (await api.post(f"{BASE}/TCK-999/merge", json={"into": first})).status_code == 404


async def test_list_filters(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    first = await _ingest(sqlite_store, message_id="<a@acme.example>", subject="One")
    second = await _ingest(sqlite_store, message_id="<b@acme.example>", subject="Two")
    await api.patch(f"{BASE}/{second}", json={"status": "hold", "assigned_agent": "dan@helpdesk.example"})
    everything = (await api.get(BASE)).json()
    assert [t["ref"] for t in everything["data"]] == [second, first] and everything["total"] == 2
    held = (await api.get(BASE, params={"status": "hold"})).json()
    assert [t["ref"] for t in held["data"]] == [second]
    assert (await api.get(BASE, params={"assigned_agent_id": 1})).json()["total"] == 1
    assert (await api.get(BASE, params={"client_id": 1, "contact_id": 1})).json()["total"] == 2
    assert (await api.get(BASE, params={"updated_since": "2999-01-01T00:00:00Z"})).json()["total"] == 0
    assert (await api.get(BASE, params={"limit": 1, "offset": 1})).json()["data"][0]["ref"] == first
    assert (await api.get(BASE, params={"status": "done"})).status_code == 422

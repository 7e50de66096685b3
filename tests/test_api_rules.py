"""/api/v1/rules: list, get, create, replace, delete, and the dry run on an uploaded .eml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_support import api_client, make_key
from builders import make_message
from conftest import Store
from sqlalchemy import select

from mailtickets.models import Client, ClientDomain, Contact, InboundMail, RuleChange, Ticket

BASE = "/api/v1/rules"


def _rule(name: str = "invoices", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "conditions": [{"field": "subject", "op": "contains", "value": "invoice"}],
        "actions": [{"action": "set_category", "value": "billing"}],
        **extra,
    }


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store, await make_key(sqlite_store, "ops")) as client:
        yield client


async def test_create_get_list_with_audit(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    created = await api.post(BASE, json=_rule())
    assert created.status_code == 201, created.text
    assert created.json()["position"] == 0 and created.headers["location"] == f"{BASE}/invoices"
    placed = await api.post(BASE, json=_rule("later"), params={"position": 5})
    assert placed.json()["position"] == 5
    assert (await api.get(f"{BASE}/invoices")).json()["conditions"][0]["value"] == "invoice"
    assert [r["name"] for r in (await api.get(BASE)).json()["data"]] == ["invoices", "later"]
    async with sqlite_store.sessions() as session:
        actors = set(await session.scalars(select(RuleChange.actor)))
    assert actors == {"api:ops"}


async def test_create_failures(api: httpx.AsyncClient) -> None:
    invalid = await api.post(BASE, json={"name": "bad", "conditions": [{"field": "colour", "op": "is", "value": 1}]})
    assert invalid.status_code == 422 and invalid.json()["error"]["fields"]
    await api.post(BASE, json=_rule())
    assert (await api.post(BASE, json=_rule())).status_code == 409
    assert (await api.post(BASE, content=b"")).status_code == 400


async def test_replace_and_delete(api: httpx.AsyncClient) -> None:
    await api.post(BASE, json=_rule())
    replaced = await api.put(f"{BASE}/invoices", json=_rule("invoices-renamed", enabled=False))
    assert replaced.status_code == 200 and replaced.json()["enabled"] is False
    assert (await api.get(f"{BASE}/invoices")).status_code == 404
    assert (await api.put(f"{BASE}/nope", json=_rule("nope"))).status_code == 404
    assert (await api.delete(f"{BASE}/invoices-renamed")).status_code == 204
    assert (await api.delete(f"{BASE}/invoices-renamed")).status_code == 404


async def test_dry_run_on_uploaded_eml(api: httpx.AsyncClient) -> None:
    await api.post(BASE, json=_rule())
    raw = make_message(subject="Your invoice 42")
    response = await api.post(f"{BASE}/dry-run", content=raw, headers={"content-type": "message/rfc822"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["result"]["category"] == "billing" and report["result"]["matched_rules"] == ["invoices"]
    assert report["message"]["subject"] == "Your invoice 42"


async def test_dry_run_failures(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    empty = await api.post(f"{BASE}/dry-run", content=b"", headers={"content-type": "message/rfc822"})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "nothing_sent"
    sqlite_store.settings.max_message_bytes = 1000
    big = make_message(body="x" * 2000)
    too_big = await api.post(f"{BASE}/dry-run", content=big, headers={"content-type": "message/rfc822"})
    assert too_big.status_code == 422 and set(too_big.json()["error"]["fields"]) == {"body"}


async def test_dry_run_writes_nothing(api: httpx.AsyncClient, sqlite_store: Store) -> None:
    async with sqlite_store.sessions() as session, session.begin():
        session.add(Client(name="Acme", domains=[ClientDomain(domain="acme.example")]))
    raw = make_message(sender="Bob New <bob@acme.example>", subject="Your invoice 42")
    response = await api.post(f"{BASE}/dry-run", content=raw, headers={"content-type": "message/rfc822"})
    assert response.status_code == 200, response.text
    assert response.json()["message"]["client"] == "Acme"
    async with sqlite_store.sessions() as session:
        for model in (Contact, Ticket, InboundMail):
            assert list(await session.scalars(select(model))) == [], model.__name__

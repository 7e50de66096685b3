"""/api/v1/clients (with domains) and /api/v1/agents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_support import api_client, make_key
from conftest import Store


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def test_create_list_get_client(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/clients", json={"name": "Acme", "domains": ["ACME.example", "bücher.de"]})
    assert created.status_code == 201
    body = created.json()
    assert body["domains"] == ["acme.example", "xn--bcher-kva.de"]
    assert (await api.get(f"/api/v1/clients/{body['id']}")).json()["name"] == "Acme"
    assert [c["name"] for c in (await api.get("/api/v1/clients")).json()["data"]] == ["Acme"]
    assert (await api.get("/api/v1/clients/999")).status_code == 404


async def test_domain_belongs_to_one_client_409(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/clients", json={"name": "Acme", "domains": ["acme.example"]})
    response = await api.post("/api/v1/clients", json={"name": "Other", "domains": ["acme.example"]})
    assert response.status_code == 409 and "Acme" in response.json()["error"]["message"]
    assert response.json()["error"]["fields"] == {"domains": "acme.example is taken"}
    duplicate_name = await api.post("/api/v1/clients", json={"name": "Acme"})
    assert duplicate_name.status_code == 409


async def test_client_validation(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/clients", json={"name": "", "domains": "acme.example", "x": 1})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"name", "domains", "x"}
    bad_domain = await api.post("/api/v1/clients", json={"name": "A", "domains": ["not a domain"]})
    assert bad_domain.status_code == 422 and "domains" in bad_domain.json()["error"]["fields"]
    assert (await api.post("/api/v1/clients", content=b"")).status_code == 400
    two_lines = await api.post("/api/v1/clients", json={"name": "Acme\nCorp"})
    assert two_lines.status_code == 422 and set(two_lines.json()["error"]["fields"]) == {"name"}


async def test_add_and_remove_domain(api: httpx.AsyncClient) -> None:
    acme = (await api.post("/api/v1/clients", json={"name": "Acme"})).json()
    other = (await api.post("/api/v1/clients", json={"name": "Other"})).json()
    added = await api.post(f"/api/v1/clients/{acme['id']}/domains", json={"domain": "Acme.org"})
    assert added.status_code == 201 and added.json()["domains"] == ["acme.org"]
    clash = await api.post(f"/api/v1/clients/{other['id']}/domains", json={"domain": "acme.org"})
    assert clash.status_code == 409
    missing = await api.post("/api/v1/clients/999/domains", json={"domain": "x.org"})
    assert missing.status_code == 404
    assert (await api.delete(f"/api/v1/clients/{acme['id']}/domains/acme.org")).status_code == 204
    assert (await api.delete(f"/api/v1/clients/{acme['id']}/domains/acme.org")).status_code == 404


async def test_agents(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/agents", json={"name": "Dan", "email": "dan@helpdesk.example"})
    assert created.status_code == 201 and created.json()["email"] == "dan@helpdesk.example"
    assert (await api.post("/api/v1/agents", json={"name": "D2", "email": "DAN@helpdesk.example"})).status_code == 409
    invalid = await api.post("/api/v1/agents", json={"name": "", "email": "nope"})
    assert invalid.status_code == 422 and set(invalid.json()["error"]["fields"]) == {"name", "email"}
    two_lines = await api.post("/api/v1/agents", json={"name": "Dan\r\nAgent", "email": "dan2@helpdesk.example"})
    assert two_lines.status_code == 422 and set(two_lines.json()["error"]["fields"]) == {"name"}
    assert [a["name"] for a in (await api.get("/api/v1/agents")).json()["data"]] == ["Dan"]


async def test_patch_deactivates_and_reactivates_a_client_and_the_list_filters(api: httpx.AsyncClient) -> None:
    acme = (await api.post("/api/v1/clients", json={"name": "Acme", "domains": ["acme.example"]})).json()
    other = (await api.post("/api/v1/clients", json={"name": "Other"})).json()
    assert acme["active"] is True
    off = await api.patch(f"/api/v1/clients/{acme['id']}", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False and off.json()["domains"] == ["acme.example"]
    inactive = (await api.get("/api/v1/clients", params={"active": "false"})).json()
    assert [c["name"] for c in inactive["data"]] == ["Acme"] and inactive["total"] == 1
    active = (await api.get("/api/v1/clients", params={"active": "true"})).json()
    assert [c["name"] for c in active["data"]] == ["Other"] and active["total"] == 1
    assert (await api.get("/api/v1/clients")).json()["total"] == 2
    on = await api.patch(f"/api/v1/clients/{acme['id']}", json={"active": True, "notes": "back"})
    assert on.json()["active"] is True and on.json()["notes"] == "back" and on.json()["name"] == "Acme"
    assert (await api.get(f"/api/v1/clients/{acme['id']}")).json()["active"] is True
    assert other["active"] is True


async def test_patch_changes_only_what_it_is_given(api: httpx.AsyncClient) -> None:
    acme = (await api.post("/api/v1/clients", json={"name": "Acme"})).json()
    await api.post("/api/v1/clients", json={"name": "Globex"})
    renamed = await api.patch(f"/api/v1/clients/{acme['id']}", json={"name": "Acme Corp", "notes": "VIP"})
    assert (renamed.json()["name"], renamed.json()["notes"], renamed.json()["active"]) == ("Acme Corp", "VIP", True)
    cleared = await api.patch(f"/api/v1/clients/{acme['id']}", json={"notes": None})
    assert (cleared.json()["name"], cleared.json()["notes"]) == ("Acme Corp", None)
    refused = await api.patch(f"/api/v1/clients/{acme['id']}", json={"active": None, "name": None, "x": 1})
    assert refused.status_code == 422 and set(refused.json()["error"]["fields"]) == {"active", "name", "x"}
    assert (await api.patch(f"/api/v1/clients/{acme['id']}", json={"name": "Globex"})).status_code == 409
    assert (await api.patch("/api/v1/clients/999", json={"active": False})).status_code == 404

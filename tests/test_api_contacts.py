"""/api/v1/contacts: every endpoint's success and failure paths, and the field rules over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_support import api_client, make_key
from conftest import Store
from sqlalchemy import update

from mailtickets.models import Client, Contact, Ticket

BASE = "/api/v1/contacts"


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(store, await make_key(store)) as client:
        yield client


async def _client_id(store: Store, name: str = "Acme") -> int:
    async with store.sessions() as session, session.begin():
        client = Client(name=name)
        session.add(client)
        await session.flush()
        return client.id


async def _create(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post(BASE, json={"name": "Sally", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_201_with_id_and_location(api: httpx.AsyncClient, store: Store) -> None:
    client_id = await _client_id(store)
    response = await api.post(
        BASE, json={"name": "Sally", "email": "sally@acme.example", "client_id": client_id, "important": True}
    )
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["id"], int) and body["client"] == "Acme" and body["important"] is True
    assert response.headers["location"] == f"{BASE}/{body['id']}"


async def test_get_by_id_and_unknown_id(api: httpx.AsyncClient) -> None:
    created = await _create(api, email="sally@example.com")
    assert (await api.get(f"{BASE}/{created['id']}")).json()["email"] == "sally@example.com"
    missing = await api.get(f"{BASE}/987654")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = await api.get(f"{BASE}/abc")
    assert bad.status_code == 422 and "contact_id" in bad.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "x" * 65),
        ("name", ""),
        ("email", "not-an-address"),
        ("email", "a" * 64 + "@" + "b" * 126 + ".ex"),
        ("phone", "1" * 33),
        ("extension", "1" * 33),
        ("mobile", "1" * 33),
        ("department", "d" * 65),
        ("title", "t" * 65),
        ("auth_method", "ldap"),
        ("important", "maybe"),
        ("billing", [1]),
        ("technical", {"a": 1}),
        ("name", 42),
        ("client_id", "one"),
        ("colour", "red"),
        ("name", "Alice\r\nBcc: evil@example.com"),
        ("title", "Head\nof IT"),
        ("phone", "555\x0b0100"),
        ("department", "IT\u2028Ops"),
    ],
)
async def test_each_rule_gives_422_naming_the_field(api: httpx.AsyncClient, field: str, value: Any) -> None:
    response = await api.post(BASE, json={"name": "Valid", field: value})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and list(error["fields"]) == [field]


async def test_every_limit_is_accepted_at_its_maximum(api: httpx.AsyncClient) -> None:
    at_limit = {
        "name": "n" * 64,
        "email": "a" * 64 + "@" + "b" * 62 + "." + "c" * 59 + ".com",  # 191 characters
        "phone": "1" * 32,
        "extension": "2" * 32,
        "mobile": "3" * 32,
        "department": "d" * 64,
        "title": "t" * 64,
        "auth_method": "sso",
        "important": True,
        "billing": True,
        "technical": True,
    }
    assert len(at_limit["email"]) == 191
    body = await _create(api, **at_limit)
    assert {field: body[field] for field in at_limit} == at_limit


async def test_notes_may_span_lines_and_names_may_hold_tabs_and_accents(api: httpx.AsyncClient) -> None:
    body = await _create(api, name="Zoë\tMüller", notes="line one\nline two")
    assert (body["name"], body["notes"]) == ("Zoë\tMüller", "line one\nline two")


async def test_422_lists_every_failing_field(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"email": "x", "phone": "1" * 40, "auth_method": "?", "client_id": 999})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"name", "email", "phone", "auth_method", "client_id"}


async def test_client_id_as_itflow_sends_it(api: httpx.AsyncClient, store: Store) -> None:
    acme = await _client_id(store)
    assert (await _create(api, client_id=str(acme)))["client"] == "Acme"
    for value in ("999", 999.0):
        response = await api.post(BASE, json={"name": "A", "client_id": value})
        assert response.status_code == 422, value
        assert response.json()["error"]["fields"] == {"client_id": "no client with id 999"}


async def test_mobile_e164_when_the_setting_asks(store: Store) -> None:
    store.settings.contact_mobile_e164 = True
    async with api_client(store, await make_key(store)) as api:
        bad = await api.post(BASE, json={"name": "A", "mobile": "+61 411 112 233"})
        good = await api.post(BASE, json={"name": "A", "mobile": "+61411112233"})
        patched = await api.patch(f"{BASE}/{good.json()['id']}", json={"mobile": "0411 112 233"})
        upserted = await api.put(f"{BASE}/external/crm-1", json={"name": "B", "mobile": "+61-411-112-233"})
    assert bad.status_code == 422 and "E.164" in bad.json()["error"]["fields"]["mobile"]
    assert good.status_code == 201
    assert [r.status_code for r in (patched, upserted)] == [422, 422]
    assert "mobile" in patched.json()["error"]["fields"] and "mobile" in upserted.json()["error"]["fields"]


async def test_mobile_is_free_form_without_the_setting(api: httpx.AsyncClient) -> None:
    assert (await _create(api, mobile="0411 112 233"))["mobile"] == "0411 112 233"


async def test_duplicate_email_is_409_naming_the_clash(api: httpx.AsyncClient) -> None:
    first = await _create(api, email="sally@example.com")
    response = await api.post(BASE, json={"name": "Other", "email": "SALLY@example.com"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and error["fields"] == {"email": "taken"}
    assert f"contact {first['id']}" in error["message"]


async def test_email_clash_on_patch_and_put_is_409(api: httpx.AsyncClient) -> None:
    first = await _create(api, email="sally@example.com")
    second = await _create(api, name="Tim", email="tim@example.com")
    patched = await api.patch(f"{BASE}/{second['id']}", json={"email": "Sally@Example.com"})
    upserted = await api.put(f"{BASE}/external/crm-9", json={"name": "Sal", "email": "SALLY@example.com"})
    for response in (patched, upserted):
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["fields"] == {"email": "taken"} and f"contact {first['id']}" in error["message"]
    own = await api.patch(f"{BASE}/{first['id']}", json={"email": "SALLY@example.com"})
    assert own.status_code == 200


async def test_empty_body_is_400_nothing_sent(api: httpx.AsyncClient) -> None:
    for content in (b"", b"  ", b"{}"):
        response = await api.post(BASE, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"] == {"code": "nothing_sent", "message": "nothing sent", "fields": {}}


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, content=b'{"name": ', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


async def test_non_object_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json=["name"])
    assert response.status_code == 422 and response.json()["error"]["fields"] == {"body": "must be a JSON object"}


async def test_patch_value_null_omitted(api: httpx.AsyncClient) -> None:
    created = await _create(api, email="tim@example.com", title="Boss", mobile="+61411112233")
    response = await api.patch(f"{BASE}/{created['id']}", json={"mobile": "+61444111222", "title": None})
    assert response.status_code == 200
    body = response.json()
    assert (body["mobile"], body["title"], body["email"], body["name"]) == (
        "+61444111222",
        None,
        "tim@example.com",
        "Sally",
    )


async def test_patch_failures(api: httpx.AsyncClient) -> None:
    created = await _create(api)
    assert (await api.patch(f"{BASE}/{created['id']}", json={"name": None})).status_code == 422
    empty = await api.patch(f"{BASE}/{created['id']}", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 400
    assert (await api.patch(f"{BASE}/424242", json={"name": "x"})).status_code == 404


async def test_put_external_creates_201_then_updates_200(api: httpx.AsyncClient) -> None:
    url = f"{BASE}/external/80a45geb4faec211"
    created = await api.put(url, json={"name": "Ajay Patel", "email": "ajay@example.com"})
    assert created.status_code == 201 and created.json()["external_id"] == "80a45geb4faec211"
    updated = await api.put(url, json={"title": "CTO", "email": None})
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert (updated.json()["title"], updated.json()["email"], updated.json()["name"]) == ("CTO", None, "Ajay Patel")
    assert (await api.get(url)).json()["id"] == created.json()["id"]


async def test_put_external_failures(api: httpx.AsyncClient) -> None:
    missing_name = await api.put(f"{BASE}/external/x1", json={"email": "a@example.com"})
    assert missing_name.status_code == 422 and missing_name.json()["error"]["fields"] == {"name": "required"}
    other_id = await api.put(f"{BASE}/external/x1", json={"name": "A", "external_id": "x2"})
    assert other_id.status_code == 422 and set(other_id.json()["error"]["fields"]) == {"external_id"}
    empty = await api.put(f"{BASE}/external/x1", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "nothing_sent"
    assert (await api.get(f"{BASE}/external/nobody")).status_code == 404


async def test_delete_204_then_404(api: httpx.AsyncClient) -> None:
    created = await _create(api)
    response = await api.delete(f"{BASE}/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await api.delete(f"{BASE}/{created['id']}")).status_code == 404


async def test_delete_by_external_id(api: httpx.AsyncClient) -> None:
    url = f"{BASE}/external/crm-7"
    await api.put(url, json={"name": "Gone Soon"})
    assert (await api.delete(url)).status_code == 204
    assert (await api.delete(url)).status_code == 404


async def test_delete_referenced_contact_is_409(api: httpx.AsyncClient, store: Store) -> None:
    created = await _create(api)
    async with store.sessions() as session, session.begin():
        session.add(Ticket(prefix="TCK-", number=41, subject="help", contact_id=created["id"]))
    response = await api.delete(f"{BASE}/{created['id']}")
    assert response.status_code == 409 and "TCK-41" in response.json()["error"]["message"]
    deactivated = await api.patch(f"{BASE}/{created['id']}", json={"active": False})
    assert deactivated.json()["active"] is False


async def test_list_filters_and_pagination(api: httpx.AsyncClient, store: Store) -> None:
    acme = await _client_id(store)
    a = await _create(api, name="A", phone="15550100000", client_id=acme)
    b = await _create(api, name="B", mobile="+1 555 010 0000", email="b@example.com")
    await _create(api, name="C", phone="15550100009", client_id=acme)
    by_phone = (await api.get(BASE, params={"phone_or_mobile": "+1 (555) 010-0000"})).json()
    assert [c["id"] for c in by_phone["data"]] == [a["id"], b["id"]] and by_phone["total"] == 2
    by_email = (await api.get(BASE, params={"email": "B@EXAMPLE.com"})).json()
    assert [c["id"] for c in by_email["data"]] == [b["id"]]
    page = (await api.get(BASE, params={"client_id": acme, "limit": 1, "offset": 1})).json()
    assert [c["name"] for c in page["data"]] == ["C"] and page["total"] == 2
    since = (await api.get(BASE, params={"updated_since": "2000-01-01T00:00:00"})).json()
    assert since["total"] == 3
    future = (await api.get(BASE, params={"updated_since": "2999-01-01T00:00:00Z"})).json()
    assert future["total"] == 0


async def test_updated_since_finds_contacts_changed_by_patch_and_put(api: httpx.AsyncClient, store: Store) -> None:
    still = await _create(api, name="Still")
    patched = await _create(api, name="Patched")
    await api.put(f"{BASE}/external/crm-5", json={"name": "Upserted"})
    async with store.sessions() as session, session.begin():
        await session.execute(update(Contact).values(updated_at=datetime(2020, 1, 1, tzinfo=UTC)))
    assert (await api.patch(f"{BASE}/{patched['id']}", json={"title": "CTO"})).status_code == 200
    assert (await api.put(f"{BASE}/external/crm-5", json={"title": "CFO"})).status_code == 200
    changed = (await api.get(BASE, params={"updated_since": "2021-01-01T00:00:00Z"})).json()
    assert [c["name"] for c in changed["data"]] == ["Patched", "Upserted"]
    assert still["id"] not in [c["id"] for c in changed["data"]]


async def test_list_bad_filters_are_422(api: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 10_000}, {"updated_since": "yesterday"}, {"phone_or_mobile": "abc"}):
        response = await api.get(BASE, params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["fields"]


async def test_nul_characters_are_refused_everywhere(api: httpx.AsyncClient) -> None:
    body = await api.post(BASE, json={"name": "A\u0000B"})
    query = await api.get(BASE, params={"email": "a\u0000@example.com"})
    path = await api.get(f"{BASE}/external/x%00y")
    assert [r.status_code for r in (body, query, path)] == [422, 422, 422]

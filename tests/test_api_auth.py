"""API-key authentication: Bearer, HTTP Basic name:KEY, X-API-Key; 401/403 in the JSON error shape."""

from __future__ import annotations

import asyncio
import base64
import logging
import re

import pytest
from api_support import api_client, make_key
from builders import make_message
from click.testing import CliRunner
from conftest import Store

from mailtickets.api import create_app
from mailtickets.api.keys import revoke_api_key
from mailtickets.cli import main
from mailtickets.errors import InvalidInput

URL = "/api/v1/contacts"
# Issue 5: no endpoint but a health check answers without a key (liveness and readiness).
PUBLIC = {"/healthz", "/readyz"}


def _basic(name: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{key}".encode()).decode()


async def test_healthz_needs_no_key(sqlite_store: Store) -> None:
    async with api_client(sqlite_store) as api:
        response = await api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_every_api_endpoint_needs_a_key(sqlite_store: Store) -> None:
    async with api_client(sqlite_store) as api:
        for method, url in [("GET", URL), ("GET", "/api/v1/clients"), ("POST", URL), ("DELETE", f"{URL}/1")]:
            response = await api.request(method, url)
            assert response.status_code == 401, url
            assert response.json()["error"]["code"] == "unauthorized"
            assert "Bearer" in response.headers["www-authenticate"]


async def test_every_route_but_the_public_ones_needs_a_key(sqlite_store: Store) -> None:
    paths = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock).openapi()["paths"]
    assert set(paths) > PUBLIC and len(paths) > 20
    async with api_client(sqlite_store) as api:
        for template in set(paths) - PUBLIC:
            path = re.sub(r"\{[^}]+\}", "1", template)
            for method in paths[template]:
                response = await api.request(method.upper(), path, json={"name": "A"})
                assert response.status_code == 401, (method, template)
                assert response.json()["error"]["code"] == "unauthorized"


def test_openapi_document_declares_the_three_ways_to_present_a_key(sqlite_store: Store) -> None:
    document = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock).openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["basic"]["scheme"] == "basic"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            expected = None if path in PUBLIC else [{"bearer": []}, {"basic": []}, {"apiKey": []}]
            assert operation.get("security") == expected, (method, path)


async def test_no_key_is_401_before_any_validation(sqlite_store: Store) -> None:
    async with api_client(sqlite_store) as api:
        for response in (
            await api.get(URL, params={"email": "a\u0000@example.com"}),
            await api.get(f"{URL}/external/x%00y"),
            await api.get(f"{URL}/not-a-number"),
            await api.get(URL, params={"limit": 0}),
            await api.post(URL, content=b'{"name": '),
            await api.post(URL, content=b""),
        ):
            assert response.status_code == 401, response.request.url
            assert response.json()["error"]["code"] == "unauthorized"


async def test_three_ways_to_present_a_key(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, "psa-sync")
    async with api_client(sqlite_store) as api:
        for headers in (
            {"Authorization": f"Bearer {key}"},
            {"Authorization": _basic("psa-sync", key)},
            {"X-API-Key": key},
        ):
            assert (await api.get(URL, headers=headers)).status_code == 200, headers


async def test_wrong_keys_are_401(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, "psa-sync")
    async with api_client(sqlite_store) as api:
        for headers in (
            {"Authorization": f"Bearer {key}x"},
            {"Authorization": _basic("someone-else", key)},
            {"Authorization": "Basic !!not-base64"},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            {"X-API-Key": "mtk_guess"},
            {"Authorization": "Token " + key},
        ):
            response = await api.get(URL, headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "unauthorized"


async def test_revoked_key_is_401(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, "old")
    async with sqlite_store.sessions() as session, session.begin():
        assert await revoke_api_key(session, "old")
    async with api_client(sqlite_store, key) as api:
        assert (await api.get(URL)).status_code == 401


async def test_read_only_key_reads_but_cannot_write(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, "dashboard", read_only=True)
    async with api_client(sqlite_store, key) as api:
        assert (await api.get(URL)).status_code == 200
        for method in ("POST", "PATCH", "PUT", "DELETE"):
            response = await api.request(method, f"{URL}/external/x" if method == "PUT" else URL, json={"name": "A"})
            assert response.status_code in (403, 405), method
            if response.status_code == 403:
                assert response.json()["error"]["code"] == "forbidden"
        assert (await api.post(URL, json={"name": "A"})).status_code == 403


async def test_read_only_key_may_dry_run_rules_but_not_change_them(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store, "dashboard", read_only=True)
    raw = make_message(subject="Your invoice 42")
    async with api_client(sqlite_store, key) as api:
        dry_run = await api.post("/api/v1/rules/dry-run", content=raw, headers={"content-type": "message/rfc822"})
        create = await api.post("/api/v1/rules", json={"name": "x"})
    assert dry_run.status_code == 200, dry_run.text
    assert create.status_code == 403 and create.json()["error"]["code"] == "forbidden"


async def test_keys_from_apikey_create_work_over_http(sqlite_store: Store) -> None:
    env = {"MAILTICKETS_DATABASE_URL": sqlite_store.settings.database_url}
    runner = CliRunner()
    keys = {}
    for name, flags in (("sync", []), ("wallboard", ["--read-only"])):
        result = await asyncio.to_thread(runner.invoke, main, ["apikey", "create", "--name", name, *flags], env=env)
        assert result.exit_code == 0, result.output
        keys[name] = result.output.strip().splitlines()[-1]
    async with api_client(sqlite_store) as api:
        for name, key in keys.items():
            basic = {"Authorization": _basic(name, key)}
            assert (await api.get(URL, headers=basic)).status_code == 200, name
        writes = {
            name: await api.post(URL, json={"name": "A"}, headers={"X-API-Key": key}) for name, key in keys.items()
        }
    assert (writes["sync"].status_code, writes["wallboard"].status_code) == (201, 403)


async def test_key_names_hold_no_colon_as_basic_could_not_carry_them(sqlite_store: Store) -> None:
    with pytest.raises(InvalidInput) as caught:
        await make_key(sqlite_store, "portal:ABC123")
    assert set(caught.value.fields) == {"name"}


async def test_key_is_stored_hashed_and_never_logged(sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = await make_key(sqlite_store, "secret-holder")
    async with api_client(sqlite_store, key) as api:
        await api.get(URL)
        await api.get(URL, headers={"Authorization": "Bearer wrong"})
    async with sqlite_store.sessions() as session:
        from sqlalchemy import select

        from mailtickets.models import ApiKey

        stored = await session.scalar(select(ApiKey.key_hash).where(ApiKey.name == "secret-holder"))
    assert stored is not None and key not in stored and len(stored) == 64
    assert key not in caplog.text


async def test_unknown_route_and_method_use_the_error_shape(sqlite_store: Store) -> None:
    key = await make_key(sqlite_store)
    async with api_client(sqlite_store, key) as api:
        missing = await api.get("/api/v1/nothing-here")
        wrong_method = await api.post("/api/v1/agents/1")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code in (404, 405) and "error" in wrong_method.json()


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs", "/metrics"])
async def test_the_document_its_docs_and_the_metrics_need_a_key(sqlite_store: Store, path: str) -> None:
    key = await make_key(sqlite_store, read_only=True)
    async with api_client(sqlite_store) as anonymous:
        refused = await anonymous.get(path)
        allowed = await anonymous.get(path, headers={"Authorization": _basic("tester", key)})
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]  # a browser asks
    assert allowed.status_code == 200, allowed.text

"""Console sign-in: cookie flags, wrong passwords and their rate limit, CSRF, roles, sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from conftest import Store
from console_support import PASSWORD, csrf_of, make_agent, page_csrf, sign_in
from sqlalchemy import select

from mailtickets.api import create_app
from mailtickets.db import create_engine, session_factory
from mailtickets.directory.accounts import set_password
from mailtickets.models import AgentRole, LoginFailure


@pytest.fixture
async def client(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await make_agent(sqlite_store, "ann@support.example", AgentRole.ADMIN)
    await make_agent(sqlite_store, "bo@support.example", AgentRole.AGENT)
    app = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_sign_in_sets_a_strict_session_cookie_and_opens_the_trace(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/trace")).headers["location"].startswith("/admin/login?next=%2Fadmin%2Ftrace")
    response = await sign_in(client, "ANN@support.example")
    assert response.status_code == 303 and response.headers["location"] == "/admin/trace"
    cookie = response.headers["set-cookie"]
    assert "mt_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie
    page = await client.get("/admin/trace")
    assert page.status_code == 200 and "Ann" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_cookie_is_secure_when_the_public_url_is_https(sqlite_store: Store, client: httpx.AsyncClient) -> None:
    sqlite_store.settings.public_url = "https://helpdesk.example"
    over_http = await sign_in(client, "ann@support.example")
    assert over_http.status_code == 403, "a Secure sign-in cookie never comes back over plain HTTP"
    client.base_url = httpx.URL("https://testserver")
    response = await sign_in(client, "ann@support.example")
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


async def test_wrong_password_refused_then_rate_limited_per_account(
    sqlite_store: Store, client: httpx.AsyncClient
) -> None:
    for _ in range(sqlite_store.settings.console_login_failures_per_account):
        refused = await sign_in(client, "ann@support.example", "wrong password!")
        assert refused.status_code == 401 and "Wrong email address or password" in refused.text
    limited = await sign_in(client, "ann@support.example", PASSWORD)  # even the right one, for now
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert (await sign_in(client, "bo@support.example")).status_code == 303, "another account is not locked"
    sqlite_store.clock.advance(timedelta(minutes=sqlite_store.settings.console_login_window_minutes))
    assert (await sign_in(client, "ann@support.example")).status_code == 303


async def test_rate_limited_per_address_whatever_the_account(sqlite_store: Store, client: httpx.AsyncClient) -> None:
    sqlite_store.settings.console_login_failures_per_address = 3
    client_app = create_app(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)
    transport = httpx.ASGITransport(app=client_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as fresh:
        for n in range(3):
            assert (await sign_in(fresh, f"nobody{n}@support.example", "x")).status_code == 401
        assert (await sign_in(fresh, "bo@support.example")).status_code == 429


async def test_a_form_without_its_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ann@support.example")
    data = {"name": "Acme", "domains": "acme.example"}
    assert (await client.post("/admin/clients", data=data)).status_code == 403
    assert (await client.post("/admin/clients", data={**data, "csrf": "forged"})).status_code == 403
    created = await client.post("/admin/clients", data={**data, "csrf": await page_csrf(client)})
    assert created.status_code == 303
    login = await client.get("/admin/login")
    no_token = await client.post("/admin/login", data={"email": "ann@support.example", "password": PASSWORD})
    assert login.status_code == 200 and no_token.status_code == 403


async def test_an_agent_may_work_but_not_edit_rules_or_the_directory(client: httpx.AsyncClient) -> None:
    await sign_in(client, "bo@support.example")
    assert (await client.get("/admin/rules")).status_code == 200
    editor = await client.get("/admin/rules/new")
    assert editor.status_code == 403 and "Only an admin" in editor.text
    csrf = await page_csrf(client)
    rule = {"csrf": csrf, "name": "x", "enabled": "on", "a0_action": "set_category", "a0_value": "y"}
    assert (await client.post("/admin/rules/new", data=rule)).status_code == 403
    assert (await client.post("/admin/clients", data={"csrf": csrf, "name": "Acme"})).status_code == 403
    assert (await client.post("/admin/clients/1/active", data={"csrf": csrf, "active": "false"})).status_code == 403
    assert (await client.get("/admin/agents")).status_code == 403
    assert (await client.get("/admin/tickets")).status_code == 200


async def test_sign_out_ends_the_session_on_the_server(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ann@support.example")
    stolen = client.cookies.get("mt_session")
    out = await client.post("/admin/logout", data={"csrf": await page_csrf(client)})
    assert out.status_code == 303
    client.cookies.set("mt_session", stolen or "", path="/admin")
    assert (await client.get("/admin/trace")).status_code == 303, "the old cookie must no longer work"


async def test_next_never_leaves_the_console(client: httpx.AsyncClient) -> None:
    form = await client.get("/admin/login", params={"next": "//evil.example/x"})
    data = {"csrf": csrf_of(form.text), "email": "ann@support.example", "password": PASSWORD, "next": "//evil.example"}
    assert (await client.post("/admin/login", data=data)).headers["location"] == "/admin/trace"


async def test_a_new_password_ends_the_sessions_and_no_password_is_logged(
    sqlite_store: Store, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await sign_in(client, "ann@support.example")
    await sign_in(client, "bo@support.example", "my secret guess")
    assert (await client.get("/admin/trace")).status_code == 200
    async with sqlite_store.sessions() as session, session.begin():
        await set_password(session, "ann@support.example", "a brand new password")
    assert (await client.get("/admin/trace")).status_code == 303
    assert "console sign-in: ann@support.example" in caplog.text and "sign-in failed" in caplog.text
    assert PASSWORD not in caplog.text and "my secret guess" not in caplog.text


async def test_an_agent_changes_their_own_password(client: httpx.AsyncClient) -> None:
    await sign_in(client, "bo@support.example")
    csrf = await page_csrf(client, "/admin/account")
    wrong = {"csrf": csrf, "current": "not it at all", "password": "a new password!", "again": "a new password!"}
    assert (await client.post("/admin/account/password", data=wrong)).status_code == 422
    differ = {**wrong, "current": PASSWORD, "again": "another password"}
    assert "differ" in (await client.post("/admin/account/password", data=differ)).text
    changed = await client.post("/admin/account/password", data={**differ, "again": "a new password!"})
    assert changed.status_code == 303 and changed.headers["location"] == "/admin/login"
    assert (await client.get("/admin/trace")).status_code == 303, "the session ended with the old password"
    assert (await sign_in(client, "bo@support.example")).status_code == 401
    assert (await sign_in(client, "bo@support.example", "a new password!")).status_code == 303


async def test_two_instances_on_one_database_share_the_limit(store: Store) -> None:
    """Two apps, each with its own engine on the same database (the multi-instance path): the failures
    one of them counted lock the account on the other, and a success on either clears the account."""
    await make_agent(store, "ann@support.example", AgentRole.ADMIN)
    store.settings.console_login_failures_per_account = 3
    other_engine = create_engine(store.settings.database_url)
    apps = [
        create_app(store.settings, store.sessions, store.clock),
        create_app(store.settings, session_factory(other_engine), store.clock),
    ]
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://one") as one,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://two") as two,
        ):
            assert (await sign_in(one, "ann@support.example", "wrong")).status_code == 401
            assert (await sign_in(two, "ann@support.example", "wrong")).status_code == 401
            assert (await sign_in(one, "ann@support.example")).status_code == 303  # 2 of 3: still allowed
            for client in (two, one, two):  # the success cleared the account's count
                assert (await sign_in(client, "ann@support.example", "wrong")).status_code == 401
            limited = await sign_in(one, "ann@support.example")
            assert limited.status_code == 429 and "Try again in 15 minutes" in limited.text
            assert (await sign_in(two, "ann@support.example")).status_code == 429
            store.clock.advance(timedelta(minutes=store.settings.console_login_window_minutes))
            assert (await sign_in(two, "ann@support.example")).status_code == 303
    finally:
        await other_engine.dispose()


async def test_old_failures_are_forgotten_as_new_ones_come(sqlite_store: Store, client: httpx.AsyncClient) -> None:
    await sign_in(client, "nobody@support.example", "x")
    sqlite_store.clock.advance(timedelta(minutes=sqlite_store.settings.console_login_window_minutes, seconds=1))
    await sign_in(client, "someone@support.example", "x")
    async with sqlite_store.sessions() as session:
        keys = sorted(await session.scalars(select(LoginFailure.key)))
    assert keys == ["127.0.0.1", "someone@support.example"]

"""Shared by the console tests: agents with passwords, and signing in through the real form."""

from __future__ import annotations

import re

import httpx
from conftest import Store

from mailtickets.directory.accounts import set_password
from mailtickets.directory.agents import create_agent
from mailtickets.models import AgentRole

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def make_agent(store: Store, email: str, role: AgentRole, password: str = PASSWORD) -> None:
    async with store.sessions() as session, session.begin():
        await create_agent(session, email.partition("@")[0].title(), email, role)
        await set_password(session, email, password)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/admin/login")
    data = {"csrf": csrf_of(form.text), "email": email, "password": password, "next": "/admin/trace"}
    return await client.post("/admin/login", data=data)


async def page_csrf(client: httpx.AsyncClient, path: str = "/admin/trace") -> str:
    return csrf_of((await client.get(path)).text)

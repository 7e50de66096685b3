"""The API's bounds: request bodies over api_max_body_bytes get 413, and no value it accepts ends in a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_support import api_client, make_key
from conftest import Store
from sqlalchemy import select

from mailtickets.models import Client, ClientDomain, Contact, OutboxMail, OutboxState
from tests.hostile_mail import ENCODED_WORD_LOOKALIKE

LIMIT = 10_000


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    sqlite_store.settings = sqlite_store.settings.model_copy(update={"api_max_body_bytes": LIMIT})
    async with sqlite_store.sessions() as session, session.begin():
        acme = Client(name="Acme", domains=[ClientDomain(domain="acme.example")])
        session.add(acme)
        await session.flush()
        session.add(Contact(name="Alice " + ENCODED_WORD_LOOKALIKE, email="alice@acme.example", client_id=acme.id))
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def test_a_declared_body_over_the_limit_gets_413_unread(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/tickets", json={"subject": "x" * LIMIT, "contact_id": 1})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_a_streamed_body_growing_past_the_limit_gets_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 1000

    response = await api.post("/api/v1/rules/dry-run", content=chunks(), headers={"Content-Type": "message/rfc822"})
    assert response.status_code == 413, response.text


async def test_a_subject_the_mail_builder_once_choked_on_is_a_ticket_not_a_500(
    api: httpx.AsyncClient, sqlite_store: Store
) -> None:
    subject = ENCODED_WORD_LOOKALIKE + " ü \u202e"
    response = await api.post("/api/v1/tickets", json={"subject": subject, "description": "by phone", "contact_id": 1})
    assert response.status_code == 201, response.text
    async with sqlite_store.sessions() as session:
        (mail,) = (await session.scalars(select(OutboxMail))).all()
    built = mail.state == OutboxState.PENDING and mail.raw
    assert built or (mail.state == OutboxState.FAILED and (mail.last_error or "").startswith("could not be built"))

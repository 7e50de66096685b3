"""One address rule for every door (CLI, API, inbound mail): syntax and IDNA, no deliverability, so an
MSP's internal domains work everywhere alike; public mail provider domains are refused for a client
unless forced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from api_support import api_client, make_key
from click.testing import CliRunner
from conftest import Store
from sqlalchemy import select

from mailtickets.cli import main
from mailtickets.db import transaction, upgrade
from mailtickets.directory import create_client
from mailtickets.directory.validation import normalize_email
from mailtickets.models import Contact, Outcome
from tests.builders import make_message

INTERNAL = ["it@corp.local", "ann@acme.test", "ops@intranet.lan", "root@büro.internal"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_domains_are_valid_addresses(address: str) -> None:
    assert normalize_email(address).endswith(address.rpartition("@")[2])


@pytest.mark.parametrize("address", ["no-at-sign", "@corp.local", "a..b@corp.local", "a@-corp.local", "a@corp"])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalize_email(address)


def test_the_domain_is_lower_cased_and_idna_decoded() -> None:
    assert normalize_email("Ann@XN--BCHER-KVA.Example") == "Ann@bücher.example"


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def test_the_api_accepts_what_inbound_mail_creates(sqlite_store: Store, api: httpx.AsyncClient) -> None:
    client = (await api.post("/api/v1/clients", json={"name": "Corp", "domains": ["corp.local"]})).json()
    result = await sqlite_store.pipeline().ingest(make_message(sender="IT <it@corp.local>"), "pipe")
    assert result.outcome == Outcome.CREATED
    contacts = (await api.get("/api/v1/contacts")).json()["data"]
    assert [c["email"] for c in contacts] == ["it@corp.local"]
    edited = await api.patch(f"/api/v1/contacts/{contacts[0]['id']}", json={"email": "helpdesk@corp.local"})
    assert edited.status_code == 200, edited.text
    added = await api.post(
        "/api/v1/contacts", json={"name": "Ann", "email": "ann@corp.local", "client_id": client["id"]}
    )
    assert added.status_code == 201, added.text


async def test_inbound_mail_from_an_address_no_door_accepts_is_quarantined(sqlite_store: Store) -> None:
    async with transaction(sqlite_store.sessions) as session:
        await create_client(session, "Corp", ["corp.local"])
    result = await sqlite_store.pipeline().ingest(make_message(sender="Odd <a..b@corp.local>"), "pipe")
    assert result.outcome == Outcome.QUARANTINED and "not a valid contact address" in (result.reason or "")
    async with sqlite_store.sessions() as session:
        assert (await session.scalars(select(Contact))).all() == []


async def test_a_public_provider_domain_is_refused_unless_forced(api: httpx.AsyncClient) -> None:
    refused = await api.post("/api/v1/clients", json={"name": "Acme", "domains": ["acme.example", "GMail.com"]})
    assert refused.status_code == 422
    assert "gmail.com is a public mail provider" in refused.json()["error"]["fields"]["domains"]
    acme = (await api.post("/api/v1/clients", json={"name": "Acme", "domains": ["acme.example"]})).json()
    one = await api.post(f"/api/v1/clients/{acme['id']}/domains", json={"domain": "outlook.com"})
    assert one.status_code == 422
    forced = await api.post(f"/api/v1/clients/{acme['id']}/domains", json={"domain": "outlook.com", "force": True})
    assert forced.status_code == 201 and "outlook.com" in forced.json()["domains"]


def test_the_cli_refuses_a_public_provider_domain_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("MAILTICKETS_DATABASE_URL", url)
    runner = CliRunner()
    refused = runner.invoke(main, ["clients", "add", "Acme", "--domain", "gmail.com"])
    assert refused.exit_code == 65 and "gmail.com is a public mail provider" in refused.output
    assert runner.invoke(main, ["clients", "add", "Acme", "--domain", "gmail.com", "--force"]).exit_code == 0
    assert (
        runner.invoke(
            main, ["contacts", "add", "--client", "Acme", "--name", "I", "--email", "it@corp.local"]
        ).exit_code
        == 0
    )
    assert runner.invoke(main, ["clients", "add-domain", "Acme", "corp.local"]).exit_code == 0
    removed = runner.invoke(main, ["clients", "remove-domain", "Acme", "gmail.com"])
    assert removed.exit_code == 0 and "gmail.com no longer belongs to Acme" in removed.output
    assert "gmail.com" not in runner.invoke(main, ["clients", "list"]).output

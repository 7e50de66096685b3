"""Agent aliases from the CLI and the API, and `author_role` in `ingest --json` and `tickets show --json`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from mailtickets.db import upgrade
from tests.agentmail_support import ALICE_PASSES, from_dan
from tests.api_support import api_client, make_key
from tests.builders import make_message
from tests.conftest import Store


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    for name, value in {
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path / "data"),
        "SUPPORT_ADDRESS": "support@helpdesk.example",
        "SMTP_URL": "smtp://127.0.0.1:1",
        "TRUSTED_AUTHSERV_IDS": "mx.helpdesk.example",
    }.items():
        monkeypatch.setenv(f"MAILTICKETS_{name}", value)
    return CliRunner()


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_agents_add_with_aliases_and_alias_add_remove(runner: CliRunner) -> None:
    add = ["agents", "add", "--name", "Dan Agent", "--email", "dan@helpdesk.example", "--alias", "D@Old.example"]
    out = _ok(runner, *add)
    assert "also d@old.example" in out.lower()
    _ok(runner, "agents", "alias", "add", "dan@helpdesk.example", "dan.agent@helpdesk.example")
    (row,) = json.loads(_ok(runner, "agents", "list", "--json"))
    assert row["aliases"] == ["D@old.example", "dan.agent@helpdesk.example"]  # the local part as written
    _ok(runner, "agents", "alias", "remove", "dan@helpdesk.example", "D@OLD.example")
    assert json.loads(_ok(runner, "agents", "list", "--json"))[0]["aliases"] == ["dan.agent@helpdesk.example"]


def test_an_alias_belongs_to_one_agent(runner: CliRunner) -> None:
    _ok(runner, "agents", "add", "--name", "Dan", "--email", "dan@helpdesk.example")
    _ok(runner, "agents", "add", "--name", "Eve", "--email", "eve@helpdesk.example")
    taken = runner.invoke(main, ["agents", "alias", "add", "eve@helpdesk.example", "DAN@helpdesk.example"])
    assert taken.exit_code != 0 and "agent 1 (Dan) already has DAN@helpdesk.example" in taken.output
    missing = runner.invoke(main, ["agents", "alias", "remove", "eve@helpdesk.example", "nope@helpdesk.example"])
    assert missing.exit_code != 0 and "has no alias" in missing.output


def test_ingest_json_and_tickets_show_json_name_the_author_role(runner: CliRunner, tmp_path: Path) -> None:
    _ok(runner, "clients", "add", "Acme", "--domain", "acme.example")
    _ok(runner, "agents", "add", "--name", "Dan Agent", "--email", "dan@helpdesk.example")
    client_mail, agent_mail, stranger = tmp_path / "c.eml", tmp_path / "a.eml", tmp_path / "s.eml"
    client_mail.write_bytes(make_message(headers=ALICE_PASSES))
    agent_mail.write_bytes(from_dan("On it.", subject="Re: [TCK-1] Printer on fire"))
    stranger.write_bytes(make_message(sender="x@stranger.example", message_id="<s@stranger.example>"))
    lines = _ok(runner, "ingest", "--json", str(client_mail), str(agent_mail), str(stranger)).splitlines()
    results = [json.loads(line) for line in lines]
    assert [(r["outcome"], r["author_role"]) for r in results] == [
        ("created", "client"),
        ("replied", "agent"),
        ("quarantined", None),
    ]
    shown = json.loads(_ok(runner, "tickets", "show", "TCK-1", "--json"))
    roles = [(m["direction"], m["author_role"], m["public"]) for m in shown["messages"]]
    assert roles[0] == ("inbound", "client", True)
    assert ("inbound", "agent", True) in roles
    assert all(role == "system" for direction, role, _ in roles if direction == "outbound")


@pytest.fixture
async def api(sqlite_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store, await make_key(sqlite_store)) as client:
        yield client


async def test_agents_api_has_aliases(api: httpx.AsyncClient) -> None:
    body = {"name": "Dan", "email": "dan@helpdesk.example", "aliases": ["Dan.Agent@helpdesk.example"]}
    created = await api.post("/api/v1/agents", json=body)
    assert created.status_code == 201 and created.json()["aliases"] == ["Dan.Agent@helpdesk.example"]
    agent_id = created.json()["id"]
    added = await api.post(f"/api/v1/agents/{agent_id}/aliases", json={"alias": "d@old.example"})
    assert added.status_code == 201 and added.json()["aliases"] == ["Dan.Agent@helpdesk.example", "d@old.example"]
    clash = await api.post("/api/v1/agents", json={"name": "D2", "email": "D@old.example"})
    assert clash.status_code == 409
    assert (await api.delete(f"/api/v1/agents/{agent_id}/aliases/d@old.example")).status_code == 204
    assert (await api.get("/api/v1/agents")).json()["data"][0]["aliases"] == ["Dan.Agent@helpdesk.example"]
    assert (await api.delete(f"/api/v1/agents/{agent_id}/aliases/d@old.example")).status_code == 404

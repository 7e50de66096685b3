"""What an operator does from the CLI: API keys listed and revoked, contacts and agents deactivated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from mailtickets.db import upgrade


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("MAILTICKETS_DATABASE_URL", url)
    monkeypatch.setenv("MAILTICKETS_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_apikey_list_shows_names_and_flags_never_the_keys(runner: CliRunner) -> None:
    assert "no API keys" in ok(runner, "apikey", "list")
    key = ok(runner, "apikey", "create", "--name", "monitoring", "--read-only").strip().splitlines()[-1]
    ok(runner, "apikey", "create", "--name", "psa-sync")
    ok(runner, "apikey", "revoke", "--name", "psa-sync")
    rows = json.loads(ok(runner, "apikey", "list", "--json"))
    assert [(r["name"], r["read_only"], r["revoked"]) for r in rows] == [
        ("monitoring", True, False),
        ("psa-sync", False, True),
    ]
    listed = ok(runner, "apikey", "list")
    assert "monitoring" in listed and "read-only" in listed and "revoked" in listed and key not in listed


def test_contacts_and_agents_are_deactivated_and_activated_by_email(runner: CliRunner) -> None:
    ok(runner, "clients", "add", "Acme", "--domain", "acme.example")
    ok(runner, "contacts", "add", "--client", "Acme", "--name", "Ann", "--email", "ann@acme.example")
    ok(runner, "agents", "add", "--name", "Dan", "--email", "dan@helpdesk.example")
    assert "deactivated" in ok(runner, "contacts", "deactivate", "ANN@acme.example")
    assert json.loads(ok(runner, "contacts", "list", "--json"))[0]["active"] is False
    ok(runner, "contacts", "activate", "ann@acme.example")
    assert json.loads(ok(runner, "contacts", "list", "--json"))[0]["active"] is True
    assert "agent dan@helpdesk.example deactivated" in ok(runner, "agents", "deactivate", "dan@helpdesk.example")
    assert json.loads(ok(runner, "agents", "list", "--json"))[0]["active"] is False
    missing = runner.invoke(main, ["agents", "deactivate", "nobody@helpdesk.example"])
    assert missing.exit_code == 66 and "no agent with email nobody@helpdesk.example" in missing.output


def test_quickstart_makes_a_client_and_a_key_once(runner: CliRunner) -> None:
    first = ok(runner, "quickstart", "--client", "Acme Corp", "--domain", "acme.example")
    key = first.strip().splitlines()[-1]
    assert "client 'Acme Corp' created with domain acme.example" in first and key.startswith("mtk_")
    again = ok(runner, "quickstart", "--client", "Acme Corp", "--domain", "acme.example")
    assert "exists" in again and "mtk_" not in again
    clients = json.loads(ok(runner, "clients", "list", "--json"))
    assert [(c["name"], c["domains"]) for c in clients] == [("Acme Corp", ["acme.example"])]
    assert [k["name"] for k in json.loads(ok(runner, "apikey", "list", "--json"))] == ["quickstart"]

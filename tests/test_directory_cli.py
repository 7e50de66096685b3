"""The directory CLI contract of issue 2: clients, contacts, agents, apikey."""

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
    return CliRunner()


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_clients_add_and_list(runner: CliRunner) -> None:
    assert "Acme" in _ok(runner, "clients", "add", "Acme", "--domain", "ACME.example", "--domain", "acme.org")
    rows = json.loads(_ok(runner, "clients", "list", "--json"))
    assert rows[0]["name"] == "Acme" and rows[0]["domains"] == ["acme.example", "acme.org"]
    assert "acme.org" in _ok(runner, "clients", "list")


def test_clients_deactivate_and_activate(runner: CliRunner) -> None:
    _ok(runner, "clients", "add", "Acme", "--domain", "acme.example")
    _ok(runner, "clients", "add", "Globex")
    assert "client Acme deactivated" in _ok(runner, "clients", "deactivate", "Acme")
    rows = json.loads(_ok(runner, "clients", "list", "--json"))
    assert [(r["name"], r["active"]) for r in rows] == [("Acme", False), ("Globex", True)]
    assert _ok(runner, "clients", "list").splitlines()[0].endswith("\tdeactivated")
    inactive = json.loads(_ok(runner, "clients", "list", "--json", "--state", "inactive"))
    assert [r["name"] for r in inactive] == ["Acme"] and inactive[0]["domains"] == ["acme.example"]
    assert "client Acme activated" in _ok(runner, "clients", "activate", "Acme")
    assert json.loads(_ok(runner, "clients", "list", "--json", "--state", "inactive")) == []
    missing = runner.invoke(main, ["clients", "deactivate", "Nobody"])
    assert missing.exit_code != 0 and "no client named 'Nobody'" in missing.output


def test_clients_add_conflicting_domain_fails(runner: CliRunner) -> None:
    _ok(runner, "clients", "add", "Acme", "--domain", "acme.example")
    result = runner.invoke(main, ["clients", "add", "Other", "--domain", "acme.example"])
    assert result.exit_code == 65 and "already belongs to 'Acme'" in result.output


def test_contacts_add_and_list(runner: CliRunner) -> None:
    _ok(runner, "clients", "add", "Acme", "--domain", "acme.example")
    _ok(
        runner,
        "contacts",
        "add",
        "--client",
        "Acme",
        "--name",
        "Sally",
        "--email",
        "sally@acme.example",
        "--phone",
        "555 0100",
        "--important",
        "--auth-method",
        "sso",
    )
    rows = json.loads(_ok(runner, "contacts", "list", "--json"))
    assert rows[0]["name"] == "Sally" and rows[0]["email"] == "sally@acme.example"
    assert rows[0]["client"] == "Acme" and rows[0]["important"] is True and rows[0]["auth_method"] == "sso"
    assert isinstance(rows[0]["id"], int)


def test_contacts_add_reports_every_bad_field(runner: CliRunner) -> None:
    _ok(runner, "clients", "add", "Acme")
    result = runner.invoke(
        main, ["contacts", "add", "--client", "Acme", "--name", "x" * 65, "--email", "bad", "--phone", "1" * 40]
    )
    assert result.exit_code == 65
    assert "name:" in result.output and "email:" in result.output and "phone:" in result.output


def test_contacts_add_unknown_client(runner: CliRunner) -> None:
    result = runner.invoke(main, ["contacts", "add", "--client", "Nope", "--name", "A", "--email", "a@b.example"])
    assert result.exit_code == 66 and "no client named 'Nope'" in result.output


def test_agents_add_and_list(runner: CliRunner) -> None:
    _ok(runner, "agents", "add", "--name", "Ann", "--email", "ann@support.example")
    assert json.loads(_ok(runner, "agents", "list", "--json"))[0]["email"] == "ann@support.example"


def test_apikey_create_prints_key_alone_on_last_line(runner: CliRunner) -> None:
    output = _ok(runner, "apikey", "create", "--name", "monitoring", "--read-only")
    key = output.strip().splitlines()[-1]
    assert key.startswith("mtk_") and " " not in key and len(key) > 40
    again = runner.invoke(main, ["apikey", "create", "--name", "monitoring"])
    assert again.exit_code == 65

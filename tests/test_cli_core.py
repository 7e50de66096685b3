"""The CLI contract of the core (other tools drive the product through it): real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import make_message


def cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailtickets.cli", *args], env=env, input=stdin, capture_output=True, timeout=120
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKETS_")}
    values.update(
        MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/mt.db",
        MAILTICKETS_DATA_DIR=str(tmp_path / "data"),
        MAILTICKETS_SUPPORT_ADDRESS="support@helpdesk.example",
        MAILTICKETS_SMTP_URL="smtp://127.0.0.1:1",
    )
    assert cli(values, "db", "upgrade").returncode == 0
    assert cli(values, "clients", "add", "Acme Corp", "--domain", "acme.example").returncode == 0
    added = cli(
        values, "contacts", "add", "--client", "Acme Corp", "--name", "Alice Able", "--email", "alice@acme.example"
    )
    assert added.returncode == 0, added.stderr
    return values


def test_ingest_json_reports_one_object_per_message(env: dict[str, str], tmp_path: Path) -> None:
    first = tmp_path / "first.eml"
    first.write_bytes(make_message())
    reply = tmp_path / "reply.eml"
    reply.write_bytes(make_message(subject="Re: [TCK-1] Printer on fire", message_id="<r@acme.example>"))
    result = cli(env, "ingest", "--json", str(first), str(reply), str(first))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(line["outcome"], line["ticket"]) for line in lines] == [
        ("created", "TCK-1"),
        ("replied", "TCK-1"),
        ("duplicate", "TCK-1"),
    ]
    assert all("reason" in line for line in lines)


def test_ingest_reads_one_message_from_standard_input(env: dict[str, str]) -> None:
    result = cli(env, "ingest", "--json", stdin=make_message(sender="x@stranger.example"))
    assert result.returncode == 0
    assert json.loads(result.stdout)["outcome"] == "quarantined"


def test_tickets_list_show_and_close(env: dict[str, str]) -> None:
    cli(env, "ingest", "-", stdin=make_message(attachments=[("log.txt", "text/plain", b"E-42")]))
    listed = json.loads(cli(env, "tickets", "list", "--json").stdout)
    assert [(t["ref"], t["status"], t["client"]) for t in listed] == [("TCK-1", "open", "Acme Corp")]
    shown = json.loads(cli(env, "tickets", "show", "TCK-1", "--json").stdout)
    assert shown["contact"]["email"] == "alice@acme.example"
    inbound = [m for m in shown["messages"] if m["direction"] == "inbound"]
    assert "printer is on fire" in inbound[0]["body_text"]
    assert [a["filename"] for a in inbound[0]["attachments"]] == ["log.txt"]
    assert cli(env, "tickets", "close", "TCK-1").returncode == 0
    assert json.loads(cli(env, "tickets", "show", "TCK-1", "--json").stdout)["status"] == "closed"


def test_contacts_list_json_shape(env: dict[str, str]) -> None:
    contacts = json.loads(cli(env, "contacts", "list", "--json").stdout)
    assert {k: contacts[0][k] for k in ("name", "email", "client")} == {
        "name": "Alice Able",
        "email": "alice@acme.example",
        "client": "Acme Corp",
    }
    assert isinstance(contacts[0]["id"], int)


def test_unknown_ticket_is_a_clear_error(env: dict[str, str]) -> None:
    result = cli(env, "tickets", "show", "TCK-99")
    assert result.returncode == 66
    assert b"no ticket TCK-99" in result.stderr


def test_store_unavailable_exits_75_so_the_mta_retries(env: dict[str, str], tmp_path: Path) -> None:
    broken = dict(env, MAILTICKETS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/missing-dir/nope/x.db")
    (tmp_path / "missing-dir").write_text("a file where a directory should be")
    result = cli(broken, "ingest", "-", stdin=make_message())
    assert result.returncode == 75, result.stderr
    assert b"try again later" in result.stderr


def test_config_file_is_read_and_environment_wins(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "mailtickets.toml"
    config.write_text('ticket_prefix = "REQ-"\nsupport_address = "help@acme-support.example"\n')
    overridden = dict(env, MAILTICKETS_SUPPORT_ADDRESS="support@helpdesk.example")
    result = cli(overridden, "--config", str(config), "ingest", "--json", "-", stdin=make_message())
    assert json.loads(result.stdout)["ticket"] == "REQ-1"
    missing = cli(env, "--config", str(tmp_path / "nope.toml"), "tickets", "list")
    assert missing.returncode != 0 and b"config file not found" in missing.stderr

"""`mailtickets quarantine list|show|release|discard` against a migrated SQLite file, as an admin uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from mailtickets.db import upgrade
from tests.builders import make_message


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MAILTICKETS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("MAILTICKETS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILTICKETS_SMTP_URL", "smtp://127.0.0.1:1")
    return CliRunner()


def _ok(runner: CliRunner, *args: str, stdin: bytes | None = None) -> str:
    result = runner.invoke(main, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _hold(runner: CliRunner, n: int = 1) -> int:
    raw = make_message(sender=f"Zoe <zoe{n}@newclient.example>", subject=f"Quote {n}", message_id=f"<q{n}@x>")
    assert "quarantined" in _ok(runner, "ingest", "-", stdin=raw)
    rows = json.loads(_ok(runner, "quarantine", "list", "--json"))
    return int(next(r["id"] for r in rows if r["subject"] == f"Quote {n}"))


def test_list_and_show(runner: CliRunner) -> None:
    held = _hold(runner)
    assert "zoe1@newclient.example" in _ok(runner, "quarantine", "list")
    detail = json.loads(_ok(runner, "quarantine", "show", str(held), "--json"))
    assert detail["subject"] == "Quote 1" and "printer is on fire" in detail["text"]
    text = _ok(runner, "quarantine", "show", str(held))
    assert "reason:" in text and "unknown sender" in text


def test_release_to_a_client_makes_a_ticket(runner: CliRunner) -> None:
    _ok(runner, "clients", "add", "Newclient", "--domain", "other.example")
    held = _hold(runner)
    assert "created TCK-1" in _ok(runner, "quarantine", "release", str(held), "--client", "Newclient")
    tickets = json.loads(_ok(runner, "tickets", "list", "--json"))
    assert [(t["ref"], t["client"]) for t in tickets] == [("TCK-1", "Newclient")]
    assert json.loads(_ok(runner, "quarantine", "list", "--json")) == []
    released = json.loads(_ok(runner, "quarantine", "list", "--json", "--state", "released"))
    assert [r["id"] for r in released] == [held]


def test_release_to_an_unknown_client_fails_and_keeps_it_held(runner: CliRunner) -> None:
    held = _hold(runner)
    result = runner.invoke(main, ["quarantine", "release", str(held), "--client", "Nobody"])
    assert result.exit_code == 66 and "no client named 'Nobody'" in result.output
    assert [r["id"] for r in json.loads(_ok(runner, "quarantine", "list", "--json"))] == [held]


def test_discard_then_it_cannot_be_released(runner: CliRunner) -> None:
    held = _hold(runner)
    assert "discarded" in _ok(runner, "quarantine", "discard", str(held))
    result = runner.invoke(main, ["quarantine", "release", str(held)])
    assert result.exit_code == 65 and "not held in quarantine (it is discarded)" in result.output
    assert "nothing in quarantine" in _ok(runner, "quarantine", "list")


def test_show_unknown_id_is_a_clean_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["quarantine", "show", "999"])
    assert result.exit_code == 66 and "no inbound message 999" in result.output


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20


def test_show_of_a_binary_file_prints_no_control_character_and_raw_saves_the_bytes(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert "quarantined" in _ok(runner, "ingest", "-", stdin=PNG)
    held = json.loads(_ok(runner, "quarantine", "list", "--json"))[0]["id"]
    shown = _ok(runner, "quarantine", "show", str(held))
    assert "binary content" in shown and "--raw FILE" in shown
    assert not [ch for ch in shown if (ord(ch) < 32 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F]
    saved = tmp_path / "held.bin"
    assert f"{len(PNG)} bytes written" in _ok(runner, "quarantine", "show", str(held), "--raw", str(saved))
    assert saved.read_bytes() == PNG


def test_show_lists_the_headers_and_neutralises_escape_sequences(runner: CliRunner) -> None:
    raw = make_message(
        sender="Eve <eve@stranger.example>", subject="Hi \x1b[2J\x1b]0;pwned\x07 there", message_id="<e@x>"
    )
    assert "quarantined" in _ok(runner, "ingest", "-", stdin=raw)
    held = json.loads(_ok(runner, "quarantine", "list", "--json"))[0]["id"]
    shown = _ok(runner, "quarantine", "show", str(held))
    assert "headers:" in shown and "  From: Eve <eve@stranger.example>" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    detail = json.loads(_ok(runner, "quarantine", "show", str(held), "--json"))
    assert ["Message-ID", "<e@x>"] in detail["headers"]

"""Operator commands beside the service: `db backup` (SQLite online backup + data folder), `db copy`
between SQLite and PostgreSQL both ways, and `db purge` of kept raw mail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from tests.builders import make_message

COUNTED = ["clients", "contacts", "tickets", "ticket_messages", "attachments", "inbound_mail", "outbox", "api_keys"]


@pytest.fixture
def env(clean_cli_env: dict[str, str | None]) -> dict[str, str | None]:
    return {
        **clean_cli_env,
        "MAILTICKETS_SUPPORT_ADDRESS": "support@helpdesk.example",
        "MAILTICKETS_NOTIFY_NEW_TICKETS_TO": "dispatch@helpdesk.example",
    }


def ok(env: dict[str, str | None], *args: str, stdin: bytes | None = None, **changes: str) -> str:
    result = CliRunner().invoke(main, list(args), input=stdin, env={**env, **changes}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def seed(env: dict[str, str | None], **changes: str) -> None:
    """A small but complete database: client, contact, tickets with an attachment, a held mail, a key."""
    ok(env, "clients", "add", "Acme", "--domain", "acme.example", **changes)
    ok(env, "contacts", "add", "--client", "Acme", "--name", "Ann", "--email", "ann@acme.example", **changes)
    ok(env, "apikey", "create", "--name", "ops", **changes)
    with_file = make_message(sender="ann@acme.example", attachments=[("log.txt", "text/plain", b"E-42")])
    ok(env, "ingest", "-", stdin=with_file, **changes)
    ok(env, "ingest", "-", stdin=make_message(sender="x@stranger.example", message_id="<s@x>"), **changes)


def sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in COUNTED}


def test_backup_holds_a_consistent_database_and_the_data_folder(env: dict[str, str | None], tmp_path: Path) -> None:
    ok(env, "db", "upgrade")
    seed(env)
    output = ok(env, "db", "backup", str(tmp_path / "backup-1"))
    assert "backup written to" in output
    backup = tmp_path / "backup-1"
    assert sqlite_counts(backup / "mailtickets.db") == sqlite_counts(tmp_path / "mt.db")
    originals = sorted(p.relative_to(tmp_path / "data") for p in (tmp_path / "data").rglob("*") if p.is_file())
    copied = sorted(p.relative_to(backup / "data") for p in (backup / "data").rglob("*") if p.is_file())
    assert copied == originals and len(copied) >= 2  # the attachment and the raw held mail
    assert json.loads((backup / "backup.json").read_text())["database"] == "mailtickets.db"
    again = CliRunner().invoke(main, ["db", "backup", str(backup)], env=env)
    assert again.exit_code == 78 and "already exists" in again.output


@pytest.mark.postgres
def test_copy_sqlite_to_postgresql_and_back(env: dict[str, str | None], tmp_path: Path, empty_postgres: str) -> None:
    ok(env, "db", "upgrade")
    seed(env)
    before = sqlite_counts(tmp_path / "mt.db")
    assert "rows in" in ok(env, "db", "copy", "--to", empty_postgres)
    on_postgres = {"MAILTICKETS_DATABASE_URL": empty_postgres}
    ok(env, "ingest", "-", stdin=make_message(sender="ann@acme.example", message_id="<new@x>"), **on_postgres)
    assert "TCK-2" in ok(env, "tickets", "list", **on_postgres)  # the counters and id sequences moved on
    refused = CliRunner().invoke(main, ["db", "copy", "--to", empty_postgres], env=env)
    assert refused.exit_code == 78 and "already holds data" in refused.output
    back = tmp_path / "back.db"
    ok(env, "db", "copy", "--to", f"sqlite+aiosqlite:///{back}", **on_postgres)
    after = sqlite_counts(back)
    assert after["tickets"] == before["tickets"] + 1 and after["clients"] == before["clients"]
    assert {k: v for k, v in after.items() if k not in ("tickets", "ticket_messages", "inbound_mail", "outbox")} == {
        k: v for k, v in before.items() if k not in ("tickets", "ticket_messages", "inbound_mail", "outbox")
    }


def test_copy_refuses_itself_and_a_missing_folder(env: dict[str, str | None], tmp_path: Path) -> None:
    ok(env, "db", "upgrade")
    itself = CliRunner().invoke(main, ["db", "copy", "--to", str(env["MAILTICKETS_DATABASE_URL"])], env=env)
    assert itself.exit_code == 78 and "the database itself" in itself.output
    missing = CliRunner().invoke(main, ["db", "copy", "--to", f"sqlite+aiosqlite:///{tmp_path}/no/x.db"], env=env)
    assert missing.exit_code == 78 and "does not exist" in missing.output


def test_purge_forgets_old_raw_mail_but_keeps_held_mail(env: dict[str, str | None], tmp_path: Path) -> None:
    ok(env, "db", "upgrade")
    seed(env)

    def raw_files() -> list[Path]:
        return sorted(p for p in (tmp_path / "data" / "raw").rglob("*") if p.is_file())

    kept_before = raw_files()
    refused = CliRunner().invoke(main, ["db", "purge"], env=env)
    assert refused.exit_code == 78 and "raw_mail_retention_days is 0" in refused.output
    with sqlite3.connect(tmp_path / "mt.db") as db:  # everything arrived 40 days ago
        db.execute("UPDATE inbound_mail SET received_at = datetime('now', '-40 days')")
    dry = ok(env, "db", "purge", "--older-than", "30", "--dry-run")
    assert "would forget" in dry and raw_files() == kept_before
    done = ok(env, "db", "purge", MAILTICKETS_RAW_MAIL_RETENTION_DAYS="30")
    assert "forgot the raw copy of" in done
    with sqlite3.connect(tmp_path / "mt.db") as db:
        rows = db.execute("SELECT quarantine_state, raw_stored FROM inbound_mail ORDER BY id").fetchall()
    assert ("held", 1) in [(state, stored) for state, stored in rows]  # the held mail keeps its bytes
    assert all(stored == 0 for state, stored in rows if state != "held")
    assert len(raw_files()) == 1  # only the held mail's file is left
    shown = ok(env, "quarantine", "show", str(len(rows)))
    assert "the raw bytes were not kept" not in shown

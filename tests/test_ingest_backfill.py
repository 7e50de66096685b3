"""Backfill against a real IMAP server (pymap; Dovecot when running) and the real pipeline on SQLite."""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Store
from imap_support import PYMAP_PASSWORD, PYMAP_USER, ImapServer, PymapProcess, add_example_client, make_message
from sqlalchemy import func, select

from mailtickets.cli import main
from mailtickets.db import upgrade
from mailtickets.ingest.backfill import Summary, backfill, imap_date, state_key
from mailtickets.ingest.result import IngestResult
from mailtickets.models import InboundMail, OutboxMail, Ticket
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.settings import MailboxSettings

pytest_plugins = ["imap_fixtures"]

SINCE = date(2000, 1, 1)


async def filled(server: ImapServer, count: int) -> MailboxSettings:
    mailbox = server.mailbox()
    await asyncio.to_thread(server.create, mailbox.folder)
    await server.a_append(mailbox.folder, *(make_message(n) for n in range(count)))
    return mailbox


async def run(store: Store, mailbox: MailboxSettings, **kwargs: object) -> Summary:
    pipeline = Pipeline(store.settings, store.sessions, store.clock, notify=False)
    return await backfill(mailbox, kwargs.pop("since", SINCE), pipeline, store.sessions, **kwargs)  # type: ignore[arg-type]


async def count(store: Store, model: type[object]) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_imap_date_is_english_whatever_the_locale() -> None:
    assert imap_date(date(2026, 1, 5)) == "05-Jan-2026"
    assert state_key("support", "Sent", date(2026, 1, 5)) == "backfill:support:Sent:2026-01-05"


async def test_backfill_makes_tickets_mails_nobody_and_leaves_the_mailbox_alone(
    imap_server: ImapServer, sqlite_store: Store
) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = await filled(imap_server, 30)
    summary = await run(sqlite_store, mailbox)
    assert (summary.found, summary.skipped, dict(summary.outcomes)) == (30, 0, {"created": 30})
    assert await count(sqlite_store, Ticket) == 30
    assert await count(sqlite_store, OutboxMail) == 0
    assert len(await imap_server.a_uids(mailbox.folder)) == 30
    flags = await asyncio.to_thread(imap_server.flags, mailbox.folder)
    assert len(flags) == 30 and not any(b"\\Seen" in f for f in flags)

    again = await run(sqlite_store, mailbox)
    assert (again.skipped, dict(again.outcomes)) == (30, {})
    # A wider date range is another run with its own progress: dedupe answers for what is already in.
    wider = await run(sqlite_store, mailbox, since=date(1999, 1, 1))
    assert dict(wider.outcomes) == {"duplicate": 30}
    assert await count(sqlite_store, Ticket) == 30


async def test_backfill_opens_the_folder_read_only_so_recent_stays_for_the_mail_client(
    imap_server: ImapServer, sqlite_store: Store
) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = await filled(imap_server, 5)
    summary = await run(sqlite_store, mailbox)
    assert dict(summary.outcomes) == {"created": 5}
    # SELECT would have claimed \\Recent for the backfill's session; EXAMINE leaves it to the next client.
    assert await asyncio.to_thread(imap_server.recent, mailbox.folder) == 5


async def test_limit_then_resume_imports_every_message_once(imap_server: ImapServer, sqlite_store: Store) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = await filled(imap_server, 30)
    first = await run(sqlite_store, mailbox, limit=12)
    assert dict(first.outcomes) == {"created": 12}
    rest = await run(sqlite_store, mailbox)
    assert (rest.skipped, dict(rest.outcomes)) == (12, {"created": 18})
    assert await count(sqlite_store, InboundMail) == 30


class CancelAfter:
    """A progress that cancels the backfill after n messages, as Ctrl-C does."""

    def __init__(self, n: int) -> None:
        self.n, self.task = n, asyncio.current_task()

    def start(self, total: int) -> None:
        pass

    def advance(self, uid: int, result: IngestResult) -> None:
        self.n -= 1
        if self.n == 0 and self.task is not None:
            self.task.cancel()


async def test_cancelled_backfill_resumes_after_the_last_committed_message(
    imap_server: ImapServer, sqlite_store: Store
) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = await filled(imap_server, 30)
    with pytest.raises(asyncio.CancelledError):
        await run(sqlite_store, mailbox, progress=CancelAfter(7))
    rest = await run(sqlite_store, mailbox)
    # The message in hand when the cancel landed may have committed: it comes back as a duplicate.
    assert rest.skipped == 7 and rest.outcomes["duplicate"] <= 1
    assert rest.outcomes["created"] + rest.outcomes["duplicate"] == 23
    assert await count(sqlite_store, InboundMail) == 30


async def test_since_filters_by_the_servers_date(imap_server: ImapServer, sqlite_store: Store) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    old, new = datetime(2025, 3, 1, 12, tzinfo=UTC), datetime(2026, 2, 1, 12, tzinfo=UTC)
    dated = [(old, make_message(1)), (old, make_message(2)), (new, make_message(3))]
    await asyncio.to_thread(_append_dated, imap_server, mailbox.folder, dated)
    summary = await run(sqlite_store, mailbox, since=date(2026, 1, 5))
    assert (summary.found, dict(summary.outcomes)) == (1, {"created": 1})


def _append_dated(server: ImapServer, folder: str, messages: list[tuple[datetime, bytes]]) -> None:
    with server.client() as client:
        for when, raw in messages:
            client.append(f'"{folder}"', None, imaplib.Time2Internaldate(when), raw)


async def test_other_folder_is_read_and_nothing_is_created(imap_server: ImapServer, sqlite_store: Store) -> None:
    await add_example_client(sqlite_store.sessions)
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, f"{mailbox.folder}-sent")
    await imap_server.a_append(f"{mailbox.folder}-sent", make_message(1), make_message(2))
    summary = await run(sqlite_store, mailbox, folder=f"{mailbox.folder}-sent")
    assert (summary.folder, summary.found) == (f"{mailbox.folder}-sent", 2)
    with imap_server.client() as client:
        _status, listed = client.list('""', f"{mailbox.folder}*")
    assert len(listed) == 1 and b"-sent" in listed[0]  # no Processed or Quarantine folder made


@pytest.fixture
def cli_env(tmp_path: Path, pymap_process: PymapProcess) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    return {
        "MAILTICKETS_DATABASE_URL": url,
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
        "MAILTICKETS_SMTP_URL": "smtp://127.0.0.1:1",
        "MAILTICKETS_IMAP_URL": f"imap://{PYMAP_USER}:{PYMAP_PASSWORD}@127.0.0.1:{pymap_process.port}/INBOX",
    }


def test_cli_backfills_the_url_mailbox_and_prints_a_summary(
    cli_env: dict[str, str], pymap_process: PymapProcess
) -> None:
    server = ImapServer("pymap", "127.0.0.1", pymap_process.port, PYMAP_USER, PYMAP_PASSWORD)
    folder = server.mailbox().folder
    server.create(folder)
    server.append(folder, *(make_message(n) for n in range(3)))
    runner = CliRunner(env=cli_env)
    assert runner.invoke(main, ["clients", "add", "Example Ltd", "--domain", "example.com"]).exit_code == 0
    args = ["backfill", "--mailbox", "default", "--folder", folder, "--since", "2000-01-01"]
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "mailbox": "default", "folder": folder, "since": "2000-01-01", "found": 3, "skipped": 0, "created": 3,
    }  # fmt: skip
    text = runner.invoke(main, args)
    assert text.exit_code == 0 and "3 found, 3 already imported; nothing new" in text.stdout


def test_cli_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner(env=cli_env)
    args = ["backfill", "--since", "2026-01-05", "--mailbox"]
    unknown = runner.invoke(main, [*args, "nope"])
    assert unknown.exit_code == 78 and "no mailbox named 'nope' (known: default)" in unknown.output
    wrong = {**cli_env, "MAILTICKETS_IMAP_URL": cli_env["MAILTICKETS_IMAP_URL"].replace(":p@", ":wrong@")}
    refused = CliRunner(env=wrong).invoke(main, [*args, "default"])
    assert refused.exit_code == 77 and "login refused" in refused.output and "wrong" not in refused.output
    (tmp_path / "file").write_text("")
    unavailable = {**cli_env, "MAILTICKETS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/file/sub/x.db"}
    assert CliRunner(env=unavailable).invoke(main, [*args, "default"]).exit_code == 78  # no database there


def test_sigterm_stops_the_cli_backfill_with_its_progress_saved(
    cli_env: dict[str, str], pymap_process: PymapProcess
) -> None:
    server = ImapServer("pymap", "127.0.0.1", pymap_process.port, PYMAP_USER, PYMAP_PASSWORD)
    folder, total = server.mailbox().folder, 300
    server.create(folder)
    server.append(folder, *(make_message(n) for n in range(total)))
    assert (
        CliRunner(env=cli_env).invoke(main, ["clients", "add", "Example Ltd", "--domain", "example.com"]).exit_code == 0
    )
    args = ["backfill", "--mailbox", "default", "--folder", folder, "--since", "2000-01-01", "--json"]
    env = {**os.environ, **cli_env}
    database = cli_env["MAILTICKETS_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    command = [sys.executable, "-c", "from mailtickets.cli import main; main()", *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while _sql(database, "SELECT count(*) FROM inbound_mail") < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM and b"run the same command again" in err, err
    committed = _sql(database, "SELECT count(*) FROM inbound_mail")
    rest = CliRunner(env=cli_env).invoke(main, args)
    summary = json.loads(rest.stdout)
    # Without the SIGTERM handling nothing of the batch in hand (100) would have been saved: skipped == 0.
    # The message in hand when the signal landed may have committed unsaved: it comes back as a duplicate.
    assert 5 <= committed < total and summary["skipped"] in (committed - 1, committed)
    assert summary["created"] + summary.get("duplicate", 0) == total - summary["skipped"]
    assert _sql(database, "SELECT count(*) FROM inbound_mail") == total


def _sql(database: str, query: str) -> int:
    with sqlite3.connect(database) as db:
        row = db.execute(query).fetchone()
    return int(row[0]) if row else 0

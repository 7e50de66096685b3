"""Instrumented acknowledgements: no intake lets a mail go (IMAP move/flag, LMTP 250, pipe exit 0) before
the commit that holds it. Each ack point asks an independent SQLite connection whether the mail's
inbound record is committed at that very moment."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope, Session
from conftest import Store
from imap_support import ImapServer, add_example_client, free_port, make_message

from mailtickets.clock import SystemClock
from mailtickets.ingest.imap import Backoff, MailboxListener
from mailtickets.ingest.imap_session import ImapSession
from mailtickets.ingest.leases import Leases
from mailtickets.ingest.lmtp import SERVER_HOSTNAME, LmtpHandler, LmtpServer
from mailtickets.settings import MailboxSettings

pytest_plugins = ["imap_fixtures"]


class CommitWitness:
    """Reads the database file through its own connection: it sees committed rows only."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.acks: list[tuple[str, bool]] = []  # (what was acknowledged, was it committed then)

    def committed(self, raw: bytes) -> bool:
        with sqlite3.connect(self.database) as connection:
            digest = hashlib.sha256(raw).hexdigest()
            row = connection.execute("SELECT 1 FROM inbound_mail WHERE raw_sha256 = ?", (digest,)).fetchone()
        return row is not None

    def ack(self, what: str, raw: bytes) -> None:
        self.acks.append((what, self.committed(raw)))


def database_of(store: Store) -> Path:
    return Path(str(store.engine.url.database))


class WitnessedImapSession(ImapSession):
    """A real IMAP session whose settling commands first ask the witness about every mail they settle."""

    witness: CommitWitness

    def __init__(self, mailbox: MailboxSettings) -> None:
        super().__init__(mailbox)
        self.fetched: dict[int, bytes] = {}

    async def fetch(self, uids: Sequence[int]) -> list[tuple[int, bytes]]:
        messages = await super().fetch(uids)
        self.fetched.update(messages)
        return messages

    async def move(self, uids: Sequence[int], folder: str) -> None:
        for uid in uids:
            self.witness.ack(f"move {uid} to {folder}", self.fetched[uid])
        await super().move(uids, folder)

    async def flag_seen(self, uids: Sequence[int]) -> None:
        for uid in uids:
            self.witness.ack(f"flag {uid}", self.fetched[uid])
        await super().flag_seen(uids)


@pytest.mark.parametrize("after_processing", ["move", "flag"])
async def test_imap_moves_or_flags_only_committed_mail(
    imap_server: ImapServer, sqlite_store: Store, after_processing: str
) -> None:
    await add_example_client(sqlite_store.sessions)
    witness = CommitWitness(database_of(sqlite_store))
    WitnessedImapSession.witness = witness
    mailbox = imap_server.mailbox(after_processing=after_processing)
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    mails = [make_message(n) for n in range(12)] + [make_message(99, sender="x@stranger.example")]
    await imap_server.a_append(mailbox.folder, *mails)
    stop = asyncio.Event()
    leases = Leases(sqlite_store.sessions, SystemClock(), owner="test", seconds=3)
    listener = MailboxListener(
        mailbox, sqlite_store.pipeline(), sqlite_store.sessions, leases, idle_renew_seconds=60, stop=stop,
        connect=WitnessedImapSession, backoff=Backoff(base=0.05, cap=0.5),
    )  # fmt: skip
    task = asyncio.create_task(listener.run())
    try:
        async with asyncio.timeout(20):
            while len(witness.acks) < len(mails):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(witness.acks) == len(mails)
    assert all(committed for _, committed in witness.acks), witness.acks
    assert any(what.endswith(f"to {mailbox.quarantine_folder}") for what, _ in witness.acks)


class WitnessedLmtpHandler(LmtpHandler):
    """The real handler; the status it returns is what aiosmtpd pushes to the MTA next."""

    def __init__(self, store: Store, witness: CommitWitness) -> None:
        super().__init__(store.pipeline())
        self.witness = witness

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        status = await super().handle_DATA(server, session, envelope)
        if status.startswith("250"):
            self.witness.ack(status, envelope.original_content or b"")
        return status


def deliver(port: int, raw: bytes) -> int:
    with smtplib.LMTP("127.0.0.1", port) as client:
        client.ehlo_or_helo_if_needed()
        client.mail("alice@example.com")
        client.rcpt("support@helpdesk.example")
        return client.data(raw)[0]


async def test_lmtp_answers_250_only_for_committed_mail_also_when_deliveries_share_a_batch(
    sqlite_store: Store,
) -> None:
    await add_example_client(sqlite_store.sessions)
    witness = CommitWitness(database_of(sqlite_store))
    handler = WitnessedLmtpHandler(sqlite_store, witness)
    port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: LmtpServer(handler, hostname=SERVER_HOSTNAME), "127.0.0.1", port)
    try:
        mails = [make_message(n) for n in range(10)]
        codes = await asyncio.gather(*(asyncio.to_thread(deliver, port, raw) for raw in mails))
    finally:
        server.close()
        await server.wait_closed()
    assert codes == [250] * len(mails)
    assert len(witness.acks) == len(mails)
    assert all(committed for _, committed in witness.acks), witness.acks


def test_the_pipe_reports_only_committed_mail_before_it_exits(sqlite_store: Store, tmp_path: Path) -> None:
    # The result line is printed just before exit 0: kill the process the moment it appears.
    database = database_of(sqlite_store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKETS_")}
    env |= {
        "MAILTICKETS_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
        "MAILTICKETS_SUPPORT_ADDRESS": "support@helpdesk.example",
        "MAILTICKETS_SMTP_URL": "smtp://127.0.0.1:1",
    }
    raw = make_message(1, sender="x@stranger.example")
    process = subprocess.Popen(
        [sys.executable, "-m", "mailtickets.cli", "ingest", "--json", "-"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(raw)
    process.stdin.close()
    line = process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert b'"outcome": "quarantined"' in line
    assert CommitWitness(database).committed(raw)

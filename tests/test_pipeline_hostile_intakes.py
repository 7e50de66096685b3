"""Hostile mail through the doors: the pipe exits 0 with the outcome, LMTP stops answering 451 for a
poison message, and an IMAP mailbox moves on: a poison mail in INBOX followed by a normal one, the normal
one becomes a ticket within seconds. The pipeline runs with its parse workers throughout."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import Store
from imap_support import ImapServer
from sqlalchemy import func, select

from mailtickets.clock import SystemClock
from mailtickets.ingest.imap import Backoff, MailboxListener
from mailtickets.ingest.leases import Leases
from mailtickets.ingest.result import IngestResult
from mailtickets.models import InboundMail, Outcome, Ticket
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.parse_worker import ParseWorkers, limits_from
from tests import hostile_mail
from tests.builders import make_message
from tests.test_ingest_lmtp import deliver, lmtp_server
from tests.test_pipeline_hostile import failing_message
from tests.world import build_world

pytest_plugins = ["imap_fixtures"]

PARSE_TIMEOUT = 2.0


@pytest.fixture
async def world(sqlite_store: Store) -> AsyncIterator[tuple[Store, Pipeline]]:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    sqlite_store.settings = sqlite_store.settings.model_copy(
        update={"parse_timeout_seconds": PARSE_TIMEOUT, "parse_workers": 1}
    )
    parser = ParseWorkers(
        limits_from(sqlite_store.settings),
        timeout=PARSE_TIMEOUT,
        memory_limit=sqlite_store.settings.parse_memory_limit_bytes,
        size=1,
        parse=hostile_mail.slow_parse_faked,
    )
    pipeline = Pipeline(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock, parser=parser)
    yield sqlite_store, pipeline
    await pipeline.close()


async def _tickets(store: Store) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_the_pipe_exits_0_with_the_outcome_of_a_mail_over_the_memory_limit(sqlite_store: Store, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MAILTICKETS_DATABASE_URL": sqlite_store.settings.database_url,
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
        "MAILTICKETS_PARSE_MEMORY_LIMIT_BYTES": str(170 * 1024 * 1024),  # an idle worker maps ~100 MB
        "MAILTICKETS_PARSE_TIMEOUT_SECONDS": "120",
    }
    command = [str(Path(sys.executable).with_name("mailtickets")), "ingest", "--json"]
    raw = hostile_mail.big_joined_base64_attachment(17 * 1024 * 1024)  # a plain big attachment fits now
    done = subprocess.run(command, input=raw, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    printed = json.loads(done.stdout.decode().splitlines()[-1])
    assert printed["outcome"] == "quarantined"
    assert "parse_memory_limit_bytes" in printed["reason"]


async def test_lmtp_answers_250_for_mail_over_the_parse_time_limit_faked(world: tuple[Store, Pipeline]) -> None:
    _store, pipeline = world
    async with lmtp_server(pipeline, max_bytes=30_000_000) as port:
        code, text = await asyncio.to_thread(deliver, port, hostile_mail.slow_poison())
        assert (code, text) == (250, b"2.0.0 quarantined")
        code, text = await asyncio.to_thread(deliver, port, make_message(message_id="<after@acme.example>"))
        assert (code, text) == (250, b"2.0.0 created TCK-4")


async def test_lmtp_stops_answering_451_for_a_poison_message_faked(
    world: tuple[Store, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, pipeline = world
    raw = failing_message(monkeypatch, "poison over lmtp")
    async with lmtp_server(pipeline, max_bytes=30_000_000) as port:
        codes = [(await asyncio.to_thread(deliver, port, raw))[0] for _ in range(store.settings.poison_max_attempts)]
        again = await asyncio.to_thread(deliver, port, raw)
    assert codes == [451] * (store.settings.poison_max_attempts - 1) + [250]
    assert again == (250, b"2.0.0 duplicate")


class _Concurrency:
    """An ingestor that counts how many deliveries it holds at once (it answers after a short wait)."""

    def __init__(self) -> None:
        self.now = self.most = 0

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.2)
        self.now -= 1
        return IngestResult(Outcome.CREATED, None, None, None)


async def test_lmtp_processes_at_most_max_concurrent_deliveries_at_once() -> None:
    counting = _Concurrency()
    async with lmtp_server(counting, max_concurrent=2) as port:
        replies = await asyncio.gather(*(asyncio.to_thread(deliver, port, make_message()) for _ in range(6)))
    assert [code for code, _ in replies] == [250] * 6
    assert counting.most == 2


async def test_a_poison_mail_in_the_inbox_does_not_hold_up_the_next_one_faked(
    imap_server: ImapServer, world: tuple[Store, Pipeline]
) -> None:
    store, pipeline = world
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, hostile_mail.slow_poison(), make_message(message_id="<n@a>"))
    stop = asyncio.Event()
    leases = Leases(store.sessions, SystemClock(), owner="test", seconds=3)
    listener = MailboxListener(
        mailbox, pipeline, store.sessions, leases, idle_renew_seconds=60, stop=stop, backoff=Backoff(base=0.05, cap=0.5)
    )
    task = asyncio.create_task(listener.run())
    try:
        async with asyncio.timeout(PARSE_TIMEOUT + 30):  # seconds, not a retry loop: the limit plus a worker restart
            while await _tickets(store) < 4:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    async with store.sessions() as session:
        outcomes = [r.outcome for r in (await session.scalars(select(InboundMail).order_by(InboundMail.id))).all()]
    assert outcomes == [Outcome.QUARANTINED, Outcome.CREATED]
    assert len(await imap_server.a_uids(mailbox.quarantine_folder)) == 1
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 1

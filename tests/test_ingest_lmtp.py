"""LMTP intake: real aiosmtpd server on 127.0.0.1, driven by smtplib.LMTP; the real pipeline where it matters."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from conftest import Store
from imap_support import FakeIngestor, add_example_client, free_port, make_message
from sqlalchemy import func, select

from mailtickets.db import create_engine, session_factory
from mailtickets.ingest.lmtp import parse_bind, serve_lmtp
from mailtickets.ingest.result import Ingestor
from mailtickets.models import Ticket
from mailtickets.pipeline.ingest import Pipeline


@asynccontextmanager
async def lmtp_server(ingestor: Ingestor, max_bytes: int = 1_000_000, max_concurrent: int = 4) -> AsyncIterator[int]:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_lmtp(f"127.0.0.1:{port}", ingestor, max_bytes, stop, max_concurrent=max_concurrent)
    )
    await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def deliver(port: int, raw: bytes, recipients: tuple[str, ...] = ("support@helpdesk.example",)) -> tuple[int, bytes]:
    """Send one message; returns the DATA reply (code, text) of the first recipient."""
    with smtplib.LMTP("127.0.0.1", port) as client:
        client.ehlo_or_helo_if_needed()
        client.mail("alice@example.com")
        for rcpt in recipients:
            client.rcpt(rcpt)
        return client.data(raw)


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8024") == ("127.0.0.1", 8024)
    assert parse_bind("[::1]:24") == ("::1", 24)
    with pytest.raises(ValueError):
        parse_bind("8024x")


async def test_250_only_after_the_ticket_is_committed(sqlite_store: Store) -> None:
    await add_example_client(sqlite_store.sessions)
    async with lmtp_server(sqlite_store.pipeline()) as port:
        code, text = await asyncio.to_thread(deliver, port, make_message(1))
    assert code == 250 and b"created" in text
    async with sqlite_store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 1


async def test_451_when_the_database_is_unreachable(sqlite_store: Store) -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing-listens-here")
    pipeline = Pipeline(sqlite_store.settings, session_factory(engine), sqlite_store.clock)
    try:
        async with lmtp_server(pipeline) as port:
            code, text = await asyncio.to_thread(deliver, port, make_message(1))
    finally:
        await engine.dispose()
    assert (code, text) == (451, b"4.3.0 mail store unavailable, try again later")  # not the internal-error 451


async def test_451_on_a_faked_store_failure_then_250_on_the_mtas_retry() -> None:
    ingestor = FakeIngestor()
    ingestor.fail_times = 1
    async with lmtp_server(ingestor) as port:
        code, text = await asyncio.to_thread(deliver, port, make_message(1))
        assert (code, text[:5]) == (451, b"4.3.0")
        code, _ = await asyncio.to_thread(deliver, port, make_message(1))  # the MTA's retry
        assert code == 250


async def test_552_with_the_reason_for_mail_over_the_limit() -> None:
    ingestor = FakeIngestor()
    big = make_message(1) + (b"x" * 70 + b"\r\n") * 30
    async with lmtp_server(ingestor, max_bytes=1000) as port:
        code, text = await asyncio.to_thread(deliver, port, big)
    assert code == 552 and text.startswith(b"5.3.4") and b"1000 bytes" in text
    assert ingestor.received == []


async def test_one_reply_per_recipient_and_one_ingest() -> None:
    ingestor = FakeIngestor()
    async with lmtp_server(ingestor) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        for line in (b"LHLO test", b"MAIL FROM:<alice@example.com>", b"RCPT TO:<a@x.test>", b"RCPT TO:<b@x.test>"):
            writer.write(line + b"\r\n")
        writer.write(b"DATA\r\n")
        await writer.drain()
        while not (await reader.readline()).startswith(b"354"):
            pass
        writer.write(make_message(1) + b".\r\n")
        replies = [await reader.readline(), await reader.readline()]
        writer.write(b"QUIT\r\n")
        writer.close()
    assert all(r.startswith(b"250 2.0.0") for r in replies)
    assert len(ingestor.received) == 1

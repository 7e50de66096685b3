"""Latency benchmark: push intake to committed ticket.

1. The server's own push delay: APPEND → untagged EXISTS at a bare aioimaplib IDLE client.
2. End to end: APPEND → ticket committed by the listener (in IDLE) feeding the real pipeline (SQLite);
   also the pipeline's share (ingest call to commit) and "our part" (end to end minus the push delay).
3. LMTP: DATA sent → 250 (which comes after the commit).

Messages go one by one: each waits until the previous one is committed.

    python bench/imap_latency.py [--messages 200] [--server pymap|dovecot]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import smtplib
import socket
import statistics
import tempfile
import time
from pathlib import Path

import aioimaplib
from imap_servers import Server, imap_server, message, store

from mailtickets.clock import SystemClock
from mailtickets.db import session_factory
from mailtickets.ingest.imap import MailboxListener
from mailtickets.ingest.imap_session import ImapSession
from mailtickets.ingest.leases import Leases
from mailtickets.ingest.lmtp import serve_lmtp
from mailtickets.ingest.result import Ingestor, IngestResult
from mailtickets.pipeline.ingest import Pipeline


class PushTimedSession(ImapSession):
    """The real session; notes when the listener sees the untagged EXISTS (before IDLE DONE)."""

    pushes: list[float] = []

    async def _wait_for_exists(self, seconds: float, stop: asyncio.Event) -> None:
        await super()._wait_for_exists(seconds, stop)
        PushTimedSession.pushes.append(time.perf_counter())


class Timed:
    """Wraps the pipeline: when each ingest started and when it returned (committed)."""

    def __init__(self, inner: Ingestor) -> None:
        self.inner = inner
        self.started: list[float] = []
        self.committed: asyncio.Queue[float] = asyncio.Queue()

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        self.started.append(time.perf_counter())
        result = await self.inner.ingest(raw, source)
        self.committed.put_nowait(time.perf_counter())
        return result


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {1000 * statistics.median(ordered):6.1f} ms   p99 {1000 * p99:6.1f} ms"


async def push_delay(server: Server, folder: str, count: int) -> list[float]:
    server.append(folder, [])
    client = aioimaplib.IMAP4(server.host, server.port)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    await client.select(f'"{folder}"')
    appender = server.client()
    delays = []
    for n in range(count):
        idle = await client.idle_start(timeout=60)
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        await asyncio.to_thread(appender.append, f'"{folder}"', None, None, message(n))
        while not any(b"EXISTS" in line for line in await client.wait_server_push(timeout=10)):
            pass
        delays.append(time.perf_counter() - started)
        client.idle_done()
        await asyncio.wait_for(idle, 10)
    appender.logout()
    await client.logout()
    return delays


async def end_to_end(
    server: Server, folder: str, count: int, tmp: Path
) -> tuple[list[float], list[float], list[float]]:
    settings, engine = await store(tmp)
    sessions = session_factory(engine)
    pipeline = Pipeline(settings, sessions, SystemClock())
    await pipeline.parser.warm_up()  # as `mailtickets run` does at start
    timed = Timed(pipeline)
    stop = asyncio.Event()
    server.append(folder, [])
    listener = MailboxListener(
        server.mailbox(folder), timed, sessions, Leases(sessions, SystemClock(), "bench"),
        idle_renew_seconds=600, stop=stop, connect=PushTimedSession,
    )  # fmt: skip
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 30)
    appender = server.client()
    # Warm-up, not measured: the first message starts the parse workers (a one-time ~0.3 s).
    await asyncio.to_thread(appender.append, f'"{folder}"', None, None, message(count))
    await asyncio.wait_for(timed.committed.get(), 30)
    totals, pipeline, listener_part = [], [], []
    for n in range(count):
        await asyncio.sleep(0.02)  # let the listener re-enter IDLE
        started = time.perf_counter()
        await asyncio.to_thread(appender.append, f'"{folder}"', None, None, message(n))
        committed = await asyncio.wait_for(timed.committed.get(), 10)
        totals.append(committed - started)
        pipeline.append(committed - timed.started[-1])
        listener_part.append(committed - PushTimedSession.pushes[-1])
    appender.logout()
    stop.set()
    await task
    await engine.dispose()
    return totals, pipeline, listener_part


async def lmtp(count: int, tmp: Path) -> list[float]:
    settings, engine = await store(tmp)
    pipeline = Pipeline(settings, session_factory(engine), SystemClock())
    await pipeline.parser.warm_up()  # as `mailtickets run` does at start
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve_lmtp(f"127.0.0.1:{port}", pipeline, settings.max_message_bytes, stop))
    await asyncio.sleep(0.1)

    def deliver_all() -> list[float]:
        delays = []
        with smtplib.LMTP("127.0.0.1", port) as client:
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for n in range(count):
                raw = message(n)
                started = time.perf_counter()
                client.sendmail("user1@example.com", ["support@helpdesk.example"], raw)
                delays.append(time.perf_counter() - started)
        return delays

    delays = await asyncio.to_thread(deliver_all)
    stop.set()
    await task
    await engine.dispose()
    return delays


async def main(count: int, kind: str) -> None:
    with imap_server(kind) as server, tempfile.TemporaryDirectory() as tmp:
        suffix = int(time.time())
        push = await push_delay(server, f"push{suffix}", count)
        print(f"{kind}: server push delay (APPEND → EXISTS, bare IDLE client): {ms(push)}")
        totals, pipeline, seen = await end_to_end(server, f"e2e{suffix}", count, Path(tmp) / "imap")
        print(f"{kind}: APPEND → committed ticket (listener in IDLE):     {ms(totals)}")
        print(f"{kind}:   of which pipeline (ingest call → commit):     {ms(pipeline)}")
        ours = [t - statistics.median(push) for t in totals]
        print(f"{kind}:   our part (end to end - median push delay):   {ms(ours)}")
        print(f"{kind}:   our part (EXISTS seen by the listener → commit): {ms(seen)}")
        print(f"{kind}:     of which IMAP (EXISTS → ingest call: DONE, SEARCH, SIZE, FETCH): "
              f"{ms([s - p for s, p in zip(seen, pipeline, strict=True)])}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        print(f"LMTP: DATA → 250 after commit:                        {ms(await lmtp(count, Path(tmp)))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--server", choices=["pymap", "dovecot"], default="pymap")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.messages, args.server))

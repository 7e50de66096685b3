"""Drain benchmark: a backlog of N messages in the folder at start-up; the IMAP listener feeds the real
pipeline (SQLite) until the folder is empty.  Prints messages/second, and how much of the time the
pipeline took (the rest is IMAP: fetch, MOVE, state).  `--null` replaces the pipeline by a
NullIngestor to measure the listener alone.

    python bench/drain.py [--messages 5000] [--server pymap|dovecot] [--null]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from imap_servers import imap_server, message, store

from mailtickets.clock import SystemClock
from mailtickets.db import session_factory
from mailtickets.ingest.imap import MailboxListener
from mailtickets.ingest.leases import Leases
from mailtickets.ingest.result import Ingestor, IngestResult
from mailtickets.models import Outcome
from mailtickets.pipeline.ingest import Pipeline


class NullIngestor:
    """Answers "created" without storing anything: the listener's own cost."""

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        return IngestResult(Outcome.CREATED, None, None, None)


class Timed:
    """Counts messages and the wall time during which at least one is in the pipeline (a fetch is handed
    over at once, so calls overlap)."""

    def __init__(self, inner: Ingestor) -> None:
        self.inner = inner
        self.count = 0
        self.seconds = 0.0
        self._active = 0
        self._since = 0.0

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        if self._active == 0:
            self._since = time.perf_counter()
        self._active += 1
        try:
            return await self.inner.ingest(raw, source)
        finally:
            self._active -= 1
            self.count += 1
            if self._active == 0:
                self.seconds += time.perf_counter() - self._since


async def main(total: int, kind: str, null: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, imap_server(kind) as server:
        settings, engine = await store(Path(tmp))
        sessions = session_factory(engine)
        folder = f"drain{int(time.time())}"
        messages = [message(n) for n in range(total)]
        started = time.perf_counter()
        await asyncio.to_thread(server.append, folder, messages)
        print(f"{kind}: APPEND {total} messages: {total / (time.perf_counter() - started):.0f}/s")
        timed = Timed(NullIngestor() if null else Pipeline(settings, sessions, SystemClock()))
        stop = asyncio.Event()
        leases = Leases(sessions, SystemClock(), "bench")
        listener = MailboxListener(server.mailbox(folder), timed, sessions, leases, idle_renew_seconds=600, stop=stop)
        started, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(listener.run())
        await asyncio.wait_for(listener.connected.wait(), 3600)  # set once the catch-up is done
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stop.set()
        await task
        await engine.dispose()
        what = "listener + NullIngestor" if null else "listener + pipeline (SQLite)"
        rate = timed.count / elapsed
        print(f"{kind}: drained {timed.count} messages in {elapsed:.1f} s: {rate:.0f} messages/s ({what}), "
              f"{1000 * cpu / max(timed.count, 1):.2f} CPU ms/message in this process")  # fmt: skip
        print(f"{kind}: pipeline {timed.seconds / elapsed:.0%} of the time, "
              f"{1000 * timed.seconds / max(timed.count, 1):.1f} ms/message; "
              f"IMAP and state {1000 * (elapsed - timed.seconds) / max(timed.count, 1):.1f} ms/message")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--server", choices=["pymap", "dovecot"], default="pymap")
    parser.add_argument("--null", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.messages, args.server, args.null))

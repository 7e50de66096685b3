"""Outbox benchmark: N notifications queued through `enqueue_notifications`, then delivered by
`deliver_due` to a local aiosmtpd sink running in its own process. Prints queued/s and mails/s.

    python bench/outbox.py [--mails 2000] [--batch 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import SystemClock
from mailtickets.db import create_engine, session_factory, transaction, upgrade
from mailtickets.models import Contact, Direction, OutboxMail, OutboxState, Ticket, TicketMessage
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.notify.sender import deliver_due
from mailtickets.settings import Settings
from mailtickets.tickets.events import TicketCreated

EVENTS_PER_TRANSACTION = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.kill()
    raise SystemExit("the aiosmtpd sink did not start")


async def seed(sessions: async_sessionmaker[AsyncSession], count: int) -> list[tuple[int, int]]:
    """`count` tickets, each with its own contact and opening message: (ticket id, message id)."""
    async with transaction(sessions) as session:
        await session.execute(
            insert(Contact), [{"name": f"User {i}", "email": f"user{i}@bench.example"} for i in range(count)]
        )
        contacts = (await session.scalars(select(Contact.id).order_by(Contact.id))).all()
        await session.execute(
            insert(Ticket),
            [
                {"prefix": "TCK-", "number": i + 1, "subject": f"Printer {i} \u2013 Drucker klemmt", "contact_id": c}
                for i, c in enumerate(contacts)
            ],
        )
        tickets = (await session.scalars(select(Ticket.id).order_by(Ticket.id))).all()
        await session.execute(
            insert(TicketMessage),
            [
                {"ticket_id": t, "direction": Direction.INBOUND, "message_id": f"m{t}@bench.example", "body_text": "x"}
                for t in tickets
            ],
        )
        messages = (await session.scalars(select(TicketMessage.id).order_by(TicketMessage.id))).all()
    return list(zip(tickets, messages, strict=True))


async def run(args: argparse.Namespace, folder: Path) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    port = free_port()
    settings = Settings(
        database_url=url,
        data_dir=folder,
        smtp_url=f"smtp://127.0.0.1:{port}",
        support_address="support@helpdesk.example",
        secret_key="bench",
        outbox_batch_size=args.batch,
    )
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions, clock = session_factory(engine), SystemClock()
    pairs = await seed(sessions, args.mails)

    started = time.perf_counter()
    for start in range(0, len(pairs), EVENTS_PER_TRANSACTION):
        events = [TicketCreated(t, m) for t, m in pairs[start : start + EVENTS_PER_TRANSACTION]]
        async with transaction(sessions) as session:
            await enqueue_notifications(session, settings, clock, events)
    queued = time.perf_counter() - started

    sink = start_sink(port)
    try:
        started = time.perf_counter()
        sent = 0
        while (delivered := await deliver_due(settings, sessions, clock)) > 0:
            sent += delivered
        elapsed = time.perf_counter() - started
    finally:
        sink.terminate()
        sink.wait()
    async with sessions() as session:
        done = await session.scalar(select(func.count()).where(OutboxMail.state == OutboxState.SENT))
    await engine.dispose()
    print(f"backend {engine.dialect.name}, batch {args.batch}")
    print(f"queued {args.mails} notifications in {queued:.2f}s: {args.mails / queued:.0f}/s (render + outbox row)")
    print(f"delivered {sent} (sent rows {done}) in {elapsed:.2f}s: {sent / elapsed:.0f} mails/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()

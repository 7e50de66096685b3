"""Console pages over a big store: 100,000 tickets and 100,000 traced mails in SQLite.

    python bench/console.py [--tickets 100000] [--rounds 5]

Prints the median milliseconds per page (in-process ASGI, signed in as an admin), first pages and deep
ones, with and without filters: every list is a keyed range of an index, so a deep page or a filter
costs about what the first page does; a subject search that matches little is the one scan.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from mailtickets.api import create_app
from mailtickets.clock import SystemClock
from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.directory.accounts import set_password
from mailtickets.directory.agents import create_agent
from mailtickets.models import AgentRole, Client, InboundMail, Outcome, Ticket, TicketStatus
from mailtickets.settings import Settings

PASSWORD = "bench password 1"
STATUSES = list(TicketStatus)
WORDS = ("printer", "vpn", "laptop", "invoice", "backup", "password", "email", "server")


async def fill(settings: Settings, count: int) -> None:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await session.execute(insert(Client), [{"name": f"Client {n}"} for n in range(200)])
        await create_agent(session, "Bench Admin", "admin@bench.example", AgentRole.ADMIN)
        await set_password(session, "admin@bench.example", PASSWORD)
        for offset in range(0, count, 5000):
            rows = range(offset, min(offset + 5000, count))
            await session.execute(insert(Ticket), [_ticket(n, start) for n in rows])
            await session.execute(insert(InboundMail), [_mail(n, start) for n in rows])
    await engine.dispose()


def _ticket(n: int, start: datetime) -> dict[str, object]:
    when = start + timedelta(minutes=n)
    subject = f"{WORDS[n % len(WORDS)]} problem number {n}"
    return {
        "prefix": "TCK-",
        "number": n + 1,
        "subject": subject,
        "description": "",
        "client_id": n % 200 + 1,
        "status": STATUSES[n % len(STATUSES)],
        "tags": [],
        "created_at": when,
        "updated_at": when,
    }


def _mail(n: int, start: datetime) -> dict[str, object]:
    return {
        "dedupe_key": f"mid:m{n}@bench|u{n}@client{n % 200}.example",
        "source": "support",
        "message_id": f"m{n}@bench",
        "sender": f"u{n}@client{n % 200}.example",
        "subject": f"{WORDS[n % len(WORDS)]} problem number {n}",
        "raw_sha256": "0" * 64,
        "raw_size": 1000,
        "outcome": Outcome.CREATED,
        "ticket_id": n + 1,
        "received_at": start + timedelta(minutes=n),
    }


async def measure(settings: Settings, count: int, rounds: int) -> None:
    engine = create_engine(settings.database_url)
    app = create_app(settings, session_factory(engine), SystemClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        login = await client.get("/admin/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token is not None
        data = {"csrf": token.group(1), "email": "admin@bench.example", "password": PASSWORD}
        await client.post("/admin/login", data=data)
        deep = count // 10
        for path in (
            "/admin/tickets",
            f"/admin/tickets?before={deep}",
            "/admin/tickets?status=hold",
            "/admin/tickets?client=7&status=open",
            f"/admin/tickets?q=TCK-{count // 2}",
            "/admin/tickets?q=printer",
            "/admin/tickets?q=no-such-words",
            "/admin/tickets/TCK-12345",
            "/admin/trace",
            f"/admin/trace?before={deep}",
            "/admin/trace?outcome=created",
            "/admin/trace?q=u4242@",
            "/admin/trace?q=u4242@client42.example",  # a whole address: the sender, exactly (an index)
            "/admin/trace?q=%3Cm4242@bench%3E",  # a Message-ID, exactly (an index)
            "/admin/trace?since=2025-01-10&until=2025-01-11",
            "/admin/quarantine",
        ):
            times = []
            for _ in range(rounds):
                began = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            print(f"{statistics.median(times):8.1f} ms  {path}")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        settings = Settings(database_url=url, data_dir=Path(folder) / "data")
        began = time.perf_counter()
        asyncio.run(fill(settings, args.tickets))
        print(f"{args.tickets} tickets and traced mails written in {time.perf_counter() - began:.1f} s")
        asyncio.run(measure(settings, args.tickets, args.rounds))


if __name__ == "__main__":
    main()

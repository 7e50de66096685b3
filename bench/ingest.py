"""Ingest benchmark: N generated messages (70% new, 30% replies, 10% with attachments) from files into a
fresh SQLite store, in-process. Prints messages/second and peak RSS, on an empty store and on one that
already holds 100,000 tickets.

    python bench/ingest.py [--messages 2000] [--existing 100000] [--rules 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy import insert

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Client, ClientDomain, Contact, Ticket, TicketCounter
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.rules.store import replace_all_rules
from mailtickets.settings import Settings

CONTACTS = 50


def generate(count: int, folder: Path, first_ticket: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    paths, created = [], 0
    for index in range(count):
        message = EmailMessage()
        message["From"] = f"User {index % CONTACTS} <user{index % CONTACTS}@bench.example>"
        message["To"] = "support@helpdesk.example"
        message["Message-ID"] = f"<bench-{index}-{rng.random()}@bench.example>"
        message["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
        if created and rng.random() < 0.3:
            number = first_ticket + rng.randrange(created)
            message["Subject"] = f"Re: [TCK-{number}] Issue {number}"
            body = "Thanks, still broken.\n\nOn Mon, Support wrote:\n> We are looking into it.\n"
        else:
            created += 1
            message["Subject"] = f"Issue {index}: the printer on floor {index % 9} is jammed"
            body = "Hello,\n\n" + "The printer shows error E-42 again. " * rng.randint(3, 40) + "\n\nRegards\n"
        message.set_content(body)
        if rng.random() < 0.1:
            message.add_attachment(
                rng.randbytes(rng.randint(2_000, 60_000)),
                maintype="application",
                subtype="pdf",
                filename=f"report-{index}.pdf",
            )
        path = folder / f"{index:06d}.eml"
        path.write_bytes(message.as_bytes(policy=SMTP))
        paths.append(path)
    return paths


async def seed_rules(settings: Settings, count: int) -> None:
    from rules import make_specs  # bench/rules.py, beside this file

    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session, session.begin():
        await replace_all_rules(session, make_specs(count, random.Random(3)), actor="bench")
    await engine.dispose()


async def seed_store(settings: Settings, existing: int) -> int:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        client = Client(name="Bench Corp", domains=[ClientDomain(domain="bench.example")])
        session.add(client)
        await session.flush()
        session.add_all(
            Contact(client_id=client.id, name=f"User {i}", email=f"user{i}@bench.example") for i in range(CONTACTS)
        )
        now = datetime.now(UTC)
        for start in range(0, existing, 10_000):
            rows = [
                {
                    "prefix": "TCK-",
                    "number": n + 1,
                    "subject": f"Old ticket {n}",
                    "description": "old",
                    "client_id": client.id,
                    "status": "closed",
                    "priority": "medium",
                    "tags": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + 10_000, existing))
            ]
            await session.execute(insert(Ticket), rows)
        session.add(TicketCounter(prefix="TCK-", last_number=existing))
    await engine.dispose()
    return existing + 1


async def run(paths: list[Path], settings: Settings) -> float:
    engine = create_engine(settings.database_url)
    pipeline = Pipeline(settings, session_factory(engine))
    raws = [p.read_bytes() for p in paths]
    started = time.perf_counter()
    for raw in raws:
        await pipeline.ingest(raw, "bench")
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(raws) / elapsed


def measure(count: int, existing: int, workdir: Path, rules: int = 0) -> float:
    folder = workdir / f"store-{existing}-{rules}"
    folder.mkdir()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
        data_dir=folder / "data",
        support_address="support@helpdesk.example",
        notify_client_on_create=False,
        notify_distribution_on_create=False,
        notify_agent_on_client_reply=False,
    )
    upgrade(settings.database_url)
    first = asyncio.run(seed_store(settings, existing))
    if rules:
        asyncio.run(seed_rules(settings, rules))
    mails = workdir / f"mail-{existing}-{rules}"
    mails.mkdir()
    paths = generate(count, mails, first)
    return asyncio.run(run(paths, settings))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=200, help="enabled routing rules for the with-rules run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = measure(args.messages, 0, Path(tmp))
        print(f"empty store:            {empty:8.1f} messages/s")
        ruled = measure(args.messages, 0, Path(tmp), rules=args.rules)
        added = (1 / ruled - 1 / empty) * 1000
        print(f"with {args.rules} rules:        {ruled:8.1f} messages/s (rules add {added:.2f} ms/message)")
        full = measure(args.messages, args.existing, Path(tmp))
        print(f"{args.existing:,} tickets:    {full:8.1f} messages/s ({(1 - full / empty) * 100:+.1f}% slower)")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS:               {peak_kb / 1024:8.1f} MB")
    sys.exit(0)


if __name__ == "__main__":
    main()

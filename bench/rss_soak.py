"""RSS over many messages: the service process and its parse workers, every `--every` messages, so that
"flat" can be seen. Generated mail (new tickets, replies to them, now and then a small attachment) goes
through the whole pipeline in-process with parse workers, into a fresh SQLite store, notifications on.

    python bench/rss_soak.py [--messages 100000] [--every 10000] [--batch 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Client, ClientDomain
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.parse_worker import ParseWorkers
from mailtickets.settings import Settings


def mail(number: int) -> bytes:
    """Message `number`: every third a reply to an earlier ticket, every tenth with a small attachment."""
    message = EmailMessage()
    message["From"] = f"User {number % 500} <user{number % 500}@soak.example>"
    message["To"] = "support@helpdesk.example"
    message["Message-ID"] = f"<soak-{number}@soak.example>"
    if number % 3 == 2:
        message["Subject"] = f"Re: [TCK-{number // 3 + 1}] problem {number // 3}"
        message["In-Reply-To"] = f"<soak-{number - 2}@soak.example>"
    else:
        message["Subject"] = f"problem {number} with the printer"
    message.set_content(f"Hello,\n\nthe printer shows error E-{number % 97} again.\n\nRegards\n" * 3)
    if number % 10 == 0:
        message.add_attachment(number.to_bytes(8, "big") * 512, maintype="image", subtype="png", filename="shot.png")
    return message.as_bytes(policy=SMTP)


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(count: int, every: int, batch: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mailtickets-soak-"))
    url = f"sqlite+aiosqlite:///{folder / 'soak.db'}"
    upgrade(url)
    settings = Settings(database_url=url, data_dir=folder / "data", support_address="support@helpdesk.example")
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(Client(name="Soak", domains=[ClientDomain(domain="soak.example")]))
    parser = ParseWorkers.from_settings(settings)
    pipeline = Pipeline(settings, sessions, parser=parser)
    print(f"{count} messages into {folder}; RSS in MiB every {every}")
    print(f"{'messages':>9} {'service':>8} {'workers':>16} {'msg/s':>6}")
    started = last = time.perf_counter()
    for first in range(0, count, batch):  # handed over `batch` at once, as an IMAP fetch does
        numbers = range(first, min(first + batch, count))
        await asyncio.gather(*(pipeline.ingest(mail(number), "soak") for number in numbers))
        done = numbers[-1] + 1
        if done % every == 0 or first == 0:
            now = time.perf_counter()
            workers = " ".join(f"{rss_kib(w.process.pid or 'self') / 1024:.0f}" for w in parser.workers)
            rate = (every if first else len(numbers)) / (now - last)
            print(f"{done:>9} {rss_kib() / 1024:>8.0f} {workers:>16} {rate:>6.0f}", flush=True)
            last = now
    print(f"done in {time.perf_counter() - started:.0f} s")
    await pipeline.close()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000, help="a multiple of --batch")
    parser.add_argument("--batch", type=int, default=20, help="messages handed over at once (1: one at a time)")
    args = parser.parse_args()
    asyncio.run(soak(args.messages, args.every, args.batch))


if __name__ == "__main__":
    main()

"""Ingest benchmark: N generated messages (70% new, 30% replies, 10% with attachments) from files into a
fresh SQLite store, in-process, with notifications ON (the defaults; `--no-notify` turns them off).

For each run it prints messages/second, CPU ms per message (and the event loop's thread's part of it, with the
share of the wall time that thread was busy), SQL statements per message, and bare mail-parser's parse rate of
the same files in the same run with the ratio (the issue's target: ingest at least 1/3 of mail-parser's rate).
The parse workers are started first, as the service does. Runs: an empty store, one with routing rules, one
that already holds 100,000 tickets, one long thread (a reply on a ticket with N replies against a first
reply, alternated), and one busy agent (a reply alerting an agent who had N alerts in the hour against one
alerting another agent, alternated).

    python bench/ingest.py [--messages 2000] [--existing 100000] [--rules 200] [--thread 1500] [--no-notify]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import mailparser
from sqlalchemy import event, insert, make_url, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Agent, Client, ClientDomain, Contact, Ticket, TicketCounter, TicketStatus
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


@dataclass
class Figures:
    messages: int
    seconds: float
    cpu_seconds: float
    statements: int
    commits: int
    loop_cpu_seconds: float  # the event loop's thread alone: how close it is to its ceiling

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def line(self, parser: tuple[float, float]) -> str:
        wall, cpu = parser
        cpu_rate = self.messages / self.cpu_seconds
        return (
            f"{self.rate:7.1f} msg/s ({cpu_rate:6.1f} by CPU), "
            f"{self.cpu_seconds * 1000 / self.messages:5.2f} CPU ms/msg "
            f"(loop {self.loop_cpu_seconds * 1000 / self.messages:4.2f}, "
            f"busy {self.loop_cpu_seconds / self.seconds:4.0%}), "
            f"{self.statements / self.messages:4.1f} statements/msg, "
            f"{self.messages / max(self.commits, 1):4.1f} msg/commit; "
            f"mail-parser {wall:6.1f} msg/s ({cpu:6.1f} by CPU), "
            f"ratio 1/{wall / self.rate:.1f} (1/{cpu / cpu_rate:.1f} by CPU)"
        )


def count_statements(engine: AsyncEngine) -> list[int]:
    """[statements, commits], counted as they happen."""
    counter = [0, 0]

    def statement(*_: object) -> None:
        counter[0] += 1

    def commit(*_: object) -> None:
        counter[1] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", statement)
    event.listen(engine.sync_engine, "commit", commit)
    return counter


async def run(raws: list[bytes], settings: Settings, batch: int) -> Figures:
    engine = create_engine(settings.database_url)
    statements = count_statements(engine)
    pipeline = Pipeline(settings, session_factory(engine))
    await pipeline.parser.warm_up()  # as the service does at start: no message waits for a worker to start
    started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    if batch > 1:  # what a backlog in one IMAP fetch gets: up to `batch` messages per commit
        for first in range(0, len(raws), batch):
            await asyncio.gather(*(pipeline.ingest(raw, "bench") for raw in raws[first : first + batch]))
    else:
        for raw in raws:
            await pipeline.ingest(raw, "bench")
    seconds, cpu_seconds, loop_seconds = (
        time.perf_counter() - started,
        time.process_time() - cpu,
        time.thread_time() - loop_cpu,
    )
    figures = Figures(len(raws), seconds, cpu_seconds, statements[0], statements[1], loop_seconds)
    await pipeline.close()
    await engine.dispose()
    return figures


def bare_parser_rate(raws: list[bytes]) -> tuple[float, float]:
    """mail-parser alone on the same files: messages/second by the wall clock and by CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    for raw in raws:
        mailparser.parse_from_bytes(raw)
    return len(raws) / (time.perf_counter() - started), len(raws) / (time.process_time() - cpu)


POSTGRES_URL: str | None = None  # --postgres: each run gets a fresh database on that server


def database_url(folder: Path) -> str:
    if POSTGRES_URL is None:
        return f"sqlite+aiosqlite:///{folder}/bench.db"
    name = f"bench_{folder.name.replace('-', '_')}_{int(time.time())}"
    asyncio.run(create_database(POSTGRES_URL, name))
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def create_database(url: str, name: str) -> None:
    await _admin(url, f'CREATE DATABASE "{name}"')


async def _admin(url: str, sql: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(sql)
    await admin.dispose()


def drop_database(settings: Settings) -> None:
    if POSTGRES_URL is not None:
        asyncio.run(_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{make_url(settings.database_url).database}"'))


def bench_settings(folder: Path, notify: bool) -> Settings:
    quiet = {} if notify else {
        "notify_client_on_create": False, "notify_distribution_on_create": False, "notify_agent_on_client_reply": False,
    }  # fmt: skip
    return Settings(
        database_url=database_url(folder),
        data_dir=folder / "data",
        support_address="support@helpdesk.example",
        **quiet,  # type: ignore[arg-type]
    )


def measure(
    args: argparse.Namespace, existing: int, workdir: Path, rules: int = 0
) -> tuple[Figures, tuple[float, float]]:
    folder = workdir / f"store-{existing}-{rules}"
    folder.mkdir()
    settings = bench_settings(folder, args.notify)
    upgrade(settings.database_url)
    first = asyncio.run(seed_store(settings, existing))
    if rules:
        asyncio.run(seed_rules(settings, rules))
    mails = workdir / f"mail-{existing}-{rules}"
    mails.mkdir()
    raws = [p.read_bytes() for p in generate(args.messages, mails, first)]
    parser_rate = bare_parser_rate(raws)  # same files, same run, just before
    figures = asyncio.run(run(raws, settings, args.batch))
    drop_database(settings)
    return figures, parser_rate


def reply(index: int, ticket_number: int) -> bytes:
    message = EmailMessage()
    message["From"] = "User 1 <user1@bench.example>"
    message["To"] = "support@helpdesk.example"
    message["Message-ID"] = f"<thread-{ticket_number}-{index}@bench.example>"
    message["Subject"] = f"Re: [TCK-{ticket_number}] The long one"
    message.set_content(f"Reply {index}: still broken.\n")
    return message.as_bytes(policy=SMTP)


@dataclass
class ThreadFigures:
    """Medians of a first reply on a ticket against a reply on the ticket with the long thread: wall time,
    CPU time, statements."""

    wall: tuple[float, float]
    cpu: tuple[float, float]
    statements: tuple[float, float]


async def alternated(pipeline: Pipeline, statements: list[int], pairs: list[tuple[bytes, bytes]]) -> ThreadFigures:
    """Ingests each pair's (baseline, measured) messages one after the other; the medians of each side."""
    samples: tuple[list[list[float]], list[list[float]]] = ([[], [], []], [[], [], []])
    for pair in pairs:
        for side, raw in enumerate(pair):
            started, cpu, before = time.perf_counter(), time.process_time(), statements[0]
            await pipeline.ingest(raw, "bench")
            walls, cpus, counts = samples[side]
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
            counts.append(statements[0] - before)

    def medians(which: int) -> tuple[float, float]:
        return statistics.median(samples[0][which]), statistics.median(samples[1][which])

    return ThreadFigures(medians(0), medians(1), medians(2))


async def time_thread(settings: Settings, length: int, window: int) -> ThreadFigures:
    """Builds a thread of `length` replies on ticket 1, then alternates `window` replies to it with first
    replies to tickets 2 … window + 1 (in the same state: open, with an agent), so that the two are
    compared in one sitting: a machine whose speed drifts over the run affects both alike."""
    engine = create_engine(settings.database_url)
    statements = count_statements(engine)
    pipeline = Pipeline(settings, session_factory(engine))
    async with session_factory(engine)() as session, session.begin():
        agent = Agent(name="Bench Agent", email="agent@helpdesk.example")
        session.add(agent)
        await session.flush()
        alike = update(Ticket).where(Ticket.number <= window + 1)
        await session.execute(alike.values(assigned_agent_id=agent.id, status=TicketStatus.OPEN))
    for index in range(length):
        await pipeline.ingest(reply(index, 1), "bench")
    pairs = [(reply(0, index + 2), reply(length + index, 1)) for index in range(window)]
    figures = await alternated(pipeline, statements, pairs)
    await pipeline.close()
    await engine.dispose()
    return figures


async def time_busy_agent(settings: Settings, alerts: int, window: int) -> ThreadFigures:
    """One agent alerted of `alerts` client replies within the hour (one per ticket, so that no rate
    limit holds any back), then `window` replies alerting that agent alternated with replies alerting
    another: what an alert costs must not grow with how many the agent had."""
    engine = create_engine(settings.database_url)
    statements = count_statements(engine)
    pipeline = Pipeline(settings, session_factory(engine))
    async with session_factory(engine)() as session, session.begin():
        busy, fresh = Agent(name="Busy Agent", email="busy@helpdesk.example"), Agent(name="Other", email="o@h.example")
        session.add_all([busy, fresh])
        await session.flush()
        opened = update(Ticket).values(status=TicketStatus.OPEN)
        await session.execute(opened.where(Ticket.number <= alerts + window).values(assigned_agent_id=busy.id))
        await session.execute(opened.where(Ticket.number > alerts + window).values(assigned_agent_id=fresh.id))
    for number in range(1, alerts + 1):
        await pipeline.ingest(reply(0, number), "bench")
    pairs = [(reply(0, alerts + window + 1 + index), reply(0, alerts + 1 + index)) for index in range(window)]
    figures = await alternated(pipeline, statements, pairs)
    await pipeline.close()
    await engine.dispose()
    return figures


def measure_busy_agent(args: argparse.Namespace, workdir: Path) -> ThreadFigures:
    folder = workdir / "busy-agent"
    folder.mkdir()
    settings = bench_settings(folder, notify=True)
    upgrade(settings.database_url)
    window = 50
    asyncio.run(seed_store(settings, args.thread + 2 * window))
    return asyncio.run(time_busy_agent(settings, args.thread, window))


def measure_thread(args: argparse.Namespace, workdir: Path) -> ThreadFigures:
    folder = workdir / "thread"
    folder.mkdir()
    settings = bench_settings(folder, notify=True)  # the threading headers are what is measured
    upgrade(settings.database_url)
    window = 50
    asyncio.run(seed_store(settings, window + 1))
    return asyncio.run(time_thread(settings, args.thread, window))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=200, help="enabled routing rules for the with-rules run")
    parser.add_argument("--thread", type=int, default=1500, help="replies on one ticket (0: skip)")
    parser.add_argument("--batch", type=int, default=1, help="messages handed over at once (an IMAP fetch)")
    parser.add_argument("--no-notify", dest="notify", action="store_false", help="turn notifications off")
    parser.add_argument("--only-empty", action="store_true", help="just the empty-store run")
    parser.add_argument("--postgres", metavar="URL", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    global POSTGRES_URL
    POSTGRES_URL = args.postgres
    print(f"notifications {'on' if args.notify else 'off'}, {args.messages} messages, handed over {args.batch} at once")
    with tempfile.TemporaryDirectory() as tmp:
        empty, rate = measure(args, 0, Path(tmp))
        print(f"empty store:          {empty.line(rate)}")
        if not args.only_empty:
            ruled, rate = measure(args, 0, Path(tmp), rules=args.rules)
            added = (1 / ruled.rate - 1 / empty.rate) * 1000
            print(f"with {args.rules} rules:      {ruled.line(rate)} (rules add {added:.2f} ms/msg)")
            full, rate = measure(args, args.existing, Path(tmp))
            print(f"{args.existing:,} tickets:   {full.line(rate)} ({(1 - full.rate / empty.rate) * 100:+.1f}% slower)")
        if args.thread:
            thread = measure_thread(args, Path(tmp))
            for name, (first, last), unit in (
                ("wall", thread.wall, 1000),
                ("CPU", thread.cpu, 1000),
                ("statements", thread.statements, 1),
            ):
                print(
                    f"thread of {args.thread}, {name:>10}: a first reply {first * unit:.2f}, a reply after "
                    f"{args.thread} {last * unit:.2f} ({(last / first - 1) * 100:+.1f}%; medians of 50 each, "
                    "alternated; ms but statements)"
                )
            agent = measure_busy_agent(args, Path(tmp))
            for name, (first, last), unit in (("wall", agent.wall, 1000), ("CPU", agent.cpu, 1000)):
                print(
                    f"agent with {args.thread} alerts, {name:>4}: a reply alerting another agent {first * unit:.2f}, "
                    f"one alerting that agent {last * unit:.2f} ({(last / first - 1) * 100:+.1f}%; medians of 50 "
                    "each, alternated; ms)"
                )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS:             {peak_kb / 1024:8.1f} MB")
    sys.exit(0)


if __name__ == "__main__":
    main()

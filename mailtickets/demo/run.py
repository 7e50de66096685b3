"""`mailtickets demo`: the whole product on embedded parts, in one process, in a temporary folder.

pymap (in-memory IMAP) and an aiosmtpd sink on 127.0.0.1, a fresh SQLite store, and the real service
(`app.run`: IMAP listener, outbox sender) in between.  A handful of realistic mails go in through IMAP;
what came out is read back from the database and from the SMTP sink.  The clock is real time plus an
offset the demo moves forward, so that the auto-close chaser and closure happen within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.db import create_engine, session_factory, transaction, upgrade
from mailtickets.demo import mail as demo_mail
from mailtickets.demo.servers import ImapAccount, ImapClient, SmtpSink, free_port, start_pymap
from mailtickets.directory import create_agent, create_client, create_contact
from mailtickets.jobs.autoclose import run_autoclose_once
from mailtickets.models import InboundMail, OutboxMail, OutboxState, Ticket
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.notify.sender import deliver_due
from mailtickets.service import app
from mailtickets.settings import MailboxSettings, Settings
from mailtickets.tickets import lifecycle
from mailtickets.tickets.views import ticket_rows

log = logging.getLogger(__name__)

STEP_TIMEOUT_SECONDS = 30.0  # one mail through IMAP, the pipeline and back out; normally well under a second
POLL_SECONDS = 0.05
MAILBOX = "support"
PROCESSED, QUARANTINE = "Processed", "Quarantine"

Echo = Callable[[str], None]


class DemoClock:
    """Real time plus an offset that only grows: `advance` jumps days ahead without waiting.

    It starts `behind` real time by as much as the demo will advance it, so that the story ends at the
    real present: no ticket is left dated in the future (and `--keep`'s new mail is dated now).
    """

    def __init__(self, behind: timedelta = timedelta()) -> None:
        self._offset = -behind

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta


@dataclass(frozen=True, slots=True)
class Delivered:
    label: str
    sender: str
    subject: str
    outcome: str
    ticket: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Sent:
    recipient: str
    kind: str
    subject: str


@dataclass(frozen=True, slots=True)
class DemoReport:
    delivered: list[Delivered]
    tickets: list[dict[str, object]]
    notifications: list[Sent]


@dataclass(frozen=True, slots=True)
class Embedded:
    """Everything the demo started, for `--keep` to show."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: DemoClock
    imap: ImapAccount
    sink: SmtpSink
    stop: asyncio.Event


def demo_settings(workdir: Path, imap: ImapAccount, smtp_url: str) -> Settings:
    mailbox = MailboxSettings(
        name=MAILBOX, host="127.0.0.1", port=imap.port, security="plain", username=imap.user,
        password=imap.password, processed_folder=PROCESSED, quarantine_folder=QUARANTINE,
    )  # fmt: skip
    return Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'mailtickets.db'}",
        data_dir=workdir / "data",
        smtp_url=smtp_url,
        support_address=demo_mail.SUPPORT,
        secret_key=secrets.token_hex(16),
        notify_new_tickets_to=[demo_mail.DISPATCH],
        mailboxes=[mailbox],
        imap_url=None,
        lmtp_bind=None,
        http_bind=f"127.0.0.1:{free_port()}",
    )


@asynccontextmanager
async def embedded() -> AsyncIterator[Embedded]:
    """Start the servers, the store and the service; stop them all on exit."""
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(TemporaryDirectory(prefix="mailtickets-demo-")))
        sink = SmtpSink()
        sink.start()
        stack.callback(sink.stop)
        imap = ImapAccount(free_port(), "support", secrets.token_urlsafe(12))
        await start_pymap(stack, imap)
        await asyncio.to_thread(ImapClient(imap).create, PROCESSED, QUARANTINE)
        settings = demo_settings(workdir, imap, sink.url)
        await asyncio.to_thread(upgrade, settings.database_url)
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        await seed_directory(sessions)
        world = Embedded(settings, sessions, DemoClock(behind=demo_advance(settings)), imap, sink, asyncio.Event())
        service = asyncio.create_task(app.run(settings, world.stop, world.clock))
        try:
            yield world
        finally:
            world.stop.set()
            await service


def demo_advance(settings: Settings) -> timedelta:
    """How far work_tickets moves the clock: past the chaser, then past the closure (an hour each)."""
    return timedelta(hours=settings.autoclose_close_hours + 2)


def describe_setup(settings: Settings) -> list[str]:
    """What the demo set up, said first, so the tables that follow can be read."""
    contacts = ", ".join(f"{name} <{email}>" for name, email in demo_mail.CONTACTS)
    return [
        "The demo set up, on embedded servers in a temporary folder:",
        f"  client   {demo_mail.CLIENT_NAME}, mail domain {demo_mail.CLIENT_DOMAIN}",
        f"  contacts {contacts}",
        f"  agent    {demo_mail.AGENT[0]} <{demo_mail.AGENT[1]}>",
        f"  support  {settings.support_address}: an IMAP mailbox it watches; notifications go to an SMTP sink,",
        f"           new tickets also to {', '.join(settings.notify_new_tickets_to)}",
        "",
    ]


async def seed_directory(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        client = await create_client(session, demo_mail.CLIENT_NAME, [demo_mail.CLIENT_DOMAIN])
        for name, email in demo_mail.CONTACTS:
            await create_contact(session, {"name": name, "email": email, "client_id": client.id})
        await create_agent(session, *demo_mail.AGENT)


async def run_demo(world: Embedded, echo: Echo) -> DemoReport:
    """Deliver the scripted mail, work the tickets, and report what came in and what went out."""
    for line in describe_setup(world.settings):
        echo(line)
    now = world.clock.now
    delivered = [await deliver(world, demo_mail.new_request(now()), echo)]
    ack = await wait_for_mail_to(world, demo_mail.CONTACTS[0][1])
    for mail in (
        demo_mail.reply_to_acknowledgement(ack, now()),
        demo_mail.colleague(now()),
        demo_mail.stranger(now()),
        demo_mail.out_of_office(now()),
    ):
        delivered.append(await deliver(world, mail, echo))
    await work_tickets(world, delivered, echo)
    await flush_outbox(world)
    return DemoReport(delivered, await ticket_rows(world.sessions), await sent_mail(world))


async def deliver(world: Embedded, mail: demo_mail.DemoMail, echo: Echo) -> Delivered:
    """APPEND to the watched mailbox, then wait for the service to commit the message's outcome."""
    echo(f"delivering: {mail.label} …")
    await asyncio.to_thread(ImapClient(world.imap).append, "INBOX", mail.raw)
    async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
        while (found := await _outcome(world.sessions, mail.message_id)) is None:
            await asyncio.sleep(POLL_SECONDS)
    record, ticket = found
    result = Delivered(
        mail.label, record.sender or "", record.subject or "", record.outcome.value, ticket, record.reason
    )
    if result.outcome != mail.expected:
        log.warning("demo: %s ended %s, expected %s", mail.label, result.outcome, mail.expected)
    return result


async def _outcome(
    sessions: async_sessionmaker[AsyncSession], message_id: str
) -> tuple[InboundMail, str | None] | None:
    ids = [message_id, message_id.strip("<>")]
    async with sessions() as session:
        record = await session.scalar(select(InboundMail).where(InboundMail.message_id.in_(ids)))
        if record is None:
            return None
        ticket = await session.get(Ticket, record.ticket_id) if record.ticket_id else None
        return record, ticket.reference if ticket else None


async def wait_for_mail_to(world: Embedded, recipient: str) -> EmailMessage:
    async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
        while True:
            await deliver_due(world.settings, world.sessions, world.clock)
            for rcpt, message in world.sink.handler.messages():
                if rcpt == recipient:
                    return message
            await asyncio.sleep(POLL_SECONDS)


async def work_tickets(world: Embedded, delivered: list[Delivered], echo: Echo) -> None:
    """Assign the first ticket; let the second go quiet in auto-close until the chaser and closure."""
    first, second = (d.ticket for d in delivered if d.outcome == "created")
    if first is None or second is None:
        raise RuntimeError("the demo's two new requests did not both become tickets")
    s, clock = world.settings, world.clock
    async with transaction(world.sessions) as session:
        events = await lifecycle.assign(session, s, clock.now(), first, demo_mail.AGENT[1])
        events += await lifecycle.set_status(session, s, clock.now(), second, "auto-close")
        await enqueue_notifications(session, s, clock, events)
    echo(f"assigned {first} to {demo_mail.AGENT[1]}; {second} set to auto-close")
    for hours in (s.autoclose_chaser_hours, s.autoclose_close_hours - s.autoclose_chaser_hours):
        await flush_outbox(world)
        clock.advance(timedelta(hours=hours + 1))
        report = await run_autoclose_once(s, world.sessions, clock)
        echo(f"clock +{hours + 1:.0f} h: auto-close sent {len(report.chasers)} chaser(s), closed {len(report.closed)}")


async def flush_outbox(world: Embedded) -> None:
    """Deliver every pending notification now (the service's sender would within seconds)."""
    async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
        while await _pending(world.sessions):
            await deliver_due(world.settings, world.sessions, world.clock)
            await asyncio.sleep(POLL_SECONDS)


async def _pending(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(OutboxMail).where(OutboxMail.state == OutboxState.PENDING)
        return int(await session.scalar(query) or 0)


async def sent_mail(world: Embedded) -> list[Sent]:
    """What reached the SMTP sink, with the kind of notification its outbox row recorded."""
    async with world.sessions() as session:
        kinds = dict((await session.execute(select(OutboxMail.message_id, OutboxMail.kind))).tuples().all())
    return [
        Sent(rcpt, kinds.get(str(message["Message-ID"]).strip("<>"), "?"), str(message["Subject"] or ""))
        for rcpt, message in world.sink.handler.messages()
    ]

"""Shared by the agent-mail tests: the fixture world with a trusted MTA, a real SMTP sink, and mail from Dan."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.ingest.result import IngestResult
from mailtickets.models import Ticket, TicketMessage
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.notify.sender import deliver_due
from mailtickets.tickets import lifecycle
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import SmtpSink, notify_settings
from tests.world import build_world

TRUSTED_MTA = "mx.helpdesk.example"
DAN = "Dan Agent <dan@helpdesk.example>"
DMARC_PASS = f"{TRUSTED_MTA}; dkim=pass header.d=helpdesk.example; dmarc=pass header.from=helpdesk.example"
# A client's mail as the trusted MTA sees it: with trusted authserv-ids configured, mail without is nobody's.
ALICE_PASSES = {"Authentication-Results": f"{TRUSTED_MTA}; dmarc=pass header.from=acme.example"}
QUOTED = "\n\nOn Mon, 5 Jan 2026 at 09:00, Alice Able <alice@acme.example> wrote:\n> the printer is on fire\n> help"


@dataclass
class Desk:
    """The fixture world (TCK-1 open for Alice, agent Dan) whose notifications reach a real SMTP sink."""

    store: Store
    sink: SmtpSink

    async def ingest(self, raw: bytes) -> IngestResult:
        return await self.store.pipeline().ingest(raw, "test")

    async def deliver(self) -> list[EmailMessage]:
        """Send what is due and return the mails that arrived since the last call."""
        before = len(self.sink.handler.received)
        await deliver_due(self.store.settings, self.store.sessions, self.store.clock)
        return self.sink.handler.messages()[before:]

    async def assign_to_dan(self, reference: str = "TCK-1") -> EmailMessage:
        """Assign the ticket to Dan and return the "assigned" mail he gets (with its per-agent Message-ID)."""
        settings, clock = self.store.settings, self.store.clock
        async with transaction(self.store.sessions) as session:
            events = await lifecycle.assign(session, settings, clock.now(), reference, "dan@helpdesk.example")
            await enqueue_notifications(session, settings, clock, events)
        (mail,) = await self.deliver()
        assert mail["To"].addresses[0].addr_spec == "dan@helpdesk.example"
        return mail

    async def ticket(self, reference: str = "TCK-1") -> Ticket:
        number = int(reference.rpartition("-")[2])
        async with self.store.sessions() as session:
            return (await session.scalars(select(Ticket).where(Ticket.number == number))).one()

    async def messages(self, reference: str = "TCK-1") -> list[TicketMessage]:
        ticket = await self.ticket(reference)
        async with self.store.sessions() as session:
            query = select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
            return list(await session.scalars(query))


async def make_desk(store: Store, sink: SmtpSink, **settings: object) -> Desk:
    await build_world(store.sessions, store.clock)
    values: dict[str, object] = {
        "smtp_url": sink.url,
        "notify_new_tickets_to": [],
        "trusted_authserv_ids": [TRUSTED_MTA, "mx.google.com"],
        **settings,
    }
    store.settings = notify_settings(store.settings, **values)
    return Desk(store, sink)


def from_dan(
    body: str,
    *,
    sender: str = DAN,
    subject: str = "Re: [TCK-1] Printer on fire",
    authentication: str | None = DMARC_PASS,
    in_reply_to: str | None = None,
    message_id: str = "<dan-1@helpdesk.example>",
    to: str = "support@helpdesk.example",
    **extra: object,
) -> bytes:
    headers = {"Authentication-Results": authentication} if authentication else {}
    headers.update(extra.pop("headers", {}))  # type: ignore[arg-type]
    return make_message(
        sender=sender,
        to=to,
        subject=subject,
        body=body,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=in_reply_to,
        headers=headers,
        **extra,  # type: ignore[arg-type]
    )


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[no-any-return]

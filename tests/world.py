"""The world the fixture messages are written against (see tests/fixtures/eml/expected.toml)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import Clock
from mailtickets.models import (
    Agent,
    Client,
    ClientDomain,
    Contact,
    Direction,
    Ticket,
    TicketCounter,
    TicketMessage,
    TicketStatus,
)


async def build_world(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    now = clock.now()
    async with sessions() as session, session.begin():
        acme = Client(
            name="Acme Corp", domains=[ClientDomain(domain="acme.example"), ClientDomain(domain="acme.co.uk")]
        )
        globex = Client(name="Globex", domains=[ClientDomain(domain="globex.example")])
        mueller = Client(name="Müller GmbH", domains=[ClientDomain(domain="mueller.example")])
        session.add_all([acme, globex, mueller])
        await session.flush()
        alice = Contact(client_id=acme.id, name="Alice Able", email="alice@acme.example")
        bob = Contact(client_id=acme.id, name="Bob Brown", email="bob@acme.example")
        carol = Contact(client_id=globex.id, name="Carol Chen", email="carol@globex.example")
        juergen = Contact(client_id=mueller.id, name="Jürgen Müller", email="juergen@mueller.example")
        session.add_all([alice, bob, carol, juergen, Agent(name="Dan Agent", email="dan@helpdesk.example")])
        await session.flush()
        t1 = _ticket(1, "Printer on fire", acme.id, alice.id, TicketStatus.OPEN, now)
        t2 = _ticket(2, "VPN down", acme.id, bob.id, TicketStatus.CLOSED, now, closed_days=2)
        t3 = _ticket(3, "Old laptop", globex.id, carol.id, TicketStatus.CLOSED, now, closed_days=30)
        session.add_all([t1, t2, t3, TicketCounter(prefix="TCK-", last_number=3)])
        await session.flush()
        session.add_all(
            [
                _message(t1, "printer-1@acme.example", "alice@acme.example", ["support@helpdesk.example"], [], now),
                _message(
                    t1,
                    "TCK-1.ack@helpdesk.example",
                    "support@helpdesk.example",
                    ["alice@acme.example"],
                    ["erin@partner.example"],
                    now,
                    Direction.OUTBOUND,
                ),
                _message(t2, "vpn-2@acme.example", "bob@acme.example", ["support@helpdesk.example"], [], now),
                _message(t3, "laptop-3@globex.example", "carol@globex.example", ["support@helpdesk.example"], [], now),
            ]
        )


def _ticket(number: int, subject: str, client_id: int, contact_id: int, status: TicketStatus, now, closed_days=None):  # type: ignore[no-untyped-def]
    closed_at = now - timedelta(days=closed_days) if closed_days is not None else None
    return Ticket(
        prefix="TCK-",
        number=number,
        subject=subject,
        description="",
        client_id=client_id,
        contact_id=contact_id,
        status=status,
        created_at=now - timedelta(days=40),
        updated_at=now,
        closed_at=closed_at,
    )


def _message(ticket, message_id, author, to, cc, now, direction=Direction.INBOUND):  # type: ignore[no-untyped-def]
    return TicketMessage(
        ticket_id=ticket.id,
        direction=direction,
        public=True,
        author_email=author,
        message_id=message_id,
        subject=ticket.subject,
        to_addresses=to,
        cc_addresses=cc,
        body_text="(seed)",
        body_text_new="(seed)",
        created_at=now - timedelta(days=35),
    )

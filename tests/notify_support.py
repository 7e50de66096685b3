"""Shared by the notification, lifecycle and auto-close tests: a migrated SQLite store, seeded tickets,
and a real SMTP sink (aiosmtpd on 127.0.0.1) that records what arrives on the wire."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import ManualClock
from mailtickets.db import transaction
from mailtickets.models import Agent, Contact, Direction, Ticket, TicketMessage, TicketStatus
from mailtickets.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notify_settings(settings: Settings, **overrides: Any) -> Settings:
    """The shared store's settings plus a distribution list and whatever the test overrides."""
    values: dict[str, Any] = {"notify_new_tickets_to": ["team@corp.example"], **overrides}
    return settings.model_copy(update=values)


@dataclass
class Seeded:
    ticket_id: int
    reference: str
    message_id: int
    contact_id: int | None
    agent_id: int


async def seed_ticket(
    sessions: async_sessionmaker[AsyncSession],
    number: int = 12,
    contact_email: str | None = "zoe@client.example",
    subject: str = "Printer on fire",
    status: TicketStatus = TicketStatus.OPEN,
    agent_email: str = "ana@corp.example",
) -> Seeded:
    async with transaction(sessions) as session:
        contact = await _contact(session, contact_email) if contact_email else None
        agent = await _agent(session, agent_email)
        ticket = Ticket(prefix="TCK-", number=number, subject=subject, status=status, contact=contact)
        session.add(ticket)
        await session.flush()
        first = TicketMessage(
            ticket_id=ticket.id,
            direction=Direction.INBOUND,
            author_email=contact_email or "someone@client.example",
            message_id=f"client-{number}@client.example",
            subject=subject,
            body_text="Hello,\nthe printer is on fire. Grüße!",
            body_text_new="Hello,\nthe printer is on fire. Grüße!",
        )
        session.add(first)
        await session.flush()
        return Seeded(ticket.id, ticket.reference, first.id, contact.id if contact else None, agent.id)


async def _contact(session: AsyncSession, email: str) -> Contact:
    contact = await session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        contact = Contact(name="Zoë Müller", email=email)
        session.add(contact)
        await session.flush()
    return contact


async def _agent(session: AsyncSession, email: str) -> Agent:
    agent = await session.scalar(select(Agent).where(Agent.email == email))
    if agent is None:
        agent = Agent(name="Ana Agent", email=email)
        session.add(agent)
        await session.flush()
    return agent


@dataclass
class SinkHandler:
    """Records every message; `fail_with` makes RCPT answer with that SMTP reply instead."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    fail_with: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.fail_with is not None:
            return self.fail_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), raw))
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.received]


@dataclass
class World:
    """A store with one seeded ticket and notification settings, for lifecycle and auto-close tests."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: ManualClock
    ticket: Seeded


class SmtpSink:
    """aiosmtpd on 127.0.0.1 in its own thread; start/stop to simulate the server going down."""

    def __init__(self, port: int | None = None, login: tuple[str, str] | None = None) -> None:
        self.handler = SinkHandler()
        self.port = port or free_port()
        self.login = login  # when set, AUTH with exactly these credentials is required
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        extra: dict[str, Any] = {}
        if self.login is not None:
            extra = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        wanted = tuple(x.encode() for x in self.login or ("", ""))
        return AuthResult(success=isinstance(data, LoginPassword) and (data.login, data.password) == wanted)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

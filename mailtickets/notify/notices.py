"""Mail to an agent about their own mail that we did not take (unauthenticated, a refused command).

Not about a ticket the agent works on, so not planned like the other notifications: one automatic answer
(``Auto-Submitted: auto-replied``) to the agent's own address, under the same rate limits as every
automatic mail, so an autoresponder on the agent's side cannot ping-pong with us.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.clock import Clock
from mailtickets.models import Agent, OutboxMail, OutboxState
from mailtickets.notify import guard
from mailtickets.notify.message import OutgoingMail, to_bytes
from mailtickets.notify.msgid import make_message_id
from mailtickets.notify.templates import MailContext, TicketView, cached_environment, render
from mailtickets.settings import Settings
from mailtickets.tickets.events import AgentMailRefused

log = logging.getLogger(__name__)

REFUSED_KIND = "agent_refused"
NOTICE_REF = "agent-mail"  # stands for the ticket reference in the notice's signed Message-ID


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A planned mail that was not queued, and why."""

    ticket_id: int
    kind: str
    reason: str
    rate_limited: bool  # a temporary reason: the same mail may go out once the window has passed


def redact(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def sender_name(agent_name: str, settings: Settings) -> str:
    """How an agent's reply is signed on the wire: "Dan via Support" (the first name, then our name)."""
    first = agent_name.split()[0] if agent_name.split() else ""
    return f"{first} via {settings.support_display_name}" if first else settings.support_display_name


async def enqueue_refusal(
    session: AsyncSession, settings: Settings, clock: Clock, event: AgentMailRefused
) -> None:
    """Queue the notice to the agent, unless a guard holds it back (then only logged)."""
    from mailtickets.notify.outbox import recent_counts  # outbox imports this module for its other mail

    agent = await session.get(Agent, event.agent_id)
    if agent is None:
        return
    address, now = agent.email.lower(), clock.now()
    reason = guard.suppression_reason(address, settings, automatic=True, internal=True)
    if reason is None:
        counts = await recent_counts(session, settings, address, event.ticket_id or 0, now)
        reason = guard.rate_limit_reason(counts, settings)
    if reason is not None:
        log.info("notice %s to %s suppressed: %s", REFUSED_KIND, redact(address), reason)
        return
    context = MailContext(
        ticket=TicketView("", event.subject, "", ""),
        support_address=settings.support_address,
        recipient_name=agent.name,
        agent_name=agent.name,
        message_text=event.reason,
    )
    rendered = render(cached_environment(settings.templates_dir), REFUSED_KIND, context)
    mail = OutgoingMail(
        sender=settings.support_address,
        to_address=agent.email,
        to_name=agent.name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=make_message_id(NOTICE_REF, settings.secret_key, settings.own_message_id_domain),
        date=now,
        ticket_ref="",
        auto_submitted="auto-replied",
        in_reply_to=event.in_reply_to,
        references=(event.in_reply_to,) if event.in_reply_to else (),
    )
    session.add(
        OutboxMail(
            kind=REFUSED_KIND,
            ticket_id=event.ticket_id,
            recipient=address,
            message_id=mail.message_id,
            automatic=True,
            raw=to_bytes(mail),
            state=OutboxState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    log.info("notice %s to %s queued as %s", REFUSED_KIND, redact(address), mail.message_id)

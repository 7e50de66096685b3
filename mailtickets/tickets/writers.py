"""Who may write into a ticket. Finding the ticket (threading) grants nothing by itself.

- the ticket's contact, and the people and domains of the ticket's client (as matched, that is after
  the sender-authentication policy);
- a recipient of our mail about the ticket, naming that mail's Message-ID in In-Reply-To/References
  (a Message-ID we sent to somebody else proves nothing about the sender);
- an address in To/Cc of a message the ticket's contact sent (authenticated, where authentication is
  configured), and whoever has already been let in by one of these ways.

A sender that the trusted verdict does not authenticate (policy `unknown`, see trust/verdict.py) may
join only by the Message-ID of our mail to them. Everyone else is quarantined for release.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.match.sender import SenderMatch
from mailtickets.models import Contact, Direction, InboundMail, OutboxMail, Ticket, TicketMessage
from mailtickets.settings import Settings
from mailtickets.trust.verdict import authentication_configured


async def write_permission(
    session: AsyncSession,
    ticket: Ticket,
    sender: SenderMatch,
    answered_ids: list[str],
    settings: Settings,
    sender_trusted: bool,
) -> str | None:
    """Why the sender may write into `ticket` ("the ticket's contact", ...), or None when they may not."""
    if sender.known and sender.contact is not None and sender.contact.id == ticket.contact_id:
        return "the ticket's contact"
    if sender.known and ticket.client_id is not None and sender.client_id == ticket.client_id:
        return "of the ticket's client"
    if await received_our_mail(session, ticket.id, sender.address, answered_ids):
        return "a recipient of our mail about the ticket"
    if not sender_trusted:  # a forged address of a participant must not get in by that address
        return None
    if sender.address in await participants(session, ticket, require_authenticated=authentication_configured(settings)):
        return "a participant"
    return None


async def received_our_mail(session: AsyncSession, ticket_id: int, address: str, answered_ids: list[str]) -> bool:
    """Does the message answer a mail we sent about this ticket to this very address?"""
    if not answered_ids:
        return False
    queued = await session.scalar(
        select(OutboxMail.id).where(
            OutboxMail.ticket_id == ticket_id,
            OutboxMail.message_id.in_(answered_ids),
            OutboxMail.recipient == address,
        )
    )
    if queued is not None:
        return True
    rows = await session.execute(
        select(TicketMessage.to_addresses, TicketMessage.cc_addresses).where(
            TicketMessage.ticket_id == ticket_id,
            TicketMessage.direction == Direction.OUTBOUND,
            TicketMessage.message_id.in_(answered_ids),
        )
    )
    return any(address in _lowered([*(to or []), *(cc or [])]) for to, cc in rows)


async def participants(session: AsyncSession, ticket: Ticket, *, require_authenticated: bool) -> set[str]:
    """Authors of the ticket's inbound messages, and the To/Cc of those its contact sent."""
    rows = await session.execute(
        select(
            TicketMessage.author_email,
            TicketMessage.contact_id,
            TicketMessage.to_addresses,
            TicketMessage.cc_addresses,
            InboundMail.authenticated,
        )
        .outerjoin(InboundMail, TicketMessage.inbound_mail_id == InboundMail.id)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == Direction.INBOUND)
    )
    contact_email = await session.scalar(select(Contact.email).where(Contact.id == ticket.contact_id))
    found: set[str] = set()
    for author, contact_id, to, cc, authenticated in rows:
        if author:
            found.add(author.lower())
        by_address = contact_email is not None and (author or "").lower() == contact_email.lower()
        from_contact = (ticket.contact_id is not None and contact_id == ticket.contact_id) or by_address
        if from_contact and (authenticated is True or not require_authenticated):
            found.update(_lowered([*(to or []), *(cc or [])]))
    return found


def _lowered(addresses: list[object]) -> set[str]:
    return {str(a).lower() for a in addresses}

"""Read-only views of tickets as plain JSON-ready dicts, shared by the CLI and the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.models import Attachment, AuthorRole, Contact, Direction, Ticket, TicketMessage
from mailtickets.tickets.service import ticket_by_reference


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "ref": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "category": ticket.category,
        "tags": list(ticket.tags or []),
        "client": ticket.client.name if ticket.client else None,
        "client_id": ticket.client_id,
        "contact_id": ticket.contact_id,
        "assigned_agent": ticket.assigned_agent.email if ticket.assigned_agent else None,
        "merged_into_id": ticket.merged_into_id,
        "linked_ticket_id": ticket.linked_ticket_id,
        "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
        "updated_at": ticket.updated_at.isoformat() if ticket.updated_at else None,
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
    }


def contact_summary(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        "id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "client": contact.client.name if contact.client else None,
    }


def attachment_view(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "inline": attachment.inline,
        "content_id": attachment.content_id,
    }


def author_role(message: TicketMessage) -> AuthorRole:
    """As stored; rows written before the role was recorded: inbound is the client's, outbound with an agent an
    agent's reply, the rest our notifications."""
    if message.author_role is not None:
        return message.author_role
    if message.direction == Direction.INBOUND:
        return AuthorRole.CLIENT
    return AuthorRole.AGENT if message.agent_id is not None else AuthorRole.SYSTEM


def message_view(message: TicketMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction.value,
        "public": message.public,
        "author_role": author_role(message).value,
        "author_name": message.author_name,
        "author_email": message.author_email,
        "message_id": message.message_id,
        "subject": message.subject,
        "to": list(message.to_addresses or []),
        "cc": list(message.cc_addresses or []),
        "body_text": message.body_text,
        "body_text_new": message.body_text_new,
        "body_html": message.body_html,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "attachments": [attachment_view(a) for a in message.attachments],
        "left_out": list(message.left_out or []),
    }


async def ticket_rows(sessions: async_sessionmaker[AsyncSession], status: str | None = None) -> list[dict[str, Any]]:
    async with sessions() as session:
        query = select(Ticket).order_by(Ticket.id.desc())
        if status:
            query = query.where(Ticket.status == status)
        return [ticket_summary(t) for t in (await session.scalars(query)).unique()]


async def ticket_detail(
    sessions: async_sessionmaker[AsyncSession], reference: str, default_prefix: str
) -> dict[str, Any]:
    async with sessions() as session:
        ticket = await ticket_by_reference(session, reference, default_prefix)
        messages = await session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
        )
        return {
            **ticket_summary(ticket),
            "description": ticket.description,
            "contact": contact_summary(ticket.contact),
            "messages": [message_view(m) for m in messages],
        }

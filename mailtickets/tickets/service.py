"""Writing tickets and their messages: the service layer the pipeline, the CLI and the API share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from mailtickets.db import Before, attach_as_loaded, connection_of, insert_row, new_row, prepare
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import (
    Attachment,
    AuthorRole,
    Direction,
    Priority,
    Ticket,
    TicketCounter,
    TicketMessage,
    TicketStatus,
)
from mailtickets.parse.message import ParsedMessage
from mailtickets.prepared import Prepared
from mailtickets.storage import FileStore

MAX_SUBJECT_CHARS = 998
NO_SUBJECT = "(no subject)"
_REFERENCE = re.compile(r"^\s*(?P<prefix>.*?)(?P<number>\d{1,9})\s*$")


@dataclass(frozen=True, slots=True)
class NewTicket:
    subject: str
    description: str
    client_id: int | None
    contact_id: int | None
    priority: Priority = Priority.MEDIUM
    category: str | None = None
    status: TicketStatus = TicketStatus.OPEN
    tags: tuple[str, ...] = ()
    assigned_agent_id: int | None = None
    linked_ticket_id: int | None = None
    suppress_acknowledgement: bool = False


@cache
def _counter_upsert(dialect: str) -> Prepared:
    """Built once per dialect (it is on every new ticket's path); the prefix is bound at execution."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    counters = TicketCounter.__table__.c
    statement: ReturningInsert[int] = (
        insert(cast(Table, TicketCounter.__table__))
        .values(prefix=bindparam("prefix"), last_number=1)
        .on_conflict_do_update(index_elements=[counters.prefix], set_={"last_number": counters.last_number + 1})
        .returning(counters.last_number)
    )
    return prepare(statement)


async def create_ticket(session: AsyncSession, prefix: str, new: NewTicket, now: datetime) -> Ticket:
    ticket = new_row(
        Ticket,
        prefix=prefix,
        subject=(new.subject.strip() or NO_SUBJECT)[:MAX_SUBJECT_CHARS],
        description=new.description,
        client_id=new.client_id,
        contact_id=new.contact_id,
        priority=new.priority,
        status=new.status,
        category=new.category,
        tags=list(new.tags),
        assigned_agent_id=new.assigned_agent_id,
        linked_ticket_id=new.linked_ticket_id,
        suppress_acknowledgement=new.suppress_acknowledgement,
        created_at=now,
        updated_at=now,
        autoclose_since=now if new.status == TicketStatus.AUTO_CLOSE else None,
        closed_at=now if new.status == TicketStatus.CLOSED else None,  # a rule may file a ticket as closed
    )
    # Its number: the per-prefix counter bumped atomically (upsert … RETURNING), so instances never clash;
    # in the statement that writes the ticket where round trips are costly. Core, not a flush: the ticket
    # is on every new ticket's path (the API's too).
    upsert = _counter_upsert((await connection_of(session)).dialect.name)
    await insert_row(session, ticket, Before(upsert, {"prefix": prefix}, "number"))
    attach_as_loaded(session, ticket)
    return ticket


def inbound_message(
    parsed: ParsedMessage, ticket: Ticket, body_text_new: str, contact_id: int | None, now: datetime
) -> TicketMessage:
    return new_row(
        TicketMessage,
        ticket_id=ticket.id,
        direction=Direction.INBOUND,
        public=True,
        author_name=parsed.sender_name or None,
        author_email=parsed.sender,
        contact_id=contact_id,
        author_role=AuthorRole.CLIENT,
        message_id=parsed.message_id,
        in_reply_to=" ".join(parsed.in_reply_to) or None,
        references=" ".join(parsed.references) or None,
        subject=parsed.subject[:MAX_SUBJECT_CHARS],
        to_addresses=list(parsed.to),
        cc_addresses=list(parsed.cc),
        body_text=parsed.text,
        body_text_new=body_text_new,
        body_html=parsed.html,
        left_out=list(parsed.left_out),
        created_at=now,
    )


async def write_message(session: AsyncSession, message: TicketMessage, before: Before | None = None) -> None:
    """Write a new message and its attachments with Core INSERTs and attach them as loaded (no flush);
    `before`: a row written just before the message (its inbound record), in the same statement if it can."""
    await insert_row(session, message, before)
    attachments = list(message.attachments)
    for attachment in attachments:
        attachment.message_id = message.id
        await insert_row(session, attachment)
    attach_as_loaded(session, message, *attachments)


def store_attachments(message: TicketMessage, parsed: ParsedMessage, files: FileStore) -> None:
    for item in parsed.attachments:
        message.attachments.append(
            new_row(
                Attachment,
                filename=item.filename,
                content_type=item.content_type[:255],
                size=item.size,
                sha256=item.stored.sha256 if item.stored else files.put(item.payload),  # stored: by the parse worker
                content_id=item.content_id,
                inline=item.inline,
            )
        )


def split_reference(reference: str, default_prefix: str) -> tuple[str, int]:
    """ "TCK-12" → ("TCK-", 12); a bare "12" takes the configured prefix."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise InvalidInput(f"not a ticket reference: {reference!r}", {"ticket": "expected e.g. TCK-12"})
    return (match.group("prefix") or default_prefix), int(match.group("number"))


async def ticket_by_reference(session: AsyncSession, reference: str, default_prefix: str) -> Ticket:
    prefix, number = split_reference(reference, default_prefix)
    # Case-insensitive, as people type them (`tck-12`) and as threading reads them from subjects.
    query = select(Ticket).where(Ticket.number == number, func.upper(Ticket.prefix) == prefix.upper())
    ticket = await session.scalar(query)
    if ticket is None:
        raise NotFound(f"no ticket {prefix.upper()}{number}")
    return ticket

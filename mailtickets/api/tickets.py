"""/api/v1/tickets: list, show with messages and attachments, download, create, update, reply, merge.

Changes go through `mailtickets.tickets.lifecycle`; the events they return are handed to the outbox
in the same transaction, so a reply typed here is mailed exactly like one from the CLI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.api.contacts import as_utc
from mailtickets.api.deps import AppContext, CallerDep, Context, JsonObject, Limit, Offset, RowId, body_of
from mailtickets.api.errors import ERROR_RESPONSES
from mailtickets.api.ticket_schemas import (
    MergeRequest,
    MessageOut,
    ReplyCreate,
    Status,
    TicketCreate,
    TicketDetail,
    TicketOut,
    TicketPage,
    TicketUpdate,
)
from mailtickets.db import transaction
from mailtickets.directory.validation import ID_MAX, parse_model
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Agent, Attachment, Client, Contact, Priority, Ticket, TicketMessage
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.storage import FileStore
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketAssigned, TicketCreated, TicketEvent
from mailtickets.tickets.service import NewTicket, create_ticket, ticket_by_reference
from mailtickets.tickets.views import contact_summary, message_view, ticket_summary

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=ERROR_RESPONSES)
Ref = Annotated[str, Path(min_length=1, max_length=64, description="e.g. TCK-12, or 12 for the default prefix")]
OptionalId = Annotated[int | None, Query(ge=1, le=ID_MAX)]


@router.get("", response_model=TicketPage)
async def list_tickets(
    context: Context,
    _caller: CallerDep,
    status: Status | None = None,
    client_id: OptionalId = None,
    contact_id: OptionalId = None,
    assigned_agent_id: OptionalId = None,
    updated_since: datetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TicketPage:
    """Tickets matching every filter given, newest first."""
    query = select(Ticket)
    for column, value in (
        (Ticket.status, status),
        (Ticket.client_id, client_id),
        (Ticket.contact_id, contact_id),
        (Ticket.assigned_agent_id, assigned_agent_id),
    ):
        if value is not None:
            query = query.where(column == value)
    since = as_utc(updated_since)
    if since is not None:
        query = query.where(Ticket.updated_at >= since)
    async with transaction(context.sessions) as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = await session.scalars(query.order_by(Ticket.id.desc()).limit(limit).offset(offset))
        data = [TicketOut.model_validate(ticket_summary(t)) for t in rows.unique()]
    return TicketPage(data=data, total=total, limit=limit, offset=offset)


@router.get("/{ref}", response_model=TicketDetail)
async def get_ticket(context: Context, _caller: CallerDep, ref: Ref) -> TicketDetail:
    async with transaction(context.sessions) as session:
        ticket = await ticket_by_reference(session, ref, context.settings.ticket_prefix)
        return await _detail(session, ticket)


@router.get(
    "/{ref}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}},
)
async def download_attachment(context: Context, _caller: CallerDep, ref: Ref, attachment_id: RowId) -> Response:
    """The attachment's bytes from the content-addressed store, as a download."""
    async with transaction(context.sessions) as session:
        ticket = await ticket_by_reference(session, ref, context.settings.ticket_prefix)
        attachment = await session.scalar(
            select(Attachment)
            .join(TicketMessage, Attachment.message_id == TicketMessage.id)
            .where(Attachment.id == attachment_id, TicketMessage.ticket_id == ticket.id)
        )
    if attachment is None:
        raise NotFound(f"{ticket.reference} has no attachment {attachment_id}")
    files = FileStore(context.settings.attachments_dir)
    if not files.exists(attachment.sha256):
        raise NotFound(f"the file of attachment {attachment_id} is missing from the store")
    disposition = content_disposition(attachment.filename)
    return Response(
        files.get(attachment.sha256),
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition, "X-Content-Type": attachment.content_type},
    )


@router.post("", status_code=201, response_model=TicketDetail, openapi_extra=body_of(TicketCreate))
async def create(context: Context, _caller: CallerDep, data: JsonObject, response: Response) -> TicketDetail:
    """A ticket for a call taken by phone; the contact gets the same acknowledgement as for mail."""
    fields = parse_model(TicketCreate, data, "ticket")
    now = context.clock.now()
    async with transaction(context.sessions) as session:
        new = await _new_ticket(session, fields)
        ticket = await create_ticket(session, context.settings.ticket_prefix, new, now)
        await session.refresh(ticket, ["client", "contact", "assigned_agent"])  # notifications read them
        events: list[TicketEvent] = [TicketCreated(ticket.id, None, acknowledge=fields.acknowledge)]
        if new.assigned_agent_id is not None:  # the agent hears about it, as for mail assigned by a rule
            events.append(TicketAssigned(ticket.id, new.assigned_agent_id, previous_agent_id=None))
        await enqueue_notifications(session, context.settings, context.clock, events)
        detail = await _detail(session, ticket)
    response.headers["Location"] = f"/api/v1/tickets/{detail.ref}"
    return detail


@router.patch("/{ref}", response_model=TicketDetail, openapi_extra=body_of(TicketUpdate))
async def update(context: Context, _caller: CallerDep, ref: Ref, data: JsonObject) -> TicketDetail:
    """Change status, priority or assignee; omitted fields stay, assigned_agent null unassigns.

    404 only for an unknown ticket in the URL; an unknown agent in the body is 422 naming the field.
    """
    fields = parse_model(TicketUpdate, data, "ticket update")
    settings, now = context.settings, context.clock.now()
    async with transaction(context.sessions) as session:
        ticket = await ticket_by_reference(session, ref, settings.ticket_prefix)
        await _require_agent(session, "assigned_agent", fields.assigned_agent)
        events: list[TicketEvent] = []
        if fields.priority is not None:
            events += await lifecycle.set_priority(session, settings, now, ticket.reference, fields.priority)
        if "assigned_agent" in fields.model_fields_set:
            events += await _assign(session, context, ticket, fields.assigned_agent)
        if fields.status is not None:
            events += await lifecycle.set_status(session, settings, now, ticket.reference, fields.status)
        await enqueue_notifications(session, settings, context.clock, events)
        await session.flush()
        await session.refresh(ticket)
        return await _detail(session, ticket)


@router.post("/{ref}/replies", status_code=201, response_model=MessageOut, openapi_extra=body_of(ReplyCreate))
async def reply(context: Context, _caller: CallerDep, ref: Ref, data: JsonObject) -> MessageOut:
    """A public reply (mailed to the client) or, with private true, an internal note."""
    fields = parse_model(ReplyCreate, data, "reply")
    settings, now = context.settings, context.clock.now()
    async with transaction(context.sessions) as session:
        ticket = await ticket_by_reference(session, ref, settings.ticket_prefix)
        await _require_agent(session, "agent", fields.agent)
        events = await lifecycle.reply(
            session, settings, now, ticket.reference, fields.body, private=fields.private, agent_email=fields.agent
        )
        await enqueue_notifications(session, settings, context.clock, events)
        newest = await session.scalar(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id.desc())
        )
        if newest is None:  # lifecycle.reply has just added it in this transaction
            raise NotFound(f"the reply on {ticket.reference} vanished")
        return MessageOut.model_validate(message_view(newest))


@router.post("/{ref}/merge", response_model=TicketDetail, openapi_extra=body_of(MergeRequest))
async def merge(context: Context, _caller: CallerDep, ref: Ref, data: JsonObject) -> TicketDetail:
    """Merge this ticket into `into`: its messages move there and it is closed; returns the target."""
    fields = parse_model(MergeRequest, data, "merge")
    settings, now = context.settings, context.clock.now()
    async with transaction(context.sessions) as session:
        source = await ticket_by_reference(session, ref, settings.ticket_prefix)
        target = await _merge_target(session, fields.into, settings.ticket_prefix)
        events = await lifecycle.merge(session, settings, now, source.reference, target.reference)
        await enqueue_notifications(session, settings, context.clock, events)
        return await _detail(session, target)


async def _detail(session: AsyncSession, ticket: Ticket) -> TicketDetail:
    messages = await session.scalars(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
    )
    view: dict[str, Any] = {
        **ticket_summary(ticket),
        "description": ticket.description,
        "contact": contact_summary(ticket.contact),
        "messages": [message_view(m) for m in messages],
    }
    return TicketDetail.model_validate(view)


async def _new_ticket(session: AsyncSession, fields: TicketCreate) -> NewTicket:
    """The ticket to create, with its contact, client and agent checked (every bad one reported)."""
    errors: dict[str, str] = {}
    client_id = fields.client_id
    if fields.contact_id is not None:
        contact = await session.get(Contact, fields.contact_id)
        if contact is None:
            errors["contact_id"] = f"no contact with id {fields.contact_id}"
        elif client_id is None:
            client_id = contact.client_id
        elif contact.client_id not in (None, client_id):
            errors["client_id"] = f"contact {contact.id} belongs to client {contact.client_id}, not {client_id}"
    if fields.client_id is not None and await session.get(Client, fields.client_id) is None:
        errors["client_id"] = f"no client with id {fields.client_id}"  # says more than a mismatch
    agent_id = None
    if fields.assigned_agent is not None:
        agent = await _agent_by_email(session, fields.assigned_agent)
        agent_id = agent.id if agent is not None else None
        if agent is None:
            errors["assigned_agent"] = f"no active agent {fields.assigned_agent}"
    if errors:
        raise InvalidInput("the ticket is not valid", errors)
    return NewTicket(
        subject=fields.subject,
        description=fields.description,
        client_id=client_id,
        contact_id=fields.contact_id,
        priority=Priority(fields.priority),
        category=fields.category,
        assigned_agent_id=agent_id,
        suppress_acknowledgement=not fields.acknowledge,
    )


async def _agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    agent = await session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    return agent if agent is not None and agent.active else None


async def _require_agent(session: AsyncSession, field: str, email: str | None) -> None:
    """An agent named in the body must exist and be active: 422 naming the field (404 is for the URL)."""
    if email is not None and await _agent_by_email(session, email) is None:
        raise InvalidInput("the request is not valid", {field: f"no active agent {email}"})


async def _merge_target(session: AsyncSession, into: str, prefix: str) -> Ticket:
    try:
        return await ticket_by_reference(session, into, prefix)
    except (NotFound, InvalidInput) as exc:
        raise InvalidInput("the merge is not valid", {"into": str(exc)}) from exc


async def _assign(session: AsyncSession, context: AppContext, ticket: Ticket, email: str | None) -> list[TicketEvent]:
    if email is None:
        ticket.assigned_agent = None  # lifecycle has no "unassign": nobody is told about it
        return []
    return await lifecycle.assign(session, context.settings, context.clock.now(), ticket.reference, email)


def content_disposition(filename: str) -> str:
    # RFC 6266: an ASCII fallback plus the UTF-8 name percent-encoded (RFC 5987).
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"

"""/admin/tickets: filtered, paged list; a ticket's thread (public and private, attachments); reply,
note, assign, status, priority, merge and close through the same lifecycle as the API and the CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.api.tickets import content_disposition
from mailtickets.console.auth import User
from mailtickets.console.web import PAGE_SIZE, ConsoleRoute, form_of, page_of, redirect, render, text
from mailtickets.db import transaction
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Agent, Attachment, Client, Priority, Ticket, TicketMessage, TicketStatus
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.storage import FileStore
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketEvent
from mailtickets.tickets.service import split_reference, ticket_by_reference

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
Ref = Annotated[str, Path(min_length=1, max_length=64)]
FILTERS = ("status", "client", "agent", "q", "before")
Change = Callable[[AsyncSession, Ticket], Awaitable[list[TicketEvent]]]


def _conditions(f: dict[str, str], prefix: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f["status"] in {s.value for s in TicketStatus}:
        where.append(Ticket.status == TicketStatus(f["status"]))
    if f["client"].isdigit():
        where.append(Ticket.client_id == int(f["client"]))
    if f["agent"].isdigit():
        where.append(Ticket.assigned_agent_id == int(f["agent"]))
    if f["q"]:
        where.append(_text_condition(f["q"], prefix))
    if f["before"].isdigit():
        where.append(Ticket.id < int(f["before"]))
    return where


def _text_condition(q: str, prefix: str) -> ColumnElement[bool]:
    """A reference (TCK-12, tck-12, 12) finds that ticket by its unique key; other text searches the subject."""
    try:
        ref_prefix, number = split_reference(q, prefix)
    except InvalidInput:
        ref_prefix, number = "", 0
    if ref_prefix.casefold() != prefix.casefold():  # "printer 42" is words, not a reference
        return func.lower(Ticket.subject).contains(q.lower(), autoescape=True)
    return (Ticket.prefix == prefix) & (Ticket.number == number)


@router.get("/tickets")
async def ticket_list(request: Request, context: Context, user: User) -> HTMLResponse:
    f = {key: request.query_params.get(key, "").strip()[:200] for key in FILTERS}
    query = select(Ticket).where(*_conditions(f, context.settings.ticket_prefix))
    async with context.sessions() as session:
        rows = list((await session.scalars(query.order_by(Ticket.id.desc()).limit(PAGE_SIZE + 1))).unique())
        choices = await _choices(session)
    page = page_of(rows, key=lambda ticket: ticket.id)
    statuses = [s.value for s in TicketStatus]
    values = {"query": f, "page": page, "statuses": statuses, **choices}
    return render(request, "tickets.html", user=user, section="tickets", **values)


async def _choices(session: AsyncSession) -> dict[str, Any]:
    agents = list(await session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name).limit(500)))
    clients = list((await session.execute(select(Client.id, Client.name).order_by(Client.name).limit(500))).all())
    return {"agents": agents, "clients": clients}


@router.get("/tickets/{ref}")
async def ticket_detail(request: Request, context: Context, user: User, ref: Ref) -> HTMLResponse:
    async with context.sessions() as session:
        ticket = await ticket_by_reference(session, ref, context.settings.ticket_prefix)
        messages = list(
            await session.scalars(
                select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
            )
        )
        choices = await _choices(session)
    values = {"ticket": ticket, "messages": messages, "statuses": [s.value for s in TicketStatus], **choices}
    return render(
        request, "ticket.html", user=user, section="tickets", priorities=[p.value for p in Priority], **values
    )


@router.get("/tickets/{ref}/attachments/{attachment_id}")
async def attachment(context: Context, _user: User, ref: Ref, attachment_id: RowId) -> Response:
    async with context.sessions() as session:
        ticket = await ticket_by_reference(session, ref, context.settings.ticket_prefix)
        found = await session.scalar(
            select(Attachment)
            .join(TicketMessage, Attachment.message_id == TicketMessage.id)
            .where(Attachment.id == attachment_id, TicketMessage.ticket_id == ticket.id)
        )
    files = FileStore(context.settings.attachments_dir)
    if found is None or not files.exists(found.sha256):
        raise NotFound(f"{ticket.reference} has no attachment {attachment_id}")
    # Always a download, never shown inline: an HTML or SVG attachment must not run in the console's origin.
    headers = {"Content-Disposition": content_disposition(found.filename), "X-Content-Type-Options": "nosniff"}
    return Response(files.get(found.sha256), media_type="application/octet-stream", headers=headers)


async def _change(context: AppContext, ref: str, change: Change, notice: str) -> Response:
    """One change to a ticket and its notifications, in one transaction; then back to the ticket."""
    async with transaction(context.sessions) as session:
        ticket = await ticket_by_reference(session, ref, context.settings.ticket_prefix)
        events = await change(session, ticket)
        await enqueue_notifications(session, context.settings, context.clock, events)
        reference = ticket.reference
    return redirect(f"/admin/tickets/{reference}", notice)


@router.post("/tickets/{ref}/reply")
async def reply(request: Request, context: Context, user: User, ref: Ref) -> Response:
    form = await form_of(request)
    private = form.get("private") == "on"
    settings, now = context.settings, context.clock.now()

    async def change(session: AsyncSession, ticket: Ticket) -> list[TicketEvent]:
        body = str(form.get("body") or "")
        return await lifecycle.reply(
            session, settings, now, ticket.reference, body, private=private, agent_email=user.email
        )

    return await _change(context, ref, change, "Note added." if private else "Reply sent.")


@router.post("/tickets/{ref}/update")
async def update(request: Request, context: Context, user: User, ref: Ref) -> Response:
    """Assignee, status and priority from one form: only what changed is applied."""
    form = await form_of(request)
    settings, now = context.settings, context.clock.now()

    async def change(session: AsyncSession, ticket: Ticket) -> list[TicketEvent]:
        events: list[TicketEvent] = []
        agent_id = text(form, "agent")
        if agent_id.isdigit() and int(agent_id) != ticket.assigned_agent_id:
            agent = await session.get(Agent, int(agent_id))
            if agent is None:
                raise InvalidInput("no such agent", {"agent": "unknown"})
            events += await lifecycle.assign(session, settings, now, ticket.reference, agent.email)
        elif agent_id == "" and ticket.assigned_agent_id is not None:
            ticket.assigned_agent = None
        if text(form, "priority") and text(form, "priority") != ticket.priority.value:
            events += await lifecycle.set_priority(session, settings, now, ticket.reference, text(form, "priority"))
        if text(form, "status") and text(form, "status") != ticket.status.value:
            events += await lifecycle.set_status(session, settings, now, ticket.reference, text(form, "status"))
        return events

    return await _change(context, ref, change, "Ticket updated.")


@router.post("/tickets/{ref}/close")
async def close(context: Context, user: User, ref: Ref) -> Response:
    settings, now = context.settings, context.clock.now()

    async def change(session: AsyncSession, ticket: Ticket) -> list[TicketEvent]:
        return await lifecycle.close(session, settings, now, ticket.reference)

    return await _change(context, ref, change, "Ticket closed.")


@router.post("/tickets/{ref}/merge")
async def merge(request: Request, context: Context, user: User, ref: Ref) -> Response:
    into = text(await form_of(request), "into")
    settings, now = context.settings, context.clock.now()
    async with transaction(context.sessions) as session:
        source = await ticket_by_reference(session, ref, settings.ticket_prefix)
        target = await ticket_by_reference(session, into, settings.ticket_prefix)
        events = await lifecycle.merge(session, settings, now, source.reference, target.reference)
        await enqueue_notifications(session, settings, context.clock, events)
        notice, reference = f"{source.reference} merged into {target.reference}.", target.reference
    return redirect(f"/admin/tickets/{reference}", notice)

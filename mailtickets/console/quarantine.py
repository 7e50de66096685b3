"""/admin/quarantine: held mail with its reason; release (as if known, or for a client), discard, or
add the sender as a contact of a client and release, in one step."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from mailtickets import directory
from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.console.auth import ConsoleUser, User
from mailtickets.console.web import PAGE_SIZE, ConsoleDenied, ConsoleRoute, form_of, page_of, redirect, render, text
from mailtickets.db import transaction
from mailtickets.errors import InvalidInput
from mailtickets.ingest.result import IngestResult
from mailtickets.models import Client, InboundMail, QuarantineState
from mailtickets.pipeline.quarantine import discard_held, show_held
from mailtickets.storage import FileStore

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
CLIENT_CHOICES = 500  # offered in the "release to" list; any other client can be typed by name


@router.get("/quarantine")
async def quarantine_list(request: Request, context: Context, user: User) -> HTMLResponse:
    before = request.query_params.get("before", "")
    query = (
        select(InboundMail)
        .where(InboundMail.quarantine_state == QuarantineState.HELD)
        .order_by(InboundMail.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before.isdigit():
        query = query.where(InboundMail.id < int(before))
    async with context.sessions() as session:
        rows = list(await session.scalars(query))
    page = page_of(rows, key=lambda record: record.id)
    values: dict[str, Any] = {"query": {"before": before}, "page": page}
    return render(request, "quarantine.html", user=user, section="quarantine", **values)


@router.get("/quarantine/{inbound_id}")
async def quarantine_detail(request: Request, context: Context, user: User, inbound_id: RowId) -> HTMLResponse:
    async with context.sessions() as session:
        held = await show_held(session, FileStore(context.settings.raw_dir), inbound_id)
        names = list(await session.scalars(select(Client.name).order_by(Client.name).limit(CLIENT_CHOICES)))
    return render(request, "quarantine_detail.html", user=user, section="quarantine", held=held, clients=names)


@router.post("/quarantine/{inbound_id}/release")
async def release(request: Request, context: Context, user: User, inbound_id: RowId) -> Response:
    form = await form_of(request)
    client_name = text(form, "client")
    client_id = await _client_id(context, client_name) if client_name else None
    result = await context.pipeline.release(inbound_id, client_id)
    return redirect("/admin/quarantine", _released(inbound_id, result))


@router.post("/quarantine/{inbound_id}/add-contact")
async def add_contact_and_release(request: Request, context: Context, user: User, inbound_id: RowId) -> Response:
    """The sender becomes a contact of the chosen client, then the message is released as theirs."""
    _require_admin(user)
    form = await form_of(request)
    client_id = await _client_id(context, text(form, "client"))
    async with context.sessions() as session:
        held = await show_held(session, FileStore(context.settings.raw_dir), inbound_id)
    if not held["sender"]:
        raise InvalidInput("the message has no From address to add", {"sender": "missing"})
    name = text(form, "name") or held["sender"].partition("@")[0]
    async with transaction(context.sessions) as session:
        await directory.create_contact(session, {"client_id": client_id, "name": name, "email": held["sender"]})
    result = await context.pipeline.release(inbound_id, client_id)
    return redirect("/admin/quarantine", f"{held['sender']} is now a contact. " + _released(inbound_id, result))


@router.post("/quarantine/{inbound_id}/discard")
async def discard(context: Context, user: User, inbound_id: RowId) -> Response:
    async with transaction(context.sessions) as session:
        await discard_held(session, inbound_id)
    return redirect("/admin/quarantine", f"Message {inbound_id} discarded.")


def _require_admin(user: ConsoleUser) -> None:
    if not user.is_admin:
        raise ConsoleDenied("Only an admin may add contacts.")


async def _client_id(context: AppContext, name: str) -> int:
    async with context.sessions() as session:
        client = await session.scalar(select(Client).where(Client.name == name))
    if client is None:
        raise InvalidInput(f"no client named {name!r}", {"client": "unknown"})
    return client.id


def _released(inbound_id: int, result: IngestResult) -> str:
    ticket = f" {result.ticket}" if result.ticket else ""
    return f"Message {inbound_id} released: {result.outcome.value}{ticket}."

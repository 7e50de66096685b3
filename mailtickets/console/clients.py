"""/admin/clients: clients with their domains and contacts; only admins change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from mailtickets import directory
from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.console.auth import Admin, User
from mailtickets.console.web import PAGE_SIZE, ConsoleRoute, form_of, page_of, redirect, render, text
from mailtickets.db import transaction
from mailtickets.directory.clients import WITH_DOMAINS
from mailtickets.models import Client, Contact

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]


# The list's filter: ?state=active or ?state=inactive (deactivated); anything else shows every client.
STATES = {"active": True, "inactive": False}


@router.get("/clients")
async def client_list(request: Request, context: Context, user: User) -> HTMLResponse:
    after = request.query_params.get("after", "")
    state = request.query_params.get("state", "")
    query = select(Client).options(WITH_DOMAINS).order_by(Client.id).limit(PAGE_SIZE + 1)
    if after.isdigit():
        query = query.where(Client.id > int(after))
    if state in STATES:
        query = query.where(Client.active.is_(STATES[state]))
    async with context.sessions() as session:
        rows = list(await session.scalars(query))
    page = page_of(rows, key=lambda client: client.id)
    filters = {"state": state} if state in STATES else {}
    return render(
        request, "clients.html", user=user, section="clients", page=page, after=after, filters=filters, state=state
    )


@router.post("/clients")
async def create_client(request: Request, context: Context, user: Admin) -> Response:
    form = await form_of(request)
    domains = [d.strip() for d in text(form, "domains").replace(",", " ").split() if d.strip()]
    async with transaction(context.sessions) as session:
        client = await directory.create_client(session, text(form, "name"), domains)
        client_id, name = client.id, client.name
    return redirect(f"/admin/clients/{client_id}", f"Client {name} created.")


@router.get("/clients/{client_id}")
async def client_detail(request: Request, context: Context, user: User, client_id: RowId) -> HTMLResponse:
    after = request.query_params.get("after", "")
    query = select(Contact).where(Contact.client_id == client_id).order_by(Contact.id).limit(PAGE_SIZE + 1)
    if after.isdigit():
        query = query.where(Contact.id > int(after))
    async with context.sessions() as session:
        client = await directory.get_client(session, client_id)
        contacts = list(await session.scalars(query))
    page = page_of(contacts, key=lambda contact: contact.id)
    return render(request, "client.html", user=user, section="clients", client=client, page=page, after=after)


@router.post("/clients/{client_id}")
async def edit_client(request: Request, context: Context, user: Admin, client_id: RowId) -> Response:
    form = await form_of(request)
    async with transaction(context.sessions) as session:
        client = await directory.update_client(session, client_id, text(form, "name"), text(form, "notes"))
        name = client.name
    return redirect(f"/admin/clients/{client_id}", f"Client {name} saved.")


@router.post("/clients/{client_id}/active")
async def set_client_active(request: Request, context: Context, user: Admin, client_id: RowId) -> Response:
    """Deactivate (archive) or reactivate: its mail is then an unknown sender's, or known again."""
    active = text(await form_of(request), "active") == "true"
    async with transaction(context.sessions) as session:
        client = await directory.set_client_active(session, client_id, active)
        name = client.name
    done = "reactivated" if active else "deactivated: mail from its domains and contacts is now an unknown sender's"
    return redirect(f"/admin/clients/{client_id}", f"Client {name} {done}.")


@router.post("/clients/{client_id}/domains")
async def add_domain(request: Request, context: Context, user: Admin, client_id: RowId) -> Response:
    domain = text(await form_of(request), "domain")
    async with transaction(context.sessions) as session:
        added = await directory.add_domain(session, client_id, domain)
        shown = added.domain
    return redirect(f"/admin/clients/{client_id}", f"{shown} added.")


@router.post("/clients/{client_id}/domains/remove")
async def remove_domain(request: Request, context: Context, user: Admin, client_id: RowId) -> Response:
    domain = text(await form_of(request), "domain")
    async with transaction(context.sessions) as session:
        await directory.remove_domain(session, client_id, domain)
    return redirect(f"/admin/clients/{client_id}", f"{domain} removed.")


@router.post("/clients/{client_id}/contacts")
async def add_contact(request: Request, context: Context, user: Admin, client_id: RowId) -> Response:
    form = await form_of(request)
    data = {"client_id": client_id, "name": text(form, "name"), "email": text(form, "email")}
    if text(form, "phone"):
        data["phone"] = text(form, "phone")
    async with transaction(context.sessions) as session:
        await directory.create_contact(session, data, mobile_e164=context.settings.contact_mobile_e164)
    return redirect(f"/admin/clients/{client_id}", f"Contact {data['email']} added.")


@router.post("/clients/{client_id}/contacts/{contact_id}/active")
async def set_contact_active(
    request: Request, context: Context, user: Admin, client_id: RowId, contact_id: RowId
) -> Response:
    active = text(await form_of(request), "active") == "true"
    async with transaction(context.sessions) as session:
        contact = await directory.update_contact(session, contact_id, {"active": active})
        email = contact.email
    return redirect(f"/admin/clients/{client_id}", f"{email} {'reactivated' if active else 'deactivated'}.")

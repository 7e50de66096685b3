"""/admin/agents (admins only): who may sign in, with which role; passwords are set with the CLI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from mailtickets import directory
from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.console.auth import Admin
from mailtickets.console.web import ConsoleDenied, ConsoleRoute, form_of, redirect, render, text
from mailtickets.db import transaction
from mailtickets.directory.accounts import parse_role
from mailtickets.models import Agent, AgentRole

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
MAX_SHOWN = 1000  # a helpdesk has tens of agents; the page shows at most this many


@router.get("/agents")
async def agent_list(request: Request, context: Context, user: Admin) -> HTMLResponse:
    async with context.sessions() as session:
        agents = list(await session.scalars(select(Agent).order_by(Agent.name).limit(MAX_SHOWN)))
    roles = [r.value for r in AgentRole]
    return render(request, "agents.html", user=user, section="agents", agents=agents, roles=roles)


@router.post("/agents")
async def add_agent(request: Request, context: Context, user: Admin) -> Response:
    form = await form_of(request)
    role = parse_role(text(form, "role") or "agent")
    async with transaction(context.sessions) as session:
        agent = await directory.create_agent(session, text(form, "name"), text(form, "email"), role)
        email = agent.email
    return redirect("/admin/agents", f"{email} added; set a password with `mailtickets agents set-password {email}`.")


@router.post("/agents/{agent_id}")
async def change_agent(request: Request, context: Context, user: Admin, agent_id: RowId) -> Response:
    """Role and active flag; an admin cannot demote or deactivate themselves (and lock everyone out)."""
    form = await form_of(request)
    role, active = parse_role(text(form, "role")), text(form, "active") == "on"
    if agent_id == user.agent_id and (role != AgentRole.ADMIN or not active):
        raise ConsoleDenied("You cannot take your own admin role or deactivate yourself.")
    async with transaction(context.sessions) as session:
        agent = await directory.get_agent(session, agent_id)
        agent.role, agent.active = role, active
        email = agent.email
    return redirect("/admin/agents", f"{email} saved.")

"""/admin/account: an agent changes their own password (the current one first); every session ends."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from mailtickets.api.deps import AppContext, get_context
from mailtickets.console.auth import SESSION_COOKIE, User
from mailtickets.console.web import ConsoleRoute, form_of, redirect, render
from mailtickets.db import transaction
from mailtickets.directory.accounts import set_password, verify_password
from mailtickets.directory.agents import get_agent
from mailtickets.errors import InvalidInput

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]


@router.get("/account")
async def account(request: Request, user: User) -> HTMLResponse:
    return render(request, "account.html", user=user, section="", errors={})


@router.post("/account/password")
async def change_password(request: Request, context: Context, user: User) -> Response:
    form = await form_of(request)
    current, new, again = (str(form.get(key) or "") for key in ("current", "password", "again"))
    async with context.sessions() as session:
        agent = await get_agent(session, user.agent_id)
    errors: dict[str, str] = {}
    if not await asyncio.to_thread(verify_password, agent, current):
        errors["current"] = "this is not your current password"
    elif new != again:
        errors["again"] = "the two new passwords differ"
    else:
        try:
            async with transaction(context.sessions) as session:
                await set_password(session, user.email, new)  # also ends every session of this agent
        except InvalidInput as exc:
            errors.update(exc.fields)
    if errors:
        return render(request, "account.html", 422, user=user, section="", errors=errors)
    response = redirect("/admin/login", "Password changed: sign in with the new one.")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response

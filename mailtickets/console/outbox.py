"""/admin/outbox: notifications pending, retrying (with the last error) and failed; retry or cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.console.auth import User
from mailtickets.console.web import PAGE_SIZE, ConsoleRoute, page_of, redirect, render
from mailtickets.db import transaction
from mailtickets.errors import Conflict, NotFound
from mailtickets.models import OutboxMail, OutboxState, Ticket

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
VIEWS: dict[str, ColumnElement[bool]] = {
    "pending": (OutboxMail.state == OutboxState.PENDING) & (OutboxMail.attempts == 0),
    "retrying": (OutboxMail.state == OutboxState.PENDING) & (OutboxMail.attempts > 0),
    "failed": OutboxMail.state == OutboxState.FAILED,
    "sent": OutboxMail.state == OutboxState.SENT,
}


@router.get("/outbox")
async def outbox_list(request: Request, context: Context, user: User) -> HTMLResponse:
    view = request.query_params.get("state", "retrying")
    view = view if view in VIEWS else "retrying"
    before = request.query_params.get("before", "")
    query = (
        select(OutboxMail, Ticket.prefix, Ticket.number)
        .outerjoin(Ticket, Ticket.id == OutboxMail.ticket_id)
        .where(VIEWS[view])
        .order_by(OutboxMail.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before.isdigit():
        query = query.where(OutboxMail.id < int(before))
    async with context.sessions() as session:
        rows = [(mail, f"{p}{n}" if p is not None else None) for mail, p, n in await session.execute(query)]
    page = page_of(rows, key=lambda row: row[0].id)
    values: dict[str, Any] = {
        "page": page,
        "view": view,
        "views": list(VIEWS),
        "query": {"state": view, "before": before},
    }
    return render(request, "outbox.html", user=user, section="outbox", **values)


async def _not_sent(session: AsyncSession, mail_id: int) -> OutboxMail:
    mail = await session.get(OutboxMail, mail_id, with_for_update=True)
    if mail is None:
        raise NotFound(f"no outbox mail {mail_id}")
    if mail.state == OutboxState.SENT:
        raise Conflict(f"mail {mail_id} was already sent")
    return mail


@router.post("/outbox/{mail_id}/retry")
async def retry(context: Context, user: User, mail_id: RowId) -> Response:
    """Send again now, with a fresh count of attempts."""
    async with transaction(context.sessions) as session:
        mail = await _not_sent(session, mail_id)
        mail.state, mail.attempts, mail.locked_until = OutboxState.PENDING, 0, None
        mail.next_attempt_at = context.clock.now()
    return redirect("/admin/outbox?state=pending", f"Mail {mail_id} queued again.")


@router.post("/outbox/{mail_id}/cancel")
async def cancel(context: Context, user: User, mail_id: RowId) -> Response:
    async with transaction(context.sessions) as session:
        mail = await _not_sent(session, mail_id)
        mail.state, mail.locked_until = OutboxState.FAILED, None
        mail.last_error = f"cancelled in the console by {user.email}"
    return redirect("/admin/outbox?state=failed", f"Mail {mail_id} cancelled.")

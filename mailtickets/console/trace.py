"""/admin/trace: every inbound mail, newest first, with what happened to it and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.api.deps import AppContext, RowId, get_context
from mailtickets.console.auth import User
from mailtickets.console.web import PAGE_SIZE, ConsoleRoute, page_of, render
from mailtickets.errors import NotFound
from mailtickets.models import InboundMail, Outcome, Ticket
from mailtickets.storage import FileStore

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
MAX_RAW_SHOWN = 256 * 1024  # a page shows this much of a kept raw message; the rest is cut with a note
# A Message-ID in angle brackets (<id@host>), or an address or Message-ID whole (u@client.example);
# "bob@acme" stays a search for a part.
WHOLE_ADDRESS = re.compile(r"^(?:<([^<>\s]+@[^<>\s]+)>|([^<>\s@]+@[^<>\s@]+\.[^<>\s@.]+))$")
FILTERS = ("q", "outcome", "mailbox", "since", "until", "before")


def filters_of(request: Request) -> dict[str, str]:
    return {key: request.query_params.get(key, "").strip()[:300] for key in FILTERS}


def _day(value: str, end: bool = False) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def _conditions(f: dict[str, str]) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    exact = WHOLE_ADDRESS.match(f["q"])
    if exact:  # a whole address or Message-ID: looked up exactly, by index (senders are stored lower-cased)
        bare = exact.group(1) or exact.group(2)
        where.append(or_(InboundMail.sender == bare.lower(), InboundMail.message_id == bare))
    elif f["q"]:
        needle = f["q"].lower()
        columns = (InboundMail.sender, InboundMail.subject, InboundMail.message_id)
        where.append(or_(*(func.lower(column).contains(needle, autoescape=True) for column in columns)))
    if f["outcome"] in {o.value for o in Outcome}:
        where.append(InboundMail.outcome == Outcome(f["outcome"]))
    if f["mailbox"]:
        where.append(InboundMail.source == f["mailbox"])
    since, until = _day(f["since"]), _day(f["until"], end=True)
    if since is not None:
        where.append(InboundMail.received_at >= since)
    if until is not None:
        where.append(InboundMail.received_at <= until)
    if f["before"].isdigit():
        where.append(InboundMail.id < int(f["before"]))
    return where


async def trace_rows(session: AsyncSession, f: dict[str, str]) -> list[tuple[InboundMail, str | None]]:
    """Newest first by primary key, so every page is an index range however long the trace is."""
    query = (
        select(InboundMail, Ticket.prefix, Ticket.number)
        .outerjoin(Ticket, Ticket.id == InboundMail.ticket_id)
        .where(*_conditions(f))
        .order_by(InboundMail.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    return [
        (mail, f"{prefix}{number}" if prefix is not None else None)
        for mail, prefix, number in await session.execute(query)
    ]


@router.get("/trace")
async def trace_list(request: Request, context: Context, user: User) -> HTMLResponse:
    f = filters_of(request)
    async with context.sessions() as session:
        rows = await trace_rows(session, f)
    page = page_of(rows, key=lambda row: row[0].id)
    outcomes = [o.value for o in Outcome]
    return render(request, "trace.html", user=user, section="trace", query=f, page=page, outcomes=outcomes)


@router.get("/trace/{inbound_id}")
async def trace_detail(request: Request, context: Context, user: User, inbound_id: RowId) -> HTMLResponse:
    async with context.sessions() as session:
        record = await session.get(InboundMail, inbound_id)
        if record is None:
            raise NotFound(f"no inbound message {inbound_id}")
        ticket = await session.get(Ticket, record.ticket_id) if record.ticket_id else None
    store = FileStore(context.settings.raw_dir)
    raw = _raw_text(store, record)
    values: dict[str, Any] = {"record": record, "ticket": ticket.reference if ticket else None, "raw": raw}
    values["raw_missing"] = why_not_kept(store, record)
    return render(request, "trace_detail.html", user=user, section="trace", **values)


def why_not_kept(store: FileStore, record: InboundMail) -> str | None:
    """Why the raw source of this trace entry cannot be shown or dry-run; None when it is kept."""
    if record.raw_stored and store.exists(record.raw_sha256):
        return None
    if record.raw_stored:
        return "Its raw source is recorded as kept but the file is missing from the data folder (data_dir/raw)."
    if record.outcome in (Outcome.QUARANTINED, Outcome.DROPPED):
        return "Its raw source is no longer kept: mailtickets db purge forgot it (raw_mail_retention_days)."
    return (
        f"Its raw source was not kept: ingest keeps the source of quarantined and dropped mail only, and this"
        f" message was {record.outcome.value}. Paste or upload the .eml to dry-run it."
    )


def kept_raw(store: FileStore, record: InboundMail) -> bytes | None:
    return store.get(record.raw_sha256) if why_not_kept(store, record) is None else None


def _raw_text(store: FileStore, record: InboundMail) -> str | None:
    """The kept source as text (shown escaped, in a <pre>): never rendered as mail or HTML."""
    raw = kept_raw(store, record)
    if raw is None:
        return None
    shown = raw[:MAX_RAW_SHOWN].decode("utf-8", "replace")
    return shown + (f"\n… ({len(raw) - MAX_RAW_SHOWN} more bytes not shown)" if len(raw) > MAX_RAW_SHOWN else "")

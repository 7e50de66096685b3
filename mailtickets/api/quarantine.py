"""/api/v1/quarantine: held messages: list, show, release (through the pipeline), discard."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailtickets.api.deps import CallerDep, Context, Limit, Offset, Page, RowId, parse_json_object
from mailtickets.api.errors import ERROR_RESPONSES
from mailtickets.db import transaction
from mailtickets.directory.validation import ID_MAX, parse_model
from mailtickets.models import QuarantineState
from mailtickets.pipeline.quarantine import count_held, discard_held, list_held, show_held
from mailtickets.storage import FileStore

router = APIRouter(prefix="/quarantine", tags=["quarantine"], responses=ERROR_RESPONSES)


class HeldOut(BaseModel):
    id: int
    received_at: str | None
    source: str
    sender: str | None
    subject: str | None
    message_id: str | None
    reason: str | None
    size: int
    state: Literal["held", "released", "discarded"] | None


class HeldDetail(HeldOut):
    to: list[str]
    headers: list[tuple[str, str]]  # the top-level headers, printable
    text: str  # a printable rendering; binary content is summarised, not shown


class ReleaseRequest(BaseModel):
    """Optional: the client to file the message under (otherwise as if the sender were known)."""

    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[int, Field(ge=1, le=ID_MAX)] | None = None


class ReleaseResult(BaseModel):
    outcome: str
    ticket: str | None
    reason: str | None
    message_id: str | None


@router.get("", response_model=Page[HeldOut])
async def list_quarantine(
    context: Context,
    _caller: CallerDep,
    state: Literal["held", "released", "discarded", "all"] = "held",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[HeldOut]:
    """One page of quarantined messages, newest first."""
    wanted = None if state == "all" else QuarantineState(state)
    async with transaction(context.sessions) as session:
        rows = await list_held(session, wanted, limit=limit, offset=offset)
        total = await count_held(session, wanted)
    return Page[HeldOut](data=[HeldOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{inbound_id}", response_model=HeldDetail)
async def show(context: Context, _caller: CallerDep, inbound_id: RowId) -> HeldDetail:
    """A quarantined message (held, released or discarded) with a readable preview of the mail."""
    async with transaction(context.sessions) as session:
        detail = await show_held(session, FileStore(context.settings.raw_dir), inbound_id, context.pipeline.parser)
    return HeldDetail.model_validate(detail)


@router.post(
    "/{inbound_id}/release",
    response_model=ReleaseResult,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ReleaseRequest.model_json_schema()}},
        }
    },
)
async def release(context: Context, _caller: CallerDep, inbound_id: RowId, request: Request) -> ReleaseResult:
    """Ingest the held message as if its sender were known, or for the given client (body optional)."""
    raw = await request.body()
    fields = parse_model(ReleaseRequest, parse_json_object(raw), "release") if raw.strip() else ReleaseRequest()
    result = await context.pipeline.release(inbound_id, fields.client_id)
    return ReleaseResult.model_validate(result.as_json())


@router.post("/{inbound_id}/discard", status_code=204, response_class=Response)
async def discard(context: Context, _caller: CallerDep, inbound_id: RowId) -> Response:
    async with transaction(context.sessions) as session:
        await discard_held(session, inbound_id)
    return Response(status_code=204)

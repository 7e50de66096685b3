"""What every endpoint shares: the application context, the caller, the JSON body, pagination."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.auth import authenticate, require_write_access
from mailtickets.api.errors import ApiError
from mailtickets.api.keys import Caller
from mailtickets.clock import Clock
from mailtickets.directory.validation import ID_MAX
from mailtickets.errors import InvalidInput
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.settings import Settings

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    pipeline: Pipeline  # shared, so that releases use the same rule cache as the intakes


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def get_reader(request: Request, context: Context) -> Caller:
    """Any valid key, read-only ones included: every /api/v1 route checks this first (401)."""
    return await authenticate(request, context.sessions)


ReaderDep = Annotated[Caller, Depends(get_reader)]


def get_caller(request: Request, caller: ReaderDep) -> Caller:
    """A valid key allowed to do what the request asks: read-only keys get 403 on writes."""
    return require_write_access(request, caller)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object: 400 when nothing was sent or it is not JSON, 422 when not an object."""
    return parse_json_object(await request.body())


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ApiError(400, "nothing_sent", "nothing sent")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("a JSON object is expected", {"body": "must be a JSON object"})
    if not data:
        raise ApiError(400, "nothing_sent", "nothing sent")
    if _has_nul(data):
        raise InvalidInput("NUL characters are not allowed", {"body": "contains a NUL character"})
    return data


def _has_nul(value: Any) -> bool:
    # PostgreSQL cannot store NUL in text: refuse it up front, the same on every backend.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def reject_nul(request: Request) -> None:
    """Path and query values with a NUL character are refused (422) before they reach the database."""
    if any(_has_nul(str(v)) for v in (*request.path_params.values(), *request.query_params.values())):
        raise InvalidInput("NUL characters are not allowed", {"request": "contains a NUL character"})


JsonObject = Annotated[dict[str, Any], Depends(json_object)]


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra documenting a JSON body that the endpoint reads and validates itself."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


RowId = Annotated[int, Path(ge=1, le=ID_MAX)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=ID_MAX)]


class PageInfo(BaseModel):
    total: int
    limit: int
    offset: int


ItemT = TypeVar("ItemT")


class Page(PageInfo, Generic[ItemT]):
    """The one envelope of every collection: {total, limit, offset, data}."""

    data: list[ItemT]


def page_of(items: Sequence[ItemT], limit: int, offset: int) -> Page[ItemT]:
    """A page cut from a short, fully loaded list (agents, rules)."""
    return Page[ItemT](data=list(items[offset : offset + limit]), total=len(items), limit=limit, offset=offset)

"""/api/v1/rules: list, get, create, replace, delete, and the dry run on an uploaded .eml.

Rule bodies are the same plain data as a rule in the TOML file; `mailtickets.rules.model` validates
them and reports every problem.  Each change is audited with the API key's name as the actor.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailtickets.api.deps import CallerDep, Context, JsonObject, ReaderDep, body_of
from mailtickets.api.errors import ERROR_RESPONSES, ApiError
from mailtickets.api.keys import Caller
from mailtickets.db import transaction
from mailtickets.errors import InvalidInput
from mailtickets.pipeline import dryrun
from mailtickets.rules.model import RuleSpec, rule_from_dict, spec_to_dict
from mailtickets.rules.store import create_rule, delete_rule, get_rule, load_rules, update_rule

router = APIRouter(prefix="/rules", tags=["rules"], responses=ERROR_RESPONSES)
RuleName = Annotated[str, Path(min_length=1, max_length=200)]
Position = Annotated[int | None, Query(ge=0, le=1_000_000)]


class RuleBody(BaseModel):
    """A rule as in the TOML file: conditions ({field, op, value, not}) and actions ({action, value})."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    enabled: bool = True
    match: Literal["all", "any"] = "all"
    stop: bool = False
    conditions: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []


class RuleOut(BaseModel):
    name: str
    enabled: bool
    match: str
    stop: bool
    position: int
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]


class DryRunReport(BaseModel):
    message: dict[str, Any]
    rules: list[dict[str, Any]]
    result: dict[str, Any]


def _out(spec: RuleSpec) -> RuleOut:
    return RuleOut(**spec_to_dict(spec), position=spec.position)


def _actor(caller: Caller) -> str:
    return f"api:{caller.name}"


@router.get("", response_model=list[RuleOut])
async def list_rules(context: Context, _caller: CallerDep) -> list[RuleOut]:
    """Every rule in evaluation order, disabled ones included."""
    async with transaction(context.sessions) as session:
        return [_out(spec) for spec in await load_rules(session)]


@router.post(
    "/dry-run",
    response_model=DryRunReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def dry_run(
    context: Context,
    _caller: ReaderDep,  # writes nothing, so read-only keys may use it too
    request: Request,
    source: Annotated[str, Query(min_length=1, max_length=200)] = "api",
) -> DryRunReport:
    """What ingest would do with the uploaded message (raw .eml as the body) and why; writes nothing."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "nothing_sent", "nothing sent")
    if len(raw) > context.settings.max_message_bytes:
        raise InvalidInput("message too large", {"body": f"at most {context.settings.max_message_bytes} bytes"})
    return DryRunReport.model_validate(await dryrun.dry_run(context.pipeline, raw, source))


@router.get("/{name}", response_model=RuleOut)
async def get_one(context: Context, _caller: CallerDep, name: RuleName) -> RuleOut:
    async with transaction(context.sessions) as session:
        return _out(await get_rule(session, name))


@router.post("", status_code=201, response_model=RuleOut, openapi_extra=body_of(RuleBody))
async def create(
    context: Context, caller: CallerDep, data: JsonObject, response: Response, position: Position = None
) -> RuleOut:
    """Add a rule (at the end unless a position is given); 409 when the name is taken."""
    spec = rule_from_dict(data)
    async with transaction(context.sessions) as session:
        created = await create_rule(session, spec, _actor(caller), position)
    response.headers["Location"] = f"/api/v1/rules/{created.name}"
    return _out(created)


@router.put("/{name}", response_model=RuleOut, openapi_extra=body_of(RuleBody))
async def replace(
    context: Context, caller: CallerDep, name: RuleName, data: JsonObject, position: Position = None
) -> RuleOut:
    """Replace the rule (it may be renamed); it keeps its place unless a position is given."""
    spec = rule_from_dict(data)
    async with transaction(context.sessions) as session:
        return _out(await update_rule(session, name, spec, _actor(caller), position))


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete(context: Context, caller: CallerDep, name: RuleName) -> Response:
    async with transaction(context.sessions) as session:
        await delete_rule(session, name, _actor(caller))
    return Response(status_code=204)

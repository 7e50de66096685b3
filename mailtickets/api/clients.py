"""/api/v1/clients (with their registered domains) and /api/v1/agents (with their aliases)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mailtickets import directory
from mailtickets.api.deps import CallerDep, Context, JsonObject, Limit, Offset, Page, RowId, body_of, page_of
from mailtickets.api.errors import ERROR_RESPONSES
from mailtickets.db import transaction
from mailtickets.directory.validation import (
    AgentFields,
    AliasFields,
    ClientChanges,
    ClientFields,
    DomainFields,
    parse_model,
)
from mailtickets.directory.views import AgentOut, ClientOut, agent_view, client_view

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/clients", response_model=Page[ClientOut], tags=["clients"])
async def list_clients(
    context: Context, _caller: CallerDep, limit: Limit = 50, offset: Offset = 0, active: bool | None = None
) -> Page[ClientOut]:
    """Clients by id; `active=true` or `active=false` lists only the active or the deactivated ones."""
    async with transaction(context.sessions) as session:
        found = await directory.list_clients(session, limit=limit, offset=offset, active=active)
        rows = [client_view(c) for c in found]
        total = await directory.count_clients(session, active=active)
    return Page[ClientOut](data=rows, total=total, limit=limit, offset=offset)


@router.get("/clients/{client_id}", response_model=ClientOut, tags=["clients"])
async def get_client(context: Context, _caller: CallerDep, client_id: RowId) -> ClientOut:
    async with transaction(context.sessions) as session:
        return client_view(await directory.get_client(session, client_id))


@router.post(
    "/clients", status_code=201, response_model=ClientOut, tags=["clients"], openapi_extra=body_of(ClientFields)
)
async def create_client(context: Context, _caller: CallerDep, data: JsonObject) -> ClientOut:
    """Create a client; 409 when the name or a domain already belongs to another client.

    A public mail provider's domain (gmail.com, outlook.com…) is 422 unless `force` is true.
    """
    fields = parse_model(ClientFields, data, "client")
    async with transaction(context.sessions) as session:
        return client_view(await directory.create_client(session, fields.name, fields.domains, force=fields.force))


@router.patch("/clients/{client_id}", response_model=ClientOut, tags=["clients"], openapi_extra=body_of(ClientChanges))
async def update_client(context: Context, _caller: CallerDep, client_id: RowId, data: JsonObject) -> ClientOut:
    """A field given changes (`notes: null` clears them), a field omitted stays; 409 when another client
    has the name. `active: false` deactivates the client: mail from its domains and contacts is then
    handled as an unknown sender's (usually quarantined, the reason says why); its tickets, contacts and
    domains stay, and `active: true` restores it."""
    changes = parse_model(ClientChanges, data, "client")
    async with transaction(context.sessions) as session:
        return client_view(await directory.change_client(session, client_id, changes))


@router.post(
    "/clients/{client_id}/domains",
    status_code=201,
    response_model=ClientOut,
    tags=["clients"],
    openapi_extra=body_of(DomainFields),
)
async def add_domain(context: Context, _caller: CallerDep, client_id: RowId, data: JsonObject) -> ClientOut:
    """Register a domain for the client; 409 when another client has it, 422 for a public mail provider's
    domain unless `force` is true."""
    fields = parse_model(DomainFields, data, "domain")
    async with transaction(context.sessions) as session:
        await directory.add_domain(session, client_id, fields.domain, force=fields.force)
        return client_view(await directory.get_client(session, client_id))


@router.delete("/clients/{client_id}/domains/{domain}", status_code=204, response_class=Response, tags=["clients"])
async def remove_domain(context: Context, _caller: CallerDep, client_id: RowId, domain: str) -> Response:
    async with transaction(context.sessions) as session:
        await directory.remove_domain(session, client_id, domain)
    return Response(status_code=204)


@router.get("/agents", response_model=Page[AgentOut], tags=["agents"])
async def list_agents(context: Context, _caller: CallerDep, limit: Limit = 50, offset: Offset = 0) -> Page[AgentOut]:
    async with transaction(context.sessions) as session:
        return page_of([agent_view(a) for a in await directory.list_agents(session)], limit, offset)


@router.post("/agents", status_code=201, response_model=AgentOut, tags=["agents"], openapi_extra=body_of(AgentFields))
async def create_agent(context: Context, _caller: CallerDep, data: JsonObject) -> AgentOut:
    fields = parse_model(AgentFields, data, "agent")
    async with transaction(context.sessions) as session:
        return agent_view(await directory.create_agent(session, fields.name, fields.email, aliases=fields.aliases))


@router.post(
    "/agents/{agent_id}/aliases",
    status_code=201,
    response_model=AgentOut,
    tags=["agents"],
    openapi_extra=body_of(AliasFields),
)
async def add_alias(context: Context, _caller: CallerDep, agent_id: RowId, data: JsonObject) -> AgentOut:
    """Another address the agent writes from; 409 when any agent already has it."""
    fields = parse_model(AliasFields, data, "alias")
    async with transaction(context.sessions) as session:
        await directory.add_alias(session, await directory.get_agent(session, agent_id), fields.alias)
        return agent_view(await directory.get_agent(session, agent_id))


@router.delete("/agents/{agent_id}/aliases/{alias}", status_code=204, response_class=Response, tags=["agents"])
async def remove_alias(context: Context, _caller: CallerDep, agent_id: RowId, alias: str) -> Response:
    async with transaction(context.sessions) as session:
        await directory.remove_alias(session, await directory.get_agent(session, agent_id), alias)
    return Response(status_code=204)

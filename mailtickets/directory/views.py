"""How clients, contacts and agents look from outside (CLI --json and the HTTP API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from mailtickets.models import Agent, Client, Contact


class ClientOut(BaseModel):
    id: int
    name: str
    domains: list[str]
    notes: str | None = None
    active: bool = True  # False: deactivated, its domains and contacts are no longer known senders
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ContactOut(BaseModel):
    id: int
    name: str
    email: str | None
    client_id: int | None
    client: str | None  # the client's name
    title: str | None
    phone: str | None
    extension: str | None
    mobile: str | None
    department: str | None
    location: str | None
    notes: str | None
    important: bool
    billing: bool
    technical: bool
    auth_method: str
    active: bool
    external_id: str | None
    created_at: datetime | None
    updated_at: datetime | None


class AgentOut(BaseModel):
    id: int
    name: str
    email: str
    active: bool
    aliases: list[str]  # other addresses the agent writes from
    role: str = "agent"
    can_log_in: bool = False  # a console password is set


def client_view(client: Client) -> ClientOut:
    return ClientOut(
        id=client.id,
        name=client.name,
        domains=[d.domain for d in client.domains],
        notes=client.notes,
        active=client.active,
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


def contact_view(contact: Contact) -> ContactOut:
    columns = (name for name in ContactOut.model_fields if name != "client")
    fields: dict[str, Any] = {name: getattr(contact, name) for name in columns}
    return ContactOut(**fields, client=contact.client.name if contact.client is not None else None)


def agent_view(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        active=agent.active,
        aliases=[a.email for a in agent.aliases],
        role=agent.role.value,
        can_log_in=agent.password_hash is not None,
    )

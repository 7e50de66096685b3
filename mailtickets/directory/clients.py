"""Clients and their registered domains.  A domain belongs to one client (unique in the schema too)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from mailtickets.directory.providers import is_public_mail_provider
from mailtickets.directory.validation import (
    CLIENT_NAME_MAX,
    ClientChanges,
    FieldConflict,
    parse_domains,
    require_name,
)
from mailtickets.errors import InvalidInput, NotFound
from mailtickets.models import Client, ClientDomain

WITH_DOMAINS = selectinload(Client.domains)  # Client.domains load only when asked for


async def create_client(
    session: AsyncSession, name: str, domains: list[str] | None = None, *, force: bool = False
) -> Client:
    """A new client with its domains; Conflict when the name or a domain is taken.

    A public mail provider's domain (gmail.com…) is refused unless `force`: see directory/providers.py.
    """
    name = require_name(name, max_length=CLIENT_NAME_MAX)
    wanted = client_domains(domains or [], force=force)
    existing = await session.scalar(select(Client).where(Client.name == name))
    if existing is not None:
        raise FieldConflict(f"a client named {name!r} already exists (id {existing.id})", {"name": "taken"})
    for domain in wanted:
        await _check_domain_free(session, domain, None)
    client = Client(name=name, domains=[ClientDomain(domain=d) for d in wanted])
    session.add(client)
    await _flush(session)
    await session.refresh(client)
    await session.refresh(client, ["domains"])  # in domain order, as every view lists them
    return client


async def update_client(session: AsyncSession, client_id: int, name: str, notes: str | None) -> Client:
    """Rename a client and set its notes; Conflict when another client has the name."""
    client = await get_client(session, client_id)
    name = require_name(name, max_length=CLIENT_NAME_MAX)
    clash = await session.scalar(select(Client).where(Client.name == name, Client.id != client_id))
    if clash is not None:
        raise FieldConflict(f"a client named {name!r} already exists (id {clash.id})", {"name": "taken"})
    client.name, client.notes = name, (notes or None)
    await _flush(session)
    return client


async def change_client(session: AsyncSession, client_id: int, changes: ClientChanges) -> Client:
    """Apply the fields the caller gave (PATCH): name, notes, active; the others stay."""
    client = await get_client(session, client_id)
    given = changes.model_fields_set
    if given & {"name", "notes"}:
        name = changes.name if "name" in given else client.name
        notes = changes.notes if "notes" in given else client.notes
        client = await update_client(session, client_id, name, notes)
    if "active" in given:
        client = await set_client_active(session, client_id, changes.active)
    return await _reloaded(session, client)


async def set_client_active(session: AsyncSession, client_id: int, active: bool) -> Client:
    """Deactivate (archive) or reactivate a client. Deactivated, its domains and contacts are no longer
    known senders (match/sender.py): their mail goes as an unknown sender's does. Nothing is deleted:
    tickets, contacts and domains stay, and reactivating restores the matching."""
    client = await get_client(session, client_id)
    client.active = active
    await session.flush()
    return await _reloaded(session, client)


async def add_domain(session: AsyncSession, client_id: int, domain: str, *, force: bool = False) -> ClientDomain:
    """Register one more domain for a client (idempotent when the client already has it)."""
    client = await get_client(session, client_id)
    (normalized,) = client_domains([domain], force=force)
    for known in client.domains:
        if known.domain == normalized:
            return known
    await _check_domain_free(session, normalized, client.id)
    row = ClientDomain(client_id=client.id, domain=normalized)
    session.add(row)
    await _flush(session)
    await session.refresh(client, ["domains"])
    return row


def client_domains(values: list[str], *, force: bool) -> list[str]:
    """Normalised domains; InvalidInput naming the public mail providers among them unless `force`."""
    wanted = parse_domains(values)
    public = [domain for domain in wanted if is_public_mail_provider(domain)]
    if public and not force:
        raise InvalidInput(
            "a public mail provider's domain would give every one of its users to this client",
            {"domains": f"{', '.join(public)} is a public mail provider: register contacts instead, or force it"},
        )
    return wanted


async def remove_domain(session: AsyncSession, client_id: int, domain: str) -> None:
    client = await get_client(session, client_id)
    (normalized,) = parse_domains([domain])
    for known in client.domains:
        if known.domain == normalized:
            await session.delete(known)
            await session.flush()
            await session.refresh(client, ["domains"])
            return
    raise NotFound(f"client {client.name!r} has no domain {normalized}")


async def get_client(session: AsyncSession, client_id: int) -> Client:
    client = await session.get(Client, client_id, options=[WITH_DOMAINS])
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    return client


async def get_client_by_name(session: AsyncSession, name: str) -> Client:
    client = await session.scalar(select(Client).where(Client.name == name.strip()).options(WITH_DOMAINS))
    if client is None:
        raise NotFound(f"no client named {name!r}")
    return client


async def list_clients(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0, active: bool | None = None
) -> list[Client]:
    """Clients by id; `active` True or False keeps only the active or the deactivated ones."""
    query = select(Client).options(WITH_DOMAINS).order_by(Client.id).offset(offset).limit(limit)
    if active is not None:
        query = query.where(Client.active.is_(active))
    return list(await session.scalars(query))


async def count_clients(session: AsyncSession, *, active: bool | None = None) -> int:
    query = select(func.count()).select_from(Client)
    if active is not None:
        query = query.where(Client.active.is_(active))
    return int(await session.scalar(query) or 0)


async def _check_domain_free(session: AsyncSession, domain: str, client_id: int | None) -> None:
    owner = await session.scalar(select(ClientDomain).where(ClientDomain.domain == domain))
    if owner is not None and owner.client_id != client_id:
        other = await session.get(Client, owner.client_id)
        who = other.name if other is not None else f"client {owner.client_id}"
        raise FieldConflict(f"domain {domain} already belongs to {who!r}", {"domains": f"{domain} is taken"})


async def _reloaded(session: AsyncSession, client: Client) -> Client:
    """After an update: updated_at is the database's, and the domains are loaded for the views."""
    await session.refresh(client)
    await session.refresh(client, ["domains"])
    return client


async def _flush(session: AsyncSession) -> None:
    # The checks above give the friendly message; the unique indexes catch a concurrent writer.
    try:
        await session.flush()
    except IntegrityError as exc:
        raise FieldConflict("a client with this name or domain already exists", {"name": "taken"}) from exc

"""Contacts of clients: create, update (value sets, null clears, omitted leaves), upsert, delete, find.

Deleting a contact that tickets or ticket messages refer to is refused with Conflict, naming what
refers to it: deleting would orphan the ticket history.  Deactivate such a contact instead
(`active = false`); an inactive contact stays on its tickets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.directory.validation import ContactFields, FieldConflict, digits, parse_contact
from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.models import Client, Contact, Ticket, TicketMessage

# Characters people put between the digits of a phone number; stripped in SQL before comparing.
PHONE_SEPARATORS = " -()+./"
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class ContactQuery:
    email: str | None = None
    phone_or_mobile: str | None = None
    client_id: int | None = None
    updated_since: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Contact]
    total: int


async def create_contact(session: AsyncSession, data: Mapping[str, Any], *, mobile_e164: bool = False) -> Contact:
    """A new contact from caller data (the seeds' rules); Conflict when the email is already used."""
    values = await _validated(session, data, partial=False, mobile_e164=mobile_e164)
    await _check_unique(session, values, None)
    contact = Contact(**values)
    session.add(contact)
    await _flush(session)
    await session.refresh(contact)
    return contact


async def update_contact(
    session: AsyncSession, contact_id: int, changes: Mapping[str, Any], *, mobile_e164: bool = False
) -> Contact:
    """Apply the sent fields only: a value sets the field, null clears it, an omitted field stays."""
    contact = await get_contact(session, contact_id)
    return await _apply(session, contact, changes, mobile_e164=mobile_e164)


async def set_contact_active(session: AsyncSession, email: str, active: bool) -> Contact:
    """Deactivate (or reactivate) the contact with this address; it stays on its tickets."""
    contact = await find_contact_by_email(session, email)
    if contact is None:
        raise NotFound(f"no contact with email {email.strip()}")
    return await _apply(session, contact, {"active": active}, mobile_e164=False)


async def upsert_contact(
    session: AsyncSession, external_id: str, data: Mapping[str, Any], *, mobile_e164: bool = False
) -> tuple[Contact, bool]:
    """Create or update the contact with the caller's own id; returns (contact, created)."""
    if "external_id" in data and data["external_id"] != external_id:
        raise InvalidInput("the contact is not valid", {"external_id": "differs from the id in the path"})
    contact = await session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is not None:
        return await _apply(session, contact, data, mobile_e164=mobile_e164), False
    created = await create_contact(session, {**data, "external_id": external_id}, mobile_e164=mobile_e164)
    return created, True


async def delete_contact(session: AsyncSession, contact_id: int) -> None:
    """Delete a contact nothing refers to; Conflict naming the tickets and messages otherwise."""
    contact = await get_contact(session, contact_id)
    tickets = list(await session.scalars(select(Ticket).where(Ticket.contact_id == contact.id).limit(6)))
    messages = await session.scalar(
        select(func.count()).select_from(TicketMessage).where(TicketMessage.contact_id == contact.id)
    )
    if tickets or messages:
        raise Conflict(_references(contact, tickets, messages or 0))
    await session.delete(contact)
    await session.flush()


async def get_contact(session: AsyncSession, contact_id: int) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}")
    return contact


async def get_contact_by_external_id(session: AsyncSession, external_id: str) -> Contact:
    contact = await session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        raise NotFound(f"no contact with external id {external_id!r}")
    return contact


async def find_contact_by_email(session: AsyncSession, email: str) -> Contact | None:
    return await session.scalar(select(Contact).where(func.lower(Contact.email) == email.strip().lower()))


async def find_contacts(session: AsyncSession, query: ContactQuery = ContactQuery()) -> Page:
    """Contacts matching every given filter, ordered by id, one page of them and the total."""
    if not 1 <= query.limit <= MAX_PAGE or query.offset < 0:
        raise InvalidInput("bad pagination", {"limit": f"1 to {MAX_PAGE}", "offset": "0 or more"})
    filtered = _filtered(select(Contact), query)
    total = await session.scalar(select(func.count()).select_from(filtered.subquery()))
    page = filtered.order_by(Contact.id).limit(query.limit).offset(query.offset)
    return Page(items=list(await session.scalars(page)), total=total or 0)


async def list_contacts(session: AsyncSession) -> list[Contact]:
    return list(await session.scalars(select(Contact).order_by(Contact.id)))


def _filtered(statement: Select[tuple[Contact]], query: ContactQuery) -> Select[tuple[Contact]]:
    if query.email is not None:
        statement = statement.where(func.lower(Contact.email) == query.email.strip().lower())
    if query.phone_or_mobile is not None:
        wanted = digits(query.phone_or_mobile)
        if not wanted:
            raise InvalidInput("bad filter", {"phone_or_mobile": "contains no digits"})
        statement = statement.where(or_(_digits_only(Contact.phone) == wanted, _digits_only(Contact.mobile) == wanted))
    if query.client_id is not None:
        statement = statement.where(Contact.client_id == query.client_id)
    if query.updated_since is not None:
        statement = statement.where(Contact.updated_at >= query.updated_since)
    return statement


def _digits_only(column: Any) -> ColumnElement[Any]:
    expression: ColumnElement[Any] = column
    for separator in PHONE_SEPARATORS:
        expression = func.replace(expression, separator, "")
    return expression


async def _apply(session: AsyncSession, contact: Contact, changes: Mapping[str, Any], *, mobile_e164: bool) -> Contact:
    values = await _validated(session, changes, partial=True, mobile_e164=mobile_e164)
    await _check_unique(session, values, contact.id)
    for name, value in values.items():
        setattr(contact, name, value)
    await _flush(session)
    await session.refresh(contact)
    return contact


async def _validated(
    session: AsyncSession, data: Mapping[str, Any], *, partial: bool, mobile_e164: bool
) -> dict[str, Any]:
    """parse_contact's rules plus the one needing the database (the client exists), reported together."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    try:
        values = parse_contact(data, partial=partial, mobile_e164=mobile_e164)
    except InvalidInput as exc:
        errors = dict(exc.fields)
    client_id = _client_ref(data, errors)
    if client_id is not None and await session.get(Client, client_id) is None:
        errors["client_id"] = f"no client with id {client_id}"
    if errors:
        raise InvalidInput("the contact is not valid", errors)
    return values


def _client_ref(data: Mapping[str, Any], errors: Mapping[str, str]) -> int | None:
    """The client_id sent, read as the field rules read it ("7" and 7.0 are 7), unless it is invalid."""
    if not isinstance(data, Mapping) or data.get("client_id") is None or "client_id" in errors:
        return None
    return ContactFields.model_validate({"client_id": data["client_id"]}).client_id


async def _check_unique(session: AsyncSession, values: Mapping[str, Any], own_id: int | None) -> None:
    email = values.get("email")
    if email:
        clash = await find_contact_by_email(session, email)
        if clash is not None and clash.id != own_id:
            raise FieldConflict(
                f"contact {clash.id} ({clash.name}) already has the email {clash.email}", {"email": "taken"}
            )
    external_id = values.get("external_id")
    if external_id:
        other = await session.scalar(select(Contact).where(Contact.external_id == external_id))
        if other is not None and other.id != own_id:
            message = f"contact {other.id} already has external id {external_id!r}"
            raise FieldConflict(message, {"external_id": "taken"})


async def _flush(session: AsyncSession) -> None:
    # The checks above explain a clash; the schema's unique indexes still catch a concurrent writer.
    try:
        await session.flush()
    except IntegrityError as exc:
        clash = [field for field in ("external_id", "email") if field in str(exc.orig)]
        if not clash:
            raise  # not a clash the checks know of: a bug, not the caller's fault
        raise FieldConflict(f"another contact already has this {clash[0]}", {clash[0]: "taken"}) from exc


def _references(contact: Contact, tickets: list[Ticket], messages: int) -> str:
    parts = []
    if tickets:
        refs = ", ".join(t.reference for t in tickets[:5]) + (", ..." if len(tickets) > 5 else "")
        parts.append(f"tickets ({refs})")
    if messages:
        parts.append(f"{messages} ticket message(s)")
    return (
        f"contact {contact.id} ({contact.name}) is referenced by {' and '.join(parts)}; "
        "deactivate it instead (active = false)"
    )

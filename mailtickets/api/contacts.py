"""/api/v1/contacts: list with filters, get, create, PATCH (null clears), upsert by external id, delete.

DELETE answers 409 when tickets or ticket messages refer to the contact (deleting would orphan the
ticket history); deactivate it instead with PATCH {"active": false}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from mailtickets import directory
from mailtickets.api.deps import CallerDep, Context, JsonObject, Limit, Offset, PageInfo, RowId, body_of
from mailtickets.api.errors import ERROR_RESPONSES
from mailtickets.db import transaction
from mailtickets.directory import ContactQuery
from mailtickets.directory.validation import EXTERNAL_ID_MAX, ID_MAX, ContactFields
from mailtickets.directory.views import ContactOut, contact_view

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=ERROR_RESPONSES)
ExternalId = Annotated[str, Path(min_length=1, max_length=EXTERNAL_ID_MAX)]


class ContactPage(PageInfo):
    data: list[ContactOut]


def as_utc(value: datetime | None) -> datetime | None:
    # A time without a zone is taken as UTC, the zone every stored time is in.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("", response_model=ContactPage)
async def list_contacts(
    context: Context,
    _caller: CallerDep,
    email: Annotated[str | None, Query(max_length=191)] = None,
    phone_or_mobile: Annotated[str | None, Query(max_length=64)] = None,
    client_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    updated_since: datetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ContactPage:
    """Contacts matching every filter given; phone_or_mobile compares digits only."""
    query = ContactQuery(email, phone_or_mobile, client_id, as_utc(updated_since), limit, offset)
    async with transaction(context.sessions) as session:
        page = await directory.find_contacts(session, query)
        rows = [contact_view(c) for c in page.items]
    return ContactPage(data=rows, total=page.total, limit=limit, offset=offset)


@router.get("/external/{system_id}", response_model=ContactOut)
async def get_external(context: Context, _caller: CallerDep, system_id: ExternalId) -> ContactOut:
    async with transaction(context.sessions) as session:
        return contact_view(await directory.get_contact_by_external_id(session, system_id))


@router.put(
    "/external/{system_id}",
    response_model=ContactOut,
    responses={201: {"model": ContactOut, "description": "Created"}},
    openapi_extra=body_of(ContactFields),
)
async def upsert_external(
    context: Context, _caller: CallerDep, system_id: ExternalId, data: JsonObject, response: Response
) -> ContactOut:
    """Create (201) or update (200) the contact with your own id; update follows PATCH's null rule."""
    async with transaction(context.sessions) as session:
        contact, created = await directory.upsert_contact(
            session, system_id, data, mobile_e164=context.settings.contact_mobile_e164
        )
        view = contact_view(contact)
    response.status_code = 201 if created else 200
    return view


@router.get("/{contact_id}", response_model=ContactOut)
async def get_contact(context: Context, _caller: CallerDep, contact_id: RowId) -> ContactOut:
    async with transaction(context.sessions) as session:
        return contact_view(await directory.get_contact(session, contact_id))


@router.post("", status_code=201, response_model=ContactOut, openapi_extra=body_of(ContactFields))
async def create_contact(context: Context, _caller: CallerDep, data: JsonObject, response: Response) -> ContactOut:
    """Create a contact: name required; 409 names the contact that already has the email."""
    async with transaction(context.sessions) as session:
        contact = await directory.create_contact(session, data, mobile_e164=context.settings.contact_mobile_e164)
        view = contact_view(contact)
    response.headers["Location"] = f"/api/v1/contacts/{view.id}"
    return view


@router.patch("/{contact_id}", response_model=ContactOut, openapi_extra=body_of(ContactFields))
async def update_contact(context: Context, _caller: CallerDep, contact_id: RowId, data: JsonObject) -> ContactOut:
    """A field set to a value changes, set to null is cleared, omitted stays as it is."""
    async with transaction(context.sessions) as session:
        contact = await directory.update_contact(
            session, contact_id, data, mobile_e164=context.settings.contact_mobile_e164
        )
        return contact_view(contact)


@router.delete("/{contact_id}", status_code=204, response_class=Response)
async def delete_contact(context: Context, _caller: CallerDep, contact_id: RowId) -> Response:
    """Delete a contact nothing refers to; 409 naming the tickets otherwise (deactivate it instead)."""
    async with transaction(context.sessions) as session:
        await directory.delete_contact(session, contact_id)
    return Response(status_code=204)


@router.delete("/external/{system_id}", status_code=204, response_class=Response)
async def delete_external(context: Context, _caller: CallerDep, system_id: ExternalId) -> Response:
    """Delete by your own id, with the same 409 rule as by id."""
    async with transaction(context.sessions) as session:
        contact = await directory.get_contact_by_external_id(session, system_id)
        await directory.delete_contact(session, contact.id)
    return Response(status_code=204)

"""Contacts service: the seeds' field rules one by one, null semantics, upsert, delete, finding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Store
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets import directory
from mailtickets.directory import ContactQuery, FieldConflict
from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.models import Ticket


@pytest.fixture
async def session(store: Store) -> AsyncIterator[AsyncSession]:
    async with store.sessions() as session, session.begin():
        yield session


async def _client(session: AsyncSession, name: str = "Acme") -> int:
    return (await directory.create_client(session, name, [f"{name.lower()}.example"])).id


async def test_create_contact_with_every_field(session: AsyncSession) -> None:
    client_id = await _client(session)
    contact = await directory.create_contact(
        session,
        {
            "name": " Sally Sample ",
            "email": "Sally@Acme.Example",
            "title": "Head of Accounting",
            "department": "Accounts",
            "phone": "+1 (555) 010-0000",
            "extension": "12",
            "mobile": "+15550100001",
            "location": "HQ",
            "notes": "pays us",
            "important": True,
            "billing": "1",
            "technical": False,
            "auth_method": "sso",
            "client_id": client_id,
        },
    )
    assert contact.id > 0
    assert contact.name == "Sally Sample"
    assert contact.email == "Sally@acme.example"
    assert (contact.important, contact.billing, contact.technical) == (True, True, False)
    assert contact.auth_method == "sso"
    assert contact.client is not None and contact.client.name == "Acme"
    assert contact.created_at.tzinfo is not None


async def test_defaults_when_optional_fields_omitted(session: AsyncSession) -> None:
    contact = await directory.create_contact(session, {"name": "Bob"})
    assert (contact.important, contact.billing, contact.technical, contact.auth_method) == (
        False,
        False,
        False,
        "local",
    )
    assert contact.active is True
    assert contact.email is None


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("name", "x" * 65, "at most 64"),
        ("name", "", "required"),
        ("name", None, "may not be null"),
        ("email", "not-an-address", "not a valid email"),
        ("email", "a" * 64 + "@" + "b" * 120 + ".example", "at most 191"),
        ("phone", "1" * 33, "at most 32"),
        ("extension", "1" * 33, "at most 32"),
        ("mobile", "1" * 33, "at most 32"),
        ("department", "d" * 65, "at most 64"),
        ("title", "t" * 65, "at most 64"),
        ("auth_method", "ldap", "'local' or 'sso'"),
        ("important", "perhaps", "valid boolean"),
        ("billing", [], "valid boolean"),
        ("technical", {}, "valid boolean"),
        ("client_id", 999, "no client"),
        ("colour", "blue", "Extra inputs"),
    ],
)
async def test_each_field_rule(session: AsyncSession, field: str, value: Any, why: str) -> None:
    data = {"name": "Valid Name", "email": "ok@example.com", field: value}
    with pytest.raises(InvalidInput) as caught:
        await directory.create_contact(session, data)
    assert list(caught.value.fields) == [field]
    assert why in caught.value.fields[field]


async def test_limits_are_inclusive(session: AsyncSession) -> None:
    local = "a" * 64
    email = f"{local}@{'b' * 60}.{'c' * 60}.example"[:191]
    email = email.rstrip(".")
    contact = await directory.create_contact(
        session, {"name": "n" * 64, "email": email, "phone": "1" * 32, "title": "t" * 64, "department": "d" * 64}
    )
    assert len(contact.name) == 64


async def test_every_failing_field_is_listed(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as caught:
        await directory.create_contact(
            session, {"email": "bad", "phone": "1" * 40, "auth_method": "x", "client_id": 12345}
        )
    assert set(caught.value.fields) == {"name", "email", "phone", "auth_method", "client_id"}


async def test_mobile_e164_only_when_the_setting_asks(session: AsyncSession) -> None:
    await directory.create_contact(session, {"name": "A", "mobile": "0411 112 233"}, mobile_e164=False)
    with pytest.raises(InvalidInput) as caught:
        await directory.create_contact(session, {"name": "B", "mobile": "+61 411 112 233"}, mobile_e164=True)
    assert "E.164" in caught.value.fields["mobile"]
    ok = await directory.create_contact(session, {"name": "C", "mobile": "+61411112233"}, mobile_e164=True)
    assert ok.mobile == "+61411112233"


async def test_email_unique_case_insensitively(session: AsyncSession) -> None:
    first = await directory.create_contact(session, {"name": "A", "email": "sally@example.com"})
    with pytest.raises(FieldConflict) as caught:
        await directory.create_contact(session, {"name": "B", "email": "SALLY@example.com"})
    assert caught.value.fields == {"email": "taken"}
    assert f"contact {first.id}" in str(caught.value)


async def test_schema_index_catches_what_the_check_missed(session: AsyncSession) -> None:
    from mailtickets.models import Contact

    session.add(Contact(name="A", email="dup@example.com"))
    await session.flush()
    session.add(Contact(name="B", email="DUP@example.com"))
    with pytest.raises(FieldConflict) as caught:
        await directory.contacts._flush(session)
    assert caught.value.fields == {"email": "taken"}


async def test_patch_value_sets_null_clears_omitted_leaves(session: AsyncSession) -> None:
    contact = await directory.create_contact(
        session, {"name": "Tim", "email": "tim@example.com", "title": "Boss", "mobile": "+61411112233"}
    )
    updated = await directory.update_contact(session, contact.id, {"mobile": "+61444111222", "title": None})
    assert (updated.mobile, updated.title, updated.email, updated.name) == (
        "+61444111222",
        None,
        "tim@example.com",
        "Tim",
    )


async def test_patch_rejects_clearing_required_fields(session: AsyncSession) -> None:
    contact = await directory.create_contact(session, {"name": "Tim"})
    with pytest.raises(InvalidInput) as caught:
        await directory.update_contact(session, contact.id, {"name": None, "important": None})
    assert set(caught.value.fields) == {"name", "important"}


async def test_patch_email_to_another_contacts_conflicts(session: AsyncSession) -> None:
    await directory.create_contact(session, {"name": "A", "email": "a@example.com"})
    b = await directory.create_contact(session, {"name": "B", "email": "b@example.com"})
    with pytest.raises(Conflict):
        await directory.update_contact(session, b.id, {"email": "A@example.com"})
    same = await directory.update_contact(session, b.id, {"email": "B@example.com"})
    assert same.email == "B@example.com"


async def test_update_unknown_contact_is_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFound):
        await directory.update_contact(session, 424242, {"name": "x"})


async def test_upsert_creates_then_updates(session: AsyncSession) -> None:
    created, was_created = await directory.upsert_contact(session, "crm-80a4", {"name": "Ajay", "email": "a@x.example"})
    assert was_created and created.external_id == "crm-80a4"
    updated, was_created = await directory.upsert_contact(session, "crm-80a4", {"title": "CTO"})
    assert not was_created and updated.id == created.id and updated.title == "CTO" and updated.name == "Ajay"


async def test_upsert_create_needs_a_name(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as caught:
        await directory.upsert_contact(session, "crm-1", {"email": "x@example.com"})
    assert caught.value.fields == {"name": "required"}


async def test_delete_unreferenced_contact(session: AsyncSession) -> None:
    contact = await directory.create_contact(session, {"name": "Gone"})
    await directory.delete_contact(session, contact.id)
    with pytest.raises(NotFound):
        await directory.get_contact(session, contact.id)


async def test_delete_refuses_when_tickets_reference_it(session: AsyncSession) -> None:
    contact = await directory.create_contact(session, {"name": "Kept"})
    session.add(Ticket(prefix="TCK-", number=7, subject="printer", contact_id=contact.id))
    await session.flush()
    with pytest.raises(Conflict) as caught:
        await directory.delete_contact(session, contact.id)
    assert "TCK-7" in str(caught.value) and "active = false" in str(caught.value)


async def test_find_by_phone_or_mobile_compares_digits(session: AsyncSession) -> None:
    a = await directory.create_contact(session, {"name": "A", "phone": "15550100000"})
    b = await directory.create_contact(session, {"name": "B", "mobile": "+1 555-010-0000"})
    await directory.create_contact(session, {"name": "C", "phone": "15550100001"})
    page = await directory.find_contacts(session, ContactQuery(phone_or_mobile="+1 (555) 010-0000"))
    assert [c.id for c in page.items] == [a.id, b.id] and page.total == 2


async def test_find_by_email_client_and_pagination(session: AsyncSession) -> None:
    acme = await _client(session, "Acme")
    for n in range(5):
        await directory.create_contact(session, {"name": f"A{n}", "email": f"a{n}@x.example", "client_id": acme})
    await directory.create_contact(session, {"name": "Other", "email": "other@x.example"})
    by_email = await directory.find_contacts(session, ContactQuery(email="A3@X.example"))
    assert [c.name for c in by_email.items] == ["A3"]
    page = await directory.find_contacts(session, ContactQuery(client_id=acme, limit=2, offset=2))
    assert [c.name for c in page.items] == ["A2", "A3"] and page.total == 5


async def test_find_updated_since(session: AsyncSession) -> None:
    await directory.create_contact(session, {"name": "A"})
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    assert (await directory.find_contacts(session, ContactQuery(updated_since=past))).total == 1
    assert (await directory.find_contacts(session, ContactQuery(updated_since=future))).total == 0


async def test_find_rejects_bad_filters(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput):
        await directory.find_contacts(session, ContactQuery(phone_or_mobile="call me"))
    with pytest.raises(InvalidInput):
        await directory.find_contacts(session, ContactQuery(limit=0))

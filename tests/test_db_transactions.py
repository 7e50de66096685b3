"""Transactions and the group commit's item savepoints (`db.transaction`, `db.item_savepoint`): an item
is undone alone, and a transaction that SQLAlchemy rolled back behind the caller's back never passes
for committed; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from mailtickets.db import item_savepoint, transaction
from mailtickets.errors import TemporaryError
from mailtickets.models import Contact
from tests.conftest import Store


async def emails(store: Store) -> list[str | None]:
    async with store.sessions() as session:
        return sorted(await session.scalars(select(Contact.email)))


async def test_a_flush_that_failed_and_was_caught_fails_the_transaction_instead_of_passing_for_committed(
    store: Store,
) -> None:
    with pytest.raises(TemporaryError, match="rolled back by a failed flush"):
        async with transaction(store.sessions) as session:
            session.add(Contact(name="Ann", email="ann@acme.example"))
            await session.flush()
            with pytest.raises(IntegrityError):
                async with item_savepoint(session):  # outside a nested transaction: the whole one is lost
                    session.add(Contact(name="Ann again", email="ANN@acme.example"))
    assert await emails(store) == []


async def test_on_postgresql_an_items_release_goes_in_the_round_trip_of_the_next_savepoint(
    store: Store, backend: str
) -> None:
    trips: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        trips.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    async with transaction(store.sessions) as session:
        for name in ("ann", "bob", "cy"):
            async with item_savepoint(session):
                session.add(Contact(name=name, email=f"{name}@acme.example"))
    event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    savepoint_trips = [statement for statement in trips if "SAVEPOINT" in statement]
    # PostgreSQL: one round trip per item (the last item's release is the COMMIT's); SQLite, in-process: two.
    assert len(savepoint_trips) == (3 if backend == "postgres" else 6)
    assert await emails(store) == ["ann@acme.example", "bob@acme.example", "cy@acme.example"]


async def test_a_failed_item_is_undone_to_its_savepoint_and_the_others_commit(store: Store) -> None:
    # On PostgreSQL the items before a failure are not released yet (see the round-trip test above).
    async with transaction(store.sessions) as session:
        async with item_savepoint(session):
            session.add(Contact(name="Ann", email="ann@acme.example"))
        async with item_savepoint(session):
            session.add(Contact(name="Bob", email="bob@acme.example"))
        with pytest.raises(RuntimeError):
            async with item_savepoint(session):
                session.add(Contact(name="Cy", email="cy@acme.example"))
                await session.flush()
                raise RuntimeError("this item fails")
        with pytest.raises(RuntimeError):  # a failure right after a failure: nothing owed in between
            async with item_savepoint(session):
                session.add(Contact(name="Dee", email="dee@acme.example"))
                await session.flush()
                raise RuntimeError("this one too")
        async with item_savepoint(session):
            session.add(Contact(name="Eve", email="eve@acme.example"))  # flushed when its savepoint ends
    assert await emails(store) == ["ann@acme.example", "bob@acme.example", "eve@acme.example"]

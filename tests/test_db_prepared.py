"""Statements compiled once and run on the driver (`prepared.py`, `db.prepare`): they write and read the
same values as SQLAlchemy's own execution, raise SQLAlchemy's exceptions, run inside the session's
transaction, and are seen by statement listeners; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailtickets.db import connection_of, prepare
from mailtickets.models import Client, InboundMail, Outcome, QuarantineState, Ticket, TicketMessage
from tests.conftest import Store

INBOUND = cast(Table, InboundMail.__table__)
MESSAGES = cast(Table, TicketMessage.__table__)


def inbound_values(store: Store, key: str) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "source": "imap:support",
        "message_id": "<a@b.example>",
        "sender": "ann@acme.example",
        "subject": "S" * 1200,  # longer than the column: fitted by the column's type on the way in
        "raw_sha256": "0" * 64,
        "raw_size": 10,
        "outcome": Outcome.QUARANTINED,
        "reason": "unknown sender",
        "ticket_id": None,
        "raw_stored": True,
        "matched_rules": ["rule one", "rule two"],
        "headers": "From: ann@acme.example",
        "quarantine_state": QuarantineState.HELD,
        "received_at": store.clock.now() - timedelta(hours=2),
        "authenticated": False,
    }


async def test_a_prepared_insert_writes_what_sqlalchemy_would(store: Store) -> None:
    returning_id = insert(INBOUND).returning(INBOUND.c.id)
    async with store.sessions() as session, session.begin():
        connection = await connection_of(session)
        by_sqlalchemy = (await connection.execute(returning_id, inbound_values(store, "by-sa"))).scalar_one()
        prepared_id = (await prepare(returning_id).one(connection, inbound_values(store, "prepared")))[0]
        assert prepared_id == by_sqlalchemy + 1
    async with store.sessions() as session:
        rows = {row.dedupe_key: row for row in await session.scalars(select(InboundMail))}
    ours, theirs = rows["prepared"], rows["by-sa"]
    for column in INBOUND.c:
        if column.key not in ("id", "dedupe_key"):
            assert getattr(ours, column.key) == getattr(theirs, column.key), column.key
    assert len(ours.subject) == 998 and ours.outcome is Outcome.QUARANTINED
    assert ours.matched_rules == ["rule one", "rule two"]
    assert ours.received_at == store.clock.now() - timedelta(hours=2) and ours.received_at.tzinfo is not None


async def test_python_side_column_defaults_fill_what_the_caller_leaves_out(store: Store) -> None:
    now = store.clock.now()
    statement = prepare(insert(MESSAGES).returning(MESSAGES.c.public, MESSAGES.c.body_text, MESSAGES.c.to_addresses))
    async with store.sessions() as session, session.begin():
        ticket = Ticket(prefix="TCK-", number=1, subject="s", created_at=now, updated_at=now)
        session.add(ticket)
        await session.flush()
        given = {"ticket_id": ticket.id, "direction": "inbound", "author_role": "client", "created_at": now}
        returned = await statement.one(await connection_of(session), given)
    assert returned == (True, "", [])  # default=True, default="", default=list


async def test_a_prepared_select_returns_values_of_the_columns_types(store: Store) -> None:
    async with store.sessions() as session, session.begin():
        connection = await connection_of(session)
        await prepare(insert(INBOUND)).run(connection, inbound_values(store, "one"))
        query = prepare(
            select(INBOUND.c.outcome, INBOUND.c.received_at, INBOUND.c.matched_rules).where(
                INBOUND.c.dedupe_key == bindparam("key"), INBOUND.c.raw_stored.is_(True)
            )
        )
        assert await query.rows(connection, {"key": "none such"}) == []
        assert await query.scalar(connection, {"key": "none such"}) is None
        outcome, received_at, rules = await query.one(connection, {"key": "one"})
    assert outcome is Outcome.QUARANTINED and rules == ["rule one", "rule two"]
    assert received_at == store.clock.now() - timedelta(hours=2) and received_at.tzinfo is not None


async def test_a_unique_violation_is_sqlalchemys_integrity_error_and_a_savepoint_undoes_it(store: Store) -> None:
    statement = prepare(insert(INBOUND))
    async with store.sessions() as session, session.begin():
        await statement.run(await connection_of(session), inbound_values(store, "same"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await statement.run(await connection_of(session), inbound_values(store, "same"))
        await statement.run(await connection_of(session), inbound_values(store, "other"))  # the transaction goes on
    async with store.sessions() as session:
        assert sorted(await session.scalars(select(InboundMail.dedupe_key))) == ["other", "same"]


async def test_a_prepared_statement_first_in_a_transaction_is_rolled_back_with_it(store: Store) -> None:
    # asyncpg's adapter begins lazily, at the first statement: the prepared one must begin it too.
    async with store.sessions() as session:
        await prepare(insert(INBOUND)).run(await connection_of(session), inbound_values(store, "undone"))
        await session.rollback()
    async with store.sessions() as session:
        assert list(await session.scalars(select(InboundMail.dedupe_key))) == []


async def test_statement_listeners_see_prepared_statements(store: Store) -> None:
    seen: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    async with store.sessions() as session, session.begin():
        await prepare(insert(INBOUND)).run(await connection_of(session), inbound_values(store, "counted"))
    assert [sql.split()[:3] for sql in seen if sql.startswith("INSERT")] == [["INSERT", "INTO", "inbound_mail"]]


async def test_a_statement_it_cannot_run_as_is_goes_through_sqlalchemy(store: Store) -> None:
    expanding = prepare(select(INBOUND.c.dedupe_key).where(INBOUND.c.dedupe_key.in_(bindparam("keys", expanding=True))))
    async with store.sessions() as session, session.begin():
        connection = await connection_of(session)
        for key in ("a", "b", "c"):
            await prepare(insert(INBOUND)).run(connection, inbound_values(store, key))
        assert sorted(await expanding.rows(connection, {"keys": ["a", "c", "z"]})) == [("a",), ("c",)]


def test_a_table_cached_in_memory_cannot_be_written_past_its_change_counter() -> None:
    with pytest.raises(ValueError, match="clients is cached"):
        prepare(update(cast(Table, Client.__table__)).values(name="x"))


async def test_a_core_statement_first_in_a_savepoint_is_undone_with_it(store: Store) -> None:
    # SQLAlchemy emits the SAVEPOINT only when the nested transaction first asks for its connection:
    # `connection_of` must ask in each savepoint, or the statement runs outside it and survives its rollback.
    statement = prepare(insert(INBOUND))
    async with store.sessions() as session, session.begin():
        await statement.run(await connection_of(session), inbound_values(store, "kept"))
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await statement.run(await connection_of(session), inbound_values(store, "undone"))
                raise RuntimeError("this message fails")
        await statement.run(await connection_of(session), inbound_values(store, "after"))
    async with store.sessions() as session:
        assert sorted(await session.scalars(select(InboundMail.dedupe_key))) == ["after", "kept"]


def _hot_path_statements() -> dict[str, Any]:
    """Every statement the code prepares at import (module globals and RowLoaders), by where it is."""
    import importlib
    import pkgutil

    import mailtickets
    from mailtickets.db import RowLoader
    from mailtickets.prepared import Prepared

    found: dict[str, Any] = {}
    for module_info in pkgutil.walk_packages(mailtickets.__path__, "mailtickets."):
        if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, RowLoader):
                value = value._statement
            if isinstance(value, Prepared):
                found[f"{module_info.name}.{name}"] = value.statement
    return found


@pytest.mark.parametrize("driver", ["aiosqlite", "asyncpg"])
def test_every_prepared_statement_runs_on_the_driver_not_the_slow_way(driver: str) -> None:
    """A statement `_compile` cannot carry (an expanding IN, say) silently takes SQLAlchemy's own path at
    several times the cost: none of those prepared for the hot path may."""
    from sqlalchemy.dialects.postgresql import asyncpg
    from sqlalchemy.dialects.sqlite import aiosqlite

    from mailtickets.prepared import _compile

    dialect = aiosqlite.dialect() if driver == "aiosqlite" else asyncpg.dialect()
    statements = _hot_path_statements()
    assert "mailtickets.notify.outbox._RECENT_AUTOMATIC" in statements  # the scan finds them
    slow = []
    for where, statement in statements.items():
        compiled = statement.compile(dialect=dialect)
        keys = sorted(name for name, bind in compiled.binds.items() if bind.value is None and bind.callable is None)
        if _compile(statement, dialect, keys) is None:
            slow.append(where)
    assert slow == []

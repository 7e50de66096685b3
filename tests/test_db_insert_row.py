"""The ingest path's Core writes of ORM objects (`db.insert_row`, `db.attach_as_loaded`, `write_message`,
`db.flush_pending`): the object ends as if loaded or flushed (persistent, every column known, nothing left
for a flush), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from mailtickets.db import Before, attach_as_loaded, flush_pending, insert_row, insert_together, new_row, prepare
from mailtickets.models import (
    Attachment,
    AuthorRole,
    Contact,
    Direction,
    InboundMail,
    OutboxMail,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from mailtickets.tickets.service import NewTicket, create_ticket, write_message
from tests.conftest import Store


def count_statements(store: Store) -> list[str]:
    statements: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    return statements


async def test_a_row_written_with_core_is_a_loaded_object_with_its_defaults_and_nothing_to_flush(store: Store) -> None:
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        contact = Contact(name="Ann", email="ann@acme.example", created_at=now, updated_at=now)
        await insert_row(session, contact)
        attach_as_loaded(session, contact)
        state = inspect(contact)
        assert state.persistent and not state.expired_attributes
        assert contact.id is not None
        assert contact.active is True and contact.auth_method == "local"  # server defaults, from RETURNING
        statements = count_statements(store)
        await session.flush()
        assert statements == []  # not new, not dirty
        assert await session.get(Contact, contact.id) is contact  # the identity map has it
        contact.name = "Ann B."  # and a change to it is an ordinary ORM update
        await session.flush()
        assert [s.split()[0] for s in statements] == ["UPDATE"]
    async with store.sessions() as session:
        assert await session.scalar(select(Contact.name).where(Contact.email == "ann@acme.example")) == "Ann B."


def tables_written(statements: list[str]) -> list[str]:
    """Each write by the tables it inserts into: "INSERT a+b" for a statement that writes two (a WITH)."""
    named = [re.findall(r"INSERT INTO (\w+)", s) for s in statements if not s.startswith(("BEGIN", "SELECT"))]
    return ["INSERT " + "+".join(tables) for tables in named if tables]


async def test_a_new_ticket_and_its_message_with_attachments_cost_one_insert_each(store: Store, backend: str) -> None:
    now = store.clock.now()
    statements = count_statements(store)
    async with store.sessions() as session, session.begin():
        new = NewTicket(subject="  Printer on fire ", description="It burns.", client_id=None, contact_id=None)
        ticket = await create_ticket(session, "TCK-", new, now)
        message = TicketMessage(
            ticket_id=ticket.id,
            direction=Direction.INBOUND,
            author_email="ann@acme.example",
            author_role=AuthorRole.CLIENT,
            body_text="It burns.",
            created_at=now,
        )
        for name in ("a.pdf", "b.png"):
            message.attachments.append(Attachment(filename=name, content_type="x/y", size=1, sha256="0" * 64))
        await write_message(session, message)
        await session.flush()
        # PostgreSQL: the counter's bump and the ticket in one statement (a round trip costs more there).
        numbered = (
            ["INSERT ticket_counters+tickets"]
            if backend == "postgres"
            else ["INSERT ticket_counters", "INSERT tickets"]
        )
        assert tables_written(statements) == [
            *numbered,
            "INSERT ticket_messages",
            "INSERT attachments",
            "INSERT attachments",
        ]
        assert ticket.subject == "Printer on fire" and ticket.status == TicketStatus.OPEN and ticket.tags == []
        assert [a.message_id for a in message.attachments] == [message.id, message.id]
        assert all(inspect(a).persistent for a in message.attachments)
        assert message.left_out == [] and message.public is True  # column defaults, read back
        ticket.updated_at = now + timedelta(minutes=1)
    async with store.sessions() as session:
        stored = await session.scalar(select(TicketMessage).where(TicketMessage.id == message.id))
        assert stored is not None and [a.filename for a in stored.attachments] == ["a.pdf", "b.png"]
        assert (await session.get_one(Ticket, ticket.id)).updated_at == now + timedelta(minutes=1)


async def test_one_changed_object_is_written_by_one_update_of_what_changed_and_is_then_clean(store: Store) -> None:
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        new = NewTicket(subject="Printer", description="", client_id=None, contact_id=None)
        ticket = await create_ticket(session, "TCK-", new, now)
        other = Contact(name="Bob", email="bob@acme.example", created_at=now, updated_at=now)
        session.add(other)
        await session.flush()
        statements = count_statements(store)
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = now
        ticket.updated_at = now + timedelta(minutes=1)  # given: its `onupdate` does not apply
        ticket.subject = "Printer"  # set to what it was: no change to write
        await flush_pending(session)
        set_clauses = [s.split(" SET ")[1].split(" WHERE ")[0].split(", ") for s in statements]
        assert [[each.split("=")[0] for each in clause] for clause in set_clauses] == [
            ["status", "closed_at", "updated_at"]
        ]
        assert not session.dirty and not inspect(ticket).modified  # clean, as after a flush
        await flush_pending(session)
        assert len(statements) == 1
        ticket.contact = other  # a relationship: its foreign key is the flush's to set
        await flush_pending(session)
        assert ticket.contact_id == other.id and not session.dirty
    async with store.sessions() as session:
        stored = await session.get_one(Ticket, ticket.id)
        assert (stored.status, stored.closed_at, stored.contact_id) == (TicketStatus.CLOSED, now, other.id)


async def test_a_change_that_leaves_a_column_to_its_onupdate_goes_to_the_flush(store: Store) -> None:
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        ticket = await create_ticket(session, "TCK-", NewTicket("Printer", "", None, None), now)
        statements = count_statements(store)
        ticket.status = TicketStatus.HOLD  # updated_at not given: the database sets it, as the ORM does
        await flush_pending(session)
        assert len(statements) == 1
        assert "updated_at=CURRENT_TIMESTAMP" in statements[0] or "updated_at=now()" in statements[0]
        assert not session.dirty


async def test_an_object_made_by_new_row_is_the_constructors_and_is_written_by_a_flush_or_by_insert_row(
    store: Store,
) -> None:
    now = store.clock.now()
    columns = {"name": "Ann", "email": "ann@acme.example", "created_at": now, "updated_at": now}
    made, constructed = new_row(Contact, **columns), Contact(**columns)
    assert inspect(made).transient and {k: made.__dict__[k] for k in columns} == columns
    assert {k: getattr(made, k) for k in columns} == {k: getattr(constructed, k) for k in columns}
    with pytest.raises(TypeError, match="no column attribute"):
        new_row(Contact, client=None)  # a relationship: the constructor's instrumentation is needed there
    async with store.sessions() as session, session.begin():
        session.add(made)  # the unit of work inserts what the object's dict holds
        cora = new_row(Contact, name="Cora", email="cora@acme.example", created_at=now, updated_at=now)
        await insert_row(session, cora)
        attach_as_loaded(session, cora)
        cora.name = "Cora B."  # its attributes are instrumented as any other's: the change is flushed
    async with store.sessions() as session:
        found = list(await session.scalars(select(Contact.name).order_by(Contact.name)))
        assert found == ["Ann", "Cora B."]


async def test_a_message_written_with_its_inbound_record_gets_its_id_and_its_column_defaults(
    store: Store, backend: str
) -> None:
    now = store.clock.now()
    inbound = InboundMail.__table__
    record = {
        "dedupe_key": "msgid:<a@x>", "source": "test", "raw_sha256": "0" * 64, "raw_size": 1, "outcome": "created",
        "raw_stored": False, "received_at": now,
    }  # fmt: skip
    statements = count_statements(store)
    async with store.sessions() as session, session.begin():
        ticket = await create_ticket(
            session, "TCK-", NewTicket(subject="S", description="", client_id=None, contact_id=None), now
        )
        message = new_row(TicketMessage, ticket_id=ticket.id, direction=Direction.INBOUND, created_at=now)
        await write_message(session, message, Before(_RECORD, record, "inbound_mail_id"))
        linked = await session.scalar(select(inbound.c.dedupe_key).where(inbound.c.id == message.inbound_mail_id))
        assert linked == "msgid:<a@x>"
        # Python-side column defaults, as a plain insert applies them, read back: in the WITH too.
        assert (
            message.public is True and message.left_out == [] and message.to_addresses == [] and message.body_text == ""
        )
        assert inspect(message).persistent and not inspect(message).expired_attributes
    merged = backend == "postgres"
    assert tables_written(statements)[-2:] == (
        ["INSERT ticket_counters+tickets", "INSERT inbound_mail+ticket_messages"]
        if merged
        else ["INSERT inbound_mail", "INSERT ticket_messages"]
    )
    with pytest.raises(IntegrityError):  # the first row's failure is the statement's: as if it ran alone
        async with store.sessions() as session, session.begin():
            again = new_row(TicketMessage, ticket_id=ticket.id, direction=Direction.INBOUND, created_at=now)
            await write_message(session, again, Before(_RECORD, record, "inbound_mail_id"))
    async with store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TicketMessage)) == 1


_RECORD = prepare(insert(InboundMail.__table__).returning(InboundMail.__table__.c.id))


async def test_rows_written_together_are_one_statement_on_postgresql_with_their_column_defaults(
    store: Store, backend: str
) -> None:
    now = store.clock.now()
    statements = count_statements(store)
    async with store.sessions() as session, session.begin():
        new = NewTicket(subject="S", description="", client_id=None, contact_id=None)
        ticket = await create_ticket(session, "TCK-", new, now)
        outbox = {"kind": "acknowledgement", "ticket_id": ticket.id, "recipient": "ann@acme.example", "raw": b"x"}
        outbox |= {"message_id": "<o@x>", "next_attempt_at": now, "created_at": now}
        copy = {"ticket_id": ticket.id, "direction": Direction.OUTBOUND, "message_id": "<m@x>", "created_at": now}
        await insert_together(session, (_OUTBOX, outbox), (_MESSAGE, copy))  # both have ticket_id and message…
    merged = backend == "postgres"
    assert tables_written(statements)[-1:] == (
        ["INSERT outbox+ticket_messages"] if merged else ["INSERT ticket_messages"]
    )
    async with store.sessions() as session:
        mail = await session.scalar(select(OutboxMail))
        assert mail is not None and mail.recipient == "ann@acme.example" and mail.ticket_id == ticket.id
        assert mail.attempts == 0 and mail.automatic is True  # Python-side column defaults, filled in
        message = await session.scalar(select(TicketMessage))
        assert message is not None and message.message_id == "<m@x>" and message.public is True
        assert message.to_addresses == [] and message.left_out == []
    with pytest.raises(IntegrityError):  # the first row's failure fails the statement: nothing of either
        async with store.sessions() as session, session.begin():
            await insert_together(session, (_OUTBOX, outbox | {"ticket_id": 999_999}), (_MESSAGE, copy))
    async with store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TicketMessage)) == 1


_OUTBOX = prepare(insert(OutboxMail.__table__))
_MESSAGE = prepare(insert(TicketMessage.__table__))

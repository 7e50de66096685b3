"""Routing rules applied by the pipeline: actions land on the ticket, drop and quarantine stop it,
and a change takes effect on the next message without a restart."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailtickets.models import InboundMail, OutboxMail, Outcome, Priority, Ticket, TicketStatus
from mailtickets.rules import load_rules_toml
from mailtickets.rules.store import replace_all_rules
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

RULES = """
[[rule]]
name = "Newsletters out"
conditions = [{ field = "subject", op = "contains", value = "newsletter" }]
actions = [{ action = "drop", value = "newsletter" }]

[[rule]]
name = "Suspicious attachments"
conditions = [{ field = "subject", op = "regex", value = "(?i)invoice\\\\s+overdue" }]
actions = [{ action = "quarantine", value = "looks like phishing" }]

[[rule]]
name = "Globex is urgent"
conditions = [{ field = "from_domain", op = "equals", value = "globex.example" }]
actions = [
  { action = "set_priority", value = "high" },
  { action = "assign_agent", value = "dan@helpdesk.example" },
  { action = "add_tag", value = "vip" },
  { action = "set_category", value = "Hardware" },
]

[[rule]]
name = "Partner mail belongs to Acme"
conditions = [{ field = "from_domain", op = "equals", value = "partner.example" }]
actions = [{ action = "set_client", value = "Acme Corp" }]

[[rule]]
name = "Delivery receipts are filed closed"
conditions = [{ field = "subject", op = "starts_with", value = "delivered:" }]
actions = [{ action = "set_status", value = "closed" }, { action = "suppress_acknowledgement" }]
"""


@pytest.fixture
async def ruled(sqlite_store: Store) -> Store:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    async with sqlite_store.sessions() as session, session.begin():
        await replace_all_rules(session, load_rules_toml(RULES), actor="test")
    return sqlite_store


async def new_ticket(store: Store) -> Ticket:
    async with store.sessions() as session:
        return (await session.scalars(select(Ticket).where(Ticket.number == 4))).one()


async def test_drop_rule_records_the_rule_and_its_reason(ruled: Store) -> None:
    result = await ruled.pipeline().ingest(make_message(subject="Our monthly newsletter"), "pipe")
    assert result.outcome == Outcome.DROPPED
    assert result.reason == "rule Newsletters out: newsletter"


async def test_quarantine_rule_holds_the_raw_message(ruled: Store) -> None:
    result = await ruled.pipeline().ingest(make_message(subject="Invoice   overdue!!"), "pipe")
    assert result.outcome == Outcome.QUARANTINED and "phishing" in (result.reason or "")
    async with ruled.sessions() as session:
        assert (await session.scalars(select(InboundMail))).one().raw_stored


async def test_field_actions_land_on_the_new_ticket(ruled: Store) -> None:
    raw = make_message(sender="carol@globex.example", subject="Monitor flickers", message_id="<g1@globex.example>")
    assert (await ruled.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED
    ticket = await new_ticket(ruled)
    assert ticket.priority == Priority.HIGH
    assert ticket.assigned_agent is not None and ticket.assigned_agent.email == "dan@helpdesk.example"
    assert ticket.tags == ["vip"] and ticket.category == "Hardware"


async def test_set_client_turns_an_unknown_sender_into_a_ticket_for_that_client(ruled: Store) -> None:
    raw = make_message(sender="erin@partner.example", subject="New request", message_id="<n@partner.example>")
    assert (await ruled.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED
    ticket = await new_ticket(ruled)
    assert ticket.client is not None and ticket.client.name == "Acme Corp"


async def test_a_ticket_filed_closed_by_a_rule_is_closed_now_and_not_acknowledged(ruled: Store) -> None:
    raw = make_message(subject="Delivered: parcel 7", message_id="<d@acme.example>")
    assert (await ruled.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED
    ticket = await new_ticket(ruled)
    assert (ticket.status, ticket.closed_at) == (TicketStatus.CLOSED, ruled.clock.now())
    async with ruled.sessions() as session:
        assert "acknowledgement" not in (await session.scalars(select(OutboxMail.kind))).all()


async def test_a_rule_change_applies_to_the_next_message_without_restart(ruled: Store) -> None:
    pipeline = ruled.pipeline()
    first = await pipeline.ingest(make_message(subject="newsletter 1", message_id="<a@acme.example>"), "pipe")
    assert first.outcome == Outcome.DROPPED
    async with ruled.sessions() as session, session.begin():
        await replace_all_rules(session, (), actor="test")
    second = await pipeline.ingest(make_message(subject="newsletter 2", message_id="<b@acme.example>"), "pipe")
    assert second.outcome == Outcome.CREATED

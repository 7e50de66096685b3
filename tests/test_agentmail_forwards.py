"""An agent forwards a client's mail, or writes to a client with us in copy: a ticket for that client.

The forward fixtures in tests/fixtures/eml/forwards/ are the shapes Outlook, Gmail, Apple Mail and
Thunderbird write (inline header blocks, and a message/rfc822 attachment); Frank is not a contact yet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailtickets.agentmail.forwards import forwarded_original
from mailtickets.models import Agent, AuthorRole, Contact, Outcome, Ticket, TicketMessage
from mailtickets.parse.parser import parse_message
from tests.agentmail_support import ALICE_PASSES, Desk, from_dan, make_desk
from tests.conftest import Store
from tests.notify_support import SmtpSink

FORWARDS = Path(__file__).parent / "fixtures" / "eml" / "forwards"
SHAPES = sorted(path.name for path in FORWARDS.glob("*.eml"))


@pytest.fixture
async def desk(sqlite_store: Store, sink: SmtpSink) -> Desk:
    return await make_desk(sqlite_store, sink)


def test_every_mail_client_shape_is_covered() -> None:
    names = " ".join(SHAPES)
    assert all(client in names for client in ("outlook", "gmail", "apple-mail", "thunderbird"))
    assert "as-attachment" in names


@pytest.mark.parametrize("name", SHAPES)
def test_the_original_sender_is_found(name: str) -> None:
    original = forwarded_original(parse_message((FORWARDS / name).read_bytes()))
    assert original is not None
    assert (original.sender, original.sender_name) == ("frank@acme.example", "Frank Fischer")
    assert original.text.startswith("Hi") or original.text.startswith("Hello")
    agents_words = parse_message((FORWARDS / name).read_bytes()).text.strip().splitlines()[0]
    assert agents_words not in original.text  # the agent's own words are not the client's


@pytest.mark.parametrize("name", SHAPES)
async def test_a_forward_makes_the_original_sender_the_contact(desk: Desk, name: str) -> None:
    result = await desk.ingest((FORWARDS / name).read_bytes())
    assert (result.outcome, result.ticket, result.author_role) == (Outcome.CREATED, "TCK-4", AuthorRole.AGENT)
    assert result.reason == "forwarded by agent dan@helpdesk.example for frank@acme.example"
    ticket = await desk.ticket("TCK-4")
    async with desk.store.sessions() as session:
        contact = await session.get_one(Contact, ticket.contact_id)
        query = select(TicketMessage).where(TicketMessage.ticket_id == ticket.id, TicketMessage.agent_id.is_not(None))
        (message,) = (await session.scalars(query)).all()
        dan = (await session.scalars(select(Agent).where(Agent.email == "dan@helpdesk.example"))).one()
    assert (contact.email, contact.name, ticket.client_id) == ("frank@acme.example", "Frank Fischer", contact.client_id)
    assert ticket.client is not None and ticket.client.name == "Acme Corp"  # matched by domain, as any inbound mail
    parsed = parse_message((FORWARDS / name).read_bytes())
    agents_words = parsed.text.strip().splitlines()[0]
    assert ticket.description.endswith("Frank") and agents_words not in ticket.description
    assert not ticket.subject.lower().startswith(("fw", "fwd"))
    assert (message.agent_id, message.author_role, message.author_email) == (dan.id, AuthorRole.CLIENT, contact.email)
    (acknowledgement,) = await desk.deliver()  # the client learns their ticket number
    assert acknowledgement["To"].addresses[0].addr_spec == "frank@acme.example"


async def test_forwarding_can_be_switched_off(sqlite_store: Store, sink: SmtpSink) -> None:
    desk = await make_desk(sqlite_store, sink, agent_forward_as_client=False)
    result = await desk.ingest((FORWARDS / "gmail-forward-inline.eml").read_bytes())
    assert result.outcome == Outcome.QUARANTINED
    assert result.reason == "mail from agent dan@helpdesk.example names no client to open a ticket for"


async def test_a_new_mail_to_a_client_opens_a_ticket_for_the_first_address_not_ours(desk: Desk) -> None:
    raw = from_dan(
        "Hi Bob,\nwe will replace your monitor on Friday.",
        subject="Monitor replacement",
        to="Bob Brown <bob@acme.example>",
        cc="support@helpdesk.example, Eve <dan@helpdesk.example>",
    )
    result = await desk.ingest(raw)
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4"), result.reason
    assert result.reason == "opened by agent dan@helpdesk.example for bob@acme.example"
    ticket = await desk.ticket("TCK-4")
    assert ticket.contact is not None and ticket.contact.email == "bob@acme.example"
    assert await desk.deliver() == []  # Bob already has Dan's mail
    answer = from_dan(
        "Friday works.",
        sender="Bob Brown <bob@acme.example>",
        authentication=ALICE_PASSES["Authentication-Results"],  # acme.example's DMARC pass
        subject="Re: Monitor replacement",
        in_reply_to="<dan-1@helpdesk.example>",  # reply-all to Dan's mail
        message_id="<b@acme.example>",
    )
    reply = await desk.ingest(answer)
    assert (reply.outcome, reply.ticket, reply.author_role) == (Outcome.REPLIED, "TCK-4", AuthorRole.CLIENT)


async def test_a_new_mail_naming_nobody_is_quarantined_and_the_agent_told(desk: Desk) -> None:
    result = await desk.ingest(from_dan("Note to nobody.", subject="Something", to="support@helpdesk.example"))
    assert result.outcome == Outcome.QUARANTINED
    (notice,) = await desk.deliver()
    assert notice["To"].addresses[0].addr_spec == "dan@helpdesk.example"
    async with desk.store.sessions() as session:
        assert (await session.scalars(select(Ticket).where(Ticket.number == 4))).all() == []

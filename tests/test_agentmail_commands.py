"""`#commands` at the top of an agent's mail: the parser alone, then each command through the real pipeline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from mailtickets.agentmail.commands import CommandError, parse_commands
from mailtickets.db import transaction
from mailtickets.directory import create_agent
from mailtickets.models import Agent, InboundMail, Outcome, Priority, QuarantineState, Ticket, TicketStatus
from tests.agentmail_support import QUOTED, Desk, from_dan, make_desk
from tests.conftest import Store
from tests.notify_support import SmtpSink


def test_commands_are_the_lines_at_the_very_top() -> None:
    parsed = parse_commands("\n#close\n#PRIORITY High\n\nThanks, all done.\n#hold is not a command down here")
    assert [(c.name, c.argument, c.line) for c in parsed.commands] == [("close", "", 2), ("priority", "high", 3)]
    assert parsed.text == "Thanks, all done.\n#hold is not a command down here"


def test_a_mail_without_commands_is_all_text() -> None:
    text = "Hello,\n#close would close it"
    assert parse_commands(text).commands == () and parse_commands(text).text == text


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("#close\n#frobnicate now", 2, "unknown command #frobnicate"),
        ("#priority urgent", 1, "#priority takes one of high, medium, low"),
        ("#status sleeping", 1, "#status takes one of"),
        ("#close now", 1, "#close takes no argument"),
        ("#assign", 1, "#assign needs an argument"),
        ("#merge the other one", 1, "#merge takes a ticket reference"),
        ("\n\n#category " + "x" * 101, 3, "at most 100 characters"),
    ],
)
def test_a_bad_command_names_its_line_and_why(text: str, line: int, why: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse_commands(text)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"line {line} (")
    assert why in str(raised.value)


@pytest.fixture
async def desk(sqlite_store: Store, sink: SmtpSink) -> Desk:
    return await make_desk(sqlite_store, sink)


def _assignee(ticket: Ticket) -> str | None:
    return ticket.assigned_agent.email if ticket.assigned_agent is not None else None


@pytest.mark.parametrize(
    ("command", "check"),
    [
        ("#hold", lambda t: t.status == TicketStatus.HOLD),
        ("#status working", lambda t: t.status == TicketStatus.WORKING),
        ("#priority high", lambda t: t.priority == Priority.HIGH),
        ("#category Printers", lambda t: t.category == "Printers"),
        ("#assign me", lambda t: _assignee(t) == "dan@helpdesk.example"),
        ("#assign eve@helpdesk.example", lambda t: _assignee(t) == "eve@helpdesk.example"),
        ("#assign Eve Agent", lambda t: _assignee(t) == "eve@helpdesk.example"),
        ("#assign eve", lambda t: _assignee(t) == "eve@helpdesk.example"),
    ],
)
async def test_each_command_alone_changes_the_ticket_and_mails_no_client(
    desk: Desk, command: str, check: Callable[[Ticket], bool]
) -> None:
    async with transaction(desk.store.sessions) as session:
        await create_agent(session, "Eve Agent", "eve@helpdesk.example")
    result = await desk.ingest(from_dan(command + QUOTED))
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1"), result.reason
    assert result.reason == f"commands applied: {command}"
    assert check(await desk.ticket())
    mails = await desk.deliver()
    assert all(m["To"].addresses[0].addr_spec != "alice@acme.example" for m in mails)
    stored = [m for m in await desk.messages() if m.agent_id is not None]
    assert [(m.public, m.body_text_new) for m in stored] == [(False, command)]  # the history says who did it


async def test_close_alone_sends_one_closure_notice_not_two(desk: Desk) -> None:
    result = await desk.ingest(from_dan("#close" + QUOTED))
    assert (result.outcome, result.reason) == (Outcome.REPLIED, "commands applied: #close")
    assert (await desk.ticket()).status == TicketStatus.CLOSED
    mails = await desk.deliver()
    assert [m["To"].addresses[0].addr_spec for m in mails] == ["alice@acme.example"]
    assert "closed" in mails[0]["Subject"].lower() or "closed" in mails[0].get_body().get_content().lower()


async def test_reopen_and_unassign(desk: Desk) -> None:
    await desk.assign_to_dan("TCK-2")
    result = await desk.ingest(from_dan("#reopen\n#unassign", subject="Re: [TCK-2] VPN down"))
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-2"), result.reason
    ticket = await desk.ticket("TCK-2")
    assert ticket.status == TicketStatus.OPEN and ticket.assigned_agent_id is None


async def test_merge_moves_this_ticket_into_the_other(desk: Desk) -> None:
    result = await desk.ingest(from_dan("#merge TCK-2"))
    assert result.outcome == Outcome.REPLIED, result.reason
    merged, target = await desk.ticket("TCK-1"), await desk.ticket("TCK-2")
    assert merged.merged_into_id == target.id and merged.status == TicketStatus.CLOSED


async def test_commands_with_a_reply_apply_together_and_the_client_gets_the_text(desk: Desk) -> None:
    raw = from_dan("#priority low\n#status working\n#category Hardware\n\nOrdered a new fuser." + QUOTED)
    result = await desk.ingest(raw)
    assert result.reason == "agent reply; commands applied: #priority low, #status working, #category Hardware"
    ticket = await desk.ticket()
    assert (ticket.priority, ticket.status, ticket.category) == (Priority.LOW, TicketStatus.WORKING, "Hardware")
    (mail,) = await desk.deliver()
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ordered a new fuser." in text and "#priority" not in text and "#category" not in text


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("#priority high\n#frobnicate\n\nText", "line 2 (#frobnicate): unknown command"),
        ("#priority high\n#assign nobody@helpdesk.example", "line 2 (#assign nobody@helpdesk.example): no active"),
        ("#priority high\n#merge TCK-99", "line 2 (#merge TCK-99): no ticket TCK-99"),
        ("#priority high\n#merge TCK-1", "line 2 (#merge TCK-1): a ticket cannot be merged into itself"),
        ("#close\n#hold", "line 2 (#hold): TCK-1 is closed: cannot become hold"),
    ],
)
async def test_a_bad_command_rejects_the_whole_mail(desk: Desk, body: str, why: str) -> None:
    before = await desk.ticket()
    result = await desk.ingest(from_dan(body))
    assert result.outcome == Outcome.QUARANTINED
    assert why in (result.reason or ""), result.reason
    after = await desk.ticket()
    assert (after.priority, after.status) == (before.priority, before.status)  # none of the commands applied
    (answer,) = await desk.deliver()
    assert answer["To"].addresses[0].addr_spec == "dan@helpdesk.example"
    assert why in answer.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    async with desk.store.sessions() as session:
        held = (await session.scalars(select(InboundMail).where(InboundMail.outcome == Outcome.QUARANTINED))).one()
        assert held.quarantine_state == QuarantineState.HELD and held.raw_stored  # nothing is lost
    assert [m for m in await desk.messages() if m.agent_id is not None] == []


async def test_an_ambiguous_name_is_refused(desk: Desk) -> None:
    async with transaction(desk.store.sessions) as session:
        await create_agent(session, "Eve Agent", "eve@helpdesk.example")
        await create_agent(session, "Eve Other", "eve.other@helpdesk.example")
    result = await desk.ingest(from_dan("#assign eve"))
    assert result.outcome == Outcome.QUARANTINED and "2 agents are named eve" in (result.reason or "")
    async with desk.store.sessions() as session:
        assert (await session.scalars(select(Ticket).where(Ticket.assigned_agent_id.is_not(None)))).all() == []
        assert len((await session.scalars(select(Agent))).all()) == 3


async def test_a_reply_takes_a_ticket_on_hold_back_to_open_unless_it_says_hold(desk: Desk) -> None:
    assert (await desk.ingest(from_dan("#hold", message_id="<h1@helpdesk.example>"))).outcome == Outcome.REPLIED
    assert (await desk.ticket()).status == TicketStatus.HOLD
    await desk.ingest(from_dan("The part arrived.", message_id="<h2@helpdesk.example>"))
    assert (await desk.ticket()).status == TicketStatus.OPEN
    await desk.ingest(from_dan("#hold\nWaiting for the vendor.", message_id="<h3@helpdesk.example>"))
    assert (await desk.ticket()).status == TicketStatus.HOLD

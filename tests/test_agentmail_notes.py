"""Private notes by the note address or a `#note` first line: kept on the ticket, mailed to no client."""

from __future__ import annotations

import pytest

from mailtickets.db import transaction
from mailtickets.directory import create_agent
from mailtickets.models import AuthorRole, Outcome
from mailtickets.tickets import lifecycle
from tests.agentmail_support import QUOTED, Desk, from_dan, make_desk, text_of
from tests.conftest import Store
from tests.notify_support import SmtpSink

NOTE_ADDRESS = "support+note@helpdesk.example"
NOTE_TEXT = "Customer is on the phone, will call back."


@pytest.fixture
async def desk(store: Store, sink: SmtpSink) -> Desk:
    return await make_desk(store, sink, note_address=NOTE_ADDRESS)


@pytest.mark.parametrize(
    ("body", "to"),
    [
        pytest.param(f"{NOTE_TEXT}{QUOTED}", NOTE_ADDRESS, id="note-address"),
        pytest.param(f"#note\n{NOTE_TEXT}{QUOTED}", "support@helpdesk.example", id="marker"),
    ],
)
async def test_a_note_reaches_no_client(desk: Desk, body: str, to: str) -> None:
    result = await desk.ingest(from_dan(body, to=to))
    assert (result.outcome, result.reason, result.author_role) == (Outcome.REPLIED, "agent note", AuthorRole.AGENT)
    assert await desk.deliver() == []  # nobody else is assigned: nobody to tell
    (note,) = [m for m in await desk.messages() if m.agent_id is not None]
    assert not note.public and note.body_text_new == NOTE_TEXT


async def test_the_assigned_agent_hears_of_someone_elses_note(desk: Desk) -> None:
    settings, clock = desk.store.settings, desk.store.clock
    async with transaction(desk.store.sessions) as session:
        await create_agent(session, "Eve Agent", "eve@helpdesk.example")
        await lifecycle.assign(session, settings, clock.now(), "TCK-1", "eve@helpdesk.example")
    result = await desk.ingest(from_dan("Checked the logs: the fuser is broken.", to=NOTE_ADDRESS))
    assert result.outcome == Outcome.REPLIED
    (mail,) = await desk.deliver()
    assert mail["To"].addresses[0].addr_spec == "eve@helpdesk.example"
    assert "private note" in mail["Subject"] and "fuser is broken" in text_of(mail)
    assert mail["Auto-Submitted"] == "auto-generated"


async def test_the_assigned_agent_is_not_told_of_their_own_note(desk: Desk) -> None:
    await desk.assign_to_dan()
    assert (await desk.ingest(from_dan("Note to self.", to=NOTE_ADDRESS))).outcome == Outcome.REPLIED
    assert await desk.deliver() == []

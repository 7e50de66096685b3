"""Table-driven: every real-world fixture in tests/fixtures/eml/ gets the outcome expected.toml gives it,
and what is stored (subject, text, quote-stripped text, attachments) is what a person would expect."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailtickets.models import InboundMail, Ticket, TicketMessage
from tests.conftest import Store
from tests.world import build_world

FIXTURES = Path(__file__).parent / "fixtures" / "eml"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((FIXTURES / "expected.toml").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_fixture(sqlite_store: Store, name: str) -> None:
    expected = EXPECTED[name]
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    result = await sqlite_store.pipeline().ingest((FIXTURES / name).read_bytes(), "fixture")
    assert result.outcome.value == expected["outcome"], result.reason
    assert result.ticket == expected.get("ticket")
    if "reason_contains" in expected:
        assert expected["reason_contains"] in (result.reason or "").lower()
    async with sqlite_store.sessions() as session:
        record = (await session.scalars(select(InboundMail))).one()
        if "sender" in expected:
            assert (record.sender or "").lower() == expected["sender"]
        if result.ticket is None:
            return
        message = await session.scalar(select(TicketMessage).where(TicketMessage.inbound_mail_id == record.id))
        ticket = await session.get_one(Ticket, message.ticket_id) if message else None
    assert message is not None and ticket is not None
    _check_stored(expected, message, ticket)


def _check_stored(expected: dict[str, Any], message: TicketMessage, ticket: Ticket) -> None:
    if "subject" in expected and expected["outcome"] == "created":
        assert ticket.subject == expected["subject"]
    for text in expected.get("text_contains", []):
        assert text in message.body_text
    for text in expected.get("text_excludes", []):
        assert text not in message.body_text
    for dangerous in ("<script", "onclick=", "onload=", "javascript:", "<iframe"):  # sanitised HTML only
        assert dangerous not in (message.body_html or "").lower()
    for text in expected.get("new_text_excludes", []):
        assert text not in message.body_text_new
    names = [a.filename for a in message.attachments]
    for name in expected.get("attachments", []):
        assert name in names
    for name in names:  # whatever the sender wrote, a stored name is a plain file name
        assert name and "/" not in name and "\\" not in name
        assert not any(ord(ch) < 32 for ch in name)

"""What the trace keeps of every inbound mail: the rules that matched and the header block as received."""

from __future__ import annotations

from sqlalchemy import select

from mailtickets.models import Client, ClientDomain, InboundMail
from mailtickets.pipeline.ingest import MAX_TRACE_HEADER_CHARS, header_block
from mailtickets.rules.model import rule_from_dict
from mailtickets.rules.store import create_rule
from tests.builders import make_message
from tests.conftest import Store


async def test_matched_rules_and_headers_are_recorded(store: Store) -> None:
    async with store.sessions() as session, session.begin():
        session.add(Client(name="Acme", domains=[ClientDomain(domain="acme.example")]))
        for name, word in (("printers", "printer"), ("fire", "fire"), ("never", "invoice")):
            rule = {
                "name": name,
                "conditions": [{"field": "subject", "op": "contains", "value": word}],
                "actions": [{"action": "add_tag", "value": name}],
            }
            await create_rule(session, rule_from_dict(rule), "test")
    await store.pipeline().ingest(make_message(subject="Printer on fire"), "support")
    await store.pipeline().ingest(make_message(subject="Hello", message_id="<m2@acme.example>"), "support")
    async with store.sessions() as session:
        first, second = (await session.scalars(select(InboundMail).order_by(InboundMail.id))).all()
    assert first.matched_rules == ["printers", "fire"] and second.matched_rules is None
    assert first.headers is not None and "Subject: Printer on fire" in first.headers
    assert "Hello, the printer" not in first.headers, "the body is not part of the header block"


def test_header_block_is_bounded_and_stops_at_the_blank_line() -> None:
    assert header_block(b"A: 1\r\nB: 2\r\n\r\nbody") == "A: 1\r\nB: 2"
    assert header_block(b"A: 1\n\nbody\n\nmore") == "A: 1"
    huge = b"X-Long: " + b"y" * (MAX_TRACE_HEADER_CHARS * 10) + b"\r\n\r\nbody"
    assert len(header_block(huge)) == MAX_TRACE_HEADER_CHARS
    assert "\x00" not in header_block(b"A: \x00x\r\n\r\n")

"""Outgoing mail coming back: the client's reply to our acknowledgement threads by In-Reply-To even
without the ticket number in the subject, and our own mail reflected back is never a ticket."""

from __future__ import annotations

import pytest

from mailtickets.models import Outcome
from mailtickets.notify.guard import is_own_mail
from mailtickets.notify.sender import deliver_due
from mailtickets.parse.parser import parse_message
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import SmtpSink, notify_settings
from tests.world import build_world


@pytest.fixture
async def world(store: Store, sink: SmtpSink) -> Store:
    await build_world(store.sessions, store.clock)
    store.settings = notify_settings(store.settings, smtp_url=sink.url, notify_new_tickets_to=[])
    return store


async def _acknowledgement(world: Store, sink: SmtpSink) -> bytes:
    raw = make_message(subject="Toner empty", message_id="<toner-1@acme.example>")
    created = await world.pipeline().ingest(raw, "test")
    assert created.outcome == Outcome.CREATED
    assert await deliver_due(world.settings, world.sessions, world.clock) == 1
    ((_, recipients, ack),) = sink.handler.received
    assert recipients == ["alice@acme.example"]
    return ack


async def test_reply_without_ticket_number_threads_by_in_reply_to(world: Store, sink: SmtpSink) -> None:
    ack = await _acknowledgement(world, sink)
    (message,) = sink.handler.messages()
    assert message["Subject"].startswith("[TCK-4] ")
    reply = make_message(
        subject="Re: Toner empty",  # the mail client dropped our tag
        message_id="<toner-2@acme.example>",
        in_reply_to=message["Message-ID"],
        references=f"<toner-1@acme.example> {message['Message-ID']}",
        body="Still empty.",
    )
    result = await world.pipeline().ingest(reply, "test")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-4")
    assert ack  # delivered bytes were what the client saw


async def test_reply_with_only_references_threads(world: Store, sink: SmtpSink) -> None:
    await _acknowledgement(world, sink)
    (message,) = sink.handler.messages()
    reply = make_message(
        subject="Toner",
        message_id="<toner-3@acme.example>",
        references=message["Message-ID"],  # e.g. a ticketing system that keeps only References
    )
    result = await world.pipeline().ingest(reply, "test")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-4")


async def test_our_own_mail_reflected_back_is_recognised(world: Store, sink: SmtpSink) -> None:
    ack = await _acknowledgement(world, sink)
    assert is_own_mail(parse_message(ack).headers, world.settings)
    result = await world.pipeline().ingest(ack, "test")
    assert result.outcome == Outcome.DROPPED


def test_foreign_mail_is_not_own(store: Store) -> None:
    raw = make_message(headers={"X-Loop": "other@elsewhere.example"})
    assert not is_own_mail(parse_message(raw).headers, store.settings)

"""Two machines must never ping-pong through us: a dumb autoresponder (no Auto-Submitted header, no
In-Reply-To, a fresh subject every time, so every answer opens a new ticket) is pitted against the
service for an hour of simulated time, and the mails it gets from us stay within the rate limits."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from mailtickets.notify.sender import deliver_due
from mailtickets.settings import Settings
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import SmtpSink, notify_settings
from tests.world import build_world

STEP = timedelta(seconds=20)


def _autoresponse(number: int) -> bytes:
    return make_message(
        sender="Bob Brown <bob@acme.example>",
        subject=f"Thank you for your message {number}",
        message_id=f"<auto-{number}@acme.example>",
        body="I am away and will answer your message when I am back.",
    )


def _max_in_window(times: list[datetime], window: timedelta) -> int:
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


async def _ingest_and_deliver(store: Store, settings: Settings, sink: SmtpSink, raw: bytes) -> None:
    await store.pipeline().ingest(raw, "test")
    await deliver_due(settings, store.sessions, store.clock)


async def test_autoresponder_ping_pong_stops_at_the_limit(
    sqlite_store: Store, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailtickets.notify.outbox")
    store = sqlite_store
    await build_world(store.sessions, store.clock)
    settings = notify_settings(store.settings, smtp_url=sink.url, notify_new_tickets_to=[])
    await _ingest_and_deliver(store, settings, sink, _autoresponse(0))
    sent_at: list[datetime] = []
    end = store.clock.now() + timedelta(hours=1)
    while store.clock.now() < end:
        for _ in range(len(sink.handler.received) - len(sent_at)):  # it answers every mail we send
            sent_at.append(store.clock.now())
            await _ingest_and_deliver(store, settings, sink, _autoresponse(len(sent_at)))
        store.clock.advance(STEP)
    # Each answer opened a ticket and got an acknowledgement until the short window's limit cut the loop.
    assert len(sent_at) == settings.auto_mail_limit_short
    assert "rate limit per recipient" in caplog.text
    assert "bob@acme.example" not in caplog.text  # addresses are redacted in the logs
    assert {rcpt for _, rcpts, _ in sink.handler.received for rcpt in rcpts} == {"bob@acme.example"}


async def test_chatty_machine_for_an_hour_stays_within_both_windows(sqlite_store: Store, sink: SmtpSink) -> None:
    store = sqlite_store
    await build_world(store.sessions, store.clock)
    settings = notify_settings(store.settings, smtp_url=sink.url, notify_new_tickets_to=[])
    sent_at: list[datetime] = []
    for number in range(120):  # a new message every 30 seconds for an hour, whatever we answer
        await _ingest_and_deliver(store, settings, sink, _autoresponse(number))
        sent_at += [store.clock.now()] * (len(sink.handler.received) - len(sent_at))
        store.clock.advance(timedelta(seconds=30))
    short = timedelta(minutes=settings.auto_mail_window_short_minutes)
    assert _max_in_window(sent_at, short) == settings.auto_mail_limit_short
    assert len(sent_at) == settings.auto_mail_limit_long

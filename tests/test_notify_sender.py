from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.models import OutboxMail, OutboxState
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.notify.sender import CLAIM_SECONDS, claim_due, deliver_due, retry_delay, run_outbox_sender
from mailtickets.settings import Settings
from mailtickets.tickets.events import TicketCreated
from tests.conftest import Store
from tests.notify_support import SmtpSink, notify_settings, seed_ticket


async def _queue(store: Store, settings: Settings, tickets: int = 1) -> None:
    for number in range(1, tickets + 1):
        subject = f"Drucker brennt \u2013 火事 {number}"
        seeded = await seed_ticket(
            store.sessions, number=number, contact_email=f"c{number}@client.example", subject=subject
        )
        async with transaction(store.sessions) as session:
            event = TicketCreated(seeded.ticket_id, seeded.message_id)
            await enqueue_notifications(session, settings, store.clock, [event])


async def _rows(store: Store) -> list[OutboxMail]:
    async with transaction(store.sessions) as session:
        return list((await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all())


async def test_mail_on_the_wire(sqlite_store: Store, sink: SmtpSink) -> None:
    store = sqlite_store
    settings = notify_settings(store.settings, smtp_url=sink.url)
    await _queue(store, settings)
    assert await deliver_due(settings, store.sessions, store.clock) == 2
    envelopes = [(mail_from, rcpts) for mail_from, rcpts, _ in sink.handler.received]
    assert envelopes == [
        ("support@helpdesk.example", ["c1@client.example"]),
        ("support@helpdesk.example", ["team@corp.example"]),
    ]
    ack, team = sink.handler.messages()
    assert ack["Subject"] == "[TCK-1] Drucker brennt \u2013 火事 1"
    assert ack["From"] == "support@helpdesk.example"
    assert ack["Reply-To"] == "support@helpdesk.example"
    assert ack["To"] == "Zoë Müller <c1@client.example>"
    assert ack["In-Reply-To"] == "<client-1@client.example>"
    assert ack["References"] == "<client-1@client.example>"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Loop"] == "support@helpdesk.example"
    assert ack["Message-ID"].startswith("<TCK-1.")
    assert ack["Date"] is not None
    text = ack.get_body(("plain",))
    html = ack.get_body(("html",))
    assert text is not None and html is not None
    assert "Hello Zoë Müller" in text.get_content()
    assert "Drucker brennt \u2013 火事 1" in html.get_content()
    assert text["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert all(b < 128 for _, _, raw in sink.handler.received for b in raw)  # 7-bit clean on the wire
    assert team["Auto-Submitted"] == "auto-generated"
    assert {r.state for r in await _rows(store)} == {OutboxState.SENT}


async def test_smtp_down_for_an_hour_then_up_delivers_exactly_once(store: Store) -> None:
    sink = SmtpSink()
    settings = notify_settings(store.settings, smtp_url=sink.url)
    await _queue(store, settings, tickets=5)
    for _ in range(12):  # an hour of retries while the server is down
        assert await deliver_due(settings, store.sessions, store.clock) == 0
        store.clock.advance(timedelta(minutes=5))
    rows = await _rows(store)
    assert {r.state for r in rows} == {OutboxState.PENDING}
    assert all(r.attempts >= 2 and r.last_error for r in rows)
    sink.start()
    try:
        for _ in range(10):
            await deliver_due(settings, store.sessions, store.clock)
            store.clock.advance(timedelta(hours=1))
        received = Counter(m["Message-ID"].strip("<>") for m in sink.handler.messages())
    finally:
        sink.stop()
    rows = await _rows(store)
    assert {r.state for r in rows} == {OutboxState.SENT}
    assert received == Counter({r.message_id: 1 for r in rows})
    assert len(received) == 10


async def test_two_senders_deliver_each_mail_once(store: Store, sink: SmtpSink) -> None:
    settings = notify_settings(store.settings, smtp_url=sink.url, outbox_batch_size=3)
    await _queue(store, settings, tickets=6)
    for _ in range(4):
        await asyncio.gather(*(deliver_due(settings, store.sessions, store.clock) for _ in range(2)))
    received = Counter(m["Message-ID"] for m in sink.handler.messages())
    assert len(received) == 12 and set(received.values()) == {1}


async def test_permanent_failure_keeps_the_server_reply(sqlite_store: Store, sink: SmtpSink) -> None:
    sink.handler.fail_with = "550 5.1.1 No such user here"
    settings = notify_settings(sqlite_store.settings, smtp_url=sink.url, notify_new_tickets_to=[])
    await _queue(sqlite_store, settings)
    assert await deliver_due(settings, sqlite_store.sessions, sqlite_store.clock) == 0
    (row,) = await _rows(sqlite_store)
    assert row.state == OutboxState.FAILED
    assert row.last_error is not None and row.last_error.startswith("550 5.1.1 No such user")


async def test_temporary_refusal_is_retried_with_backoff(sqlite_store: Store, sink: SmtpSink) -> None:
    store = sqlite_store
    sink.handler.fail_with = "451 4.3.0 Try again later"
    settings = notify_settings(store.settings, smtp_url=sink.url, notify_new_tickets_to=[])
    await _queue(store, settings)
    await deliver_due(settings, store.sessions, store.clock)
    (row,) = await _rows(store)
    assert (row.state, row.attempts) == (OutboxState.PENDING, 1)
    assert row.next_attempt_at == store.clock.now() + retry_delay(1)
    assert await deliver_due(settings, store.sessions, store.clock) == 0  # not due yet
    sink.handler.fail_with = None
    store.clock.advance(retry_delay(1))
    assert await deliver_due(settings, store.sessions, store.clock) == 1


def test_retry_delay_grows_and_is_capped() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays[:4] == [60, 120, 240, 480]
    assert max(delays) == 3600


async def test_claimed_rows_are_not_claimed_twice(store: Store) -> None:
    settings = notify_settings(store.settings)
    await _queue(store, settings)
    first = await claim_due(store.sessions, settings, store.clock.now())
    second = await claim_due(store.sessions, settings, store.clock.now())
    assert len(first) == 2 and second == []


async def test_sender_task_delivers_and_stops(sqlite_store: Store, sink: SmtpSink) -> None:
    settings = notify_settings(sqlite_store.settings, smtp_url=sink.url)
    await _queue(sqlite_store, settings, tickets=2)
    stop = asyncio.Event()
    task = asyncio.create_task(run_outbox_sender(settings, sqlite_store.sessions, sqlite_store.clock, stop))
    for _ in range(100):
        if len(sink.handler.received) == 4:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(sink.handler.received) == 4


async def test_abandoned_claim_is_sent_once_after_it_expires(store: Store, sink: SmtpSink) -> None:
    settings = notify_settings(store.settings, smtp_url=sink.url)
    await _queue(store, settings)
    await claim_due(store.sessions, settings, store.clock.now())  # a sender claimed them, then crashed
    assert await deliver_due(settings, store.sessions, store.clock) == 0
    store.clock.advance(timedelta(seconds=CLAIM_SECONDS + 1))
    assert await deliver_due(settings, store.sessions, store.clock) == 2
    assert await deliver_due(settings, store.sessions, store.clock) == 0
    assert len(sink.handler.received) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # loopback test sink
async def test_smtp_auth_and_no_password_in_logs(sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sink = SmtpSink(login=("mailer", "s3cr3t!"))
    sink.start()
    try:
        # (aiosmtpd answers a failed login slowly: a short timeout keeps the test fast)
        wrong_url = f"smtp://mailer:wr0ng%21@127.0.0.1:{sink.port}?timeout=1"
        wrong = notify_settings(sqlite_store.settings, smtp_url=wrong_url)
        await _queue(sqlite_store, wrong)
        assert await deliver_due(wrong, sqlite_store.sessions, sqlite_store.clock) == 0
        errors = [r.last_error or "" for r in await _rows(sqlite_store)]
        assert all(errors) and not any("wr0ng" in e for e in errors)
        right = notify_settings(sqlite_store.settings, smtp_url=f"smtp://mailer:s3cr3t%21@127.0.0.1:{sink.port}")
        sqlite_store.clock.advance(timedelta(hours=1))
        assert await deliver_due(right, sqlite_store.sessions, sqlite_store.clock) == 2
    finally:
        sink.stop()
    assert "s3cr3t" not in caplog.text and "wr0ng" not in caplog.text


async def test_a_deferral_is_logged_at_warning(sqlite_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    sink = SmtpSink()  # never started: nothing answers on its port
    settings = notify_settings(sqlite_store.settings, smtp_url=sink.url)
    await _queue(sqlite_store, settings)
    caplog.set_level(logging.INFO, logger="mailtickets.notify.sender")
    assert await deliver_due(settings, sqlite_store.sessions, sqlite_store.clock) == 0
    deferred = [r for r in caplog.records if "deferred" in r.getMessage()]
    assert deferred and all(r.levelno == logging.WARNING for r in deferred)

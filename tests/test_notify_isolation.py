"""A notification can never fail what caused it; internal alerts are not rate-limited like auto-replies;
the auto-close job handles one ticket at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.jobs.autoclose import run_autoclose_once
from mailtickets.models import OutboxMail, OutboxState, Ticket, TicketStatus
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.tickets import lifecycle
from mailtickets.tickets.events import TicketCreated
from tests.conftest import Store
from tests.notify_support import notify_settings, seed_ticket


async def _outbox(store: Store) -> list[OutboxMail]:
    async with store.sessions() as session:
        return list(await session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


async def test_a_notification_that_cannot_be_built_is_recorded_as_failed_faked(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = notify_settings(sqlite_store.settings)
    seeded = await seed_ticket(sqlite_store.sessions)

    def unserialisable(mail: object) -> None:
        raise UnicodeEncodeError("ascii", "ü", 0, 1, "faked: the builder cannot encode this subject")

    monkeypatch.setattr("mailtickets.notify.outbox.to_bytes", unserialisable)
    async with transaction(sqlite_store.sessions) as session:
        held = await enqueue_notifications(
            session, settings, sqlite_store.clock, [TicketCreated(seeded.ticket_id, seeded.message_id)]
        )
    assert held == []
    mails = await _outbox(sqlite_store)
    assert {m.kind for m in mails} == {"acknowledgement", "new_ticket"}
    for mail in mails:
        assert (mail.state, mail.raw) == (OutboxState.FAILED, b"")
        assert (mail.last_error or "").startswith("could not be built: UnicodeEncodeError")


async def test_the_distribution_list_gets_every_new_ticket_alert(sqlite_store: Store) -> None:
    settings = notify_settings(sqlite_store.settings, auto_mail_limit_short=3, auto_mail_limit_long=5)
    for number in range(1, 31):
        seeded = await seed_ticket(sqlite_store.sessions, number=number, contact_email=f"c{number}@client.example")
        async with transaction(sqlite_store.sessions) as session:
            event = TicketCreated(seeded.ticket_id, seeded.message_id)
            await enqueue_notifications(session, settings, sqlite_store.clock, [event])
    alerts = [m for m in await _outbox(sqlite_store) if m.recipient == "team@corp.example"]
    assert len(alerts) == 30  # the loop guard's rate limit is for outside addresses only


async def test_one_bad_ticket_does_not_stop_auto_close_for_the_others_faked(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = notify_settings(sqlite_store.settings, notify_new_tickets_to=[])
    good = await seed_ticket(sqlite_store.sessions, number=1, contact_email="good@client.example")
    bad = await seed_ticket(sqlite_store.sessions, number=2, contact_email="bad@client.example")
    async with transaction(sqlite_store.sessions) as session:
        for reference in ("TCK-1", "TCK-2"):
            await lifecycle.set_status(session, settings, sqlite_store.clock.now(), reference, "auto-close")
    from mailtickets.notify import outbox

    real = outbox._parties

    async def parties(session, settings, ticket, event):  # type: ignore[no-untyped-def]
        if ticket.id == bad.ticket_id:
            raise KeyError("faked: a ticket our code cannot handle")
        return await real(session, settings, ticket, event)

    monkeypatch.setattr(outbox, "_parties", parties)
    sqlite_store.clock.advance(timedelta(hours=48))
    report = await run_autoclose_once(settings, sqlite_store.sessions, sqlite_store.clock)
    assert report.chasers == (good.ticket_id,)
    sqlite_store.clock.advance(timedelta(hours=24))
    report = await run_autoclose_once(settings, sqlite_store.sessions, sqlite_store.clock)
    assert report.closed == (good.ticket_id,)
    async with sqlite_store.sessions() as session:
        still = await session.get(Ticket, bad.ticket_id)
    assert still is not None and still.status == TicketStatus.AUTO_CLOSE and still.chaser_sent_at is None

from __future__ import annotations

from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.models import Direction, OutboxMail, TicketMessage
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.settings import Settings
from mailtickets.tickets.events import ClientReplied, TicketCreated, TicketEvent
from tests.conftest import Store
from tests.notify_support import notify_settings, seed_ticket


async def _enqueue(store: Store, settings: Settings, events: list[TicketEvent]) -> None:
    async with transaction(store.sessions) as session:
        await enqueue_notifications(session, settings, store.clock, events)


async def _outbox(store: Store) -> list[OutboxMail]:
    async with transaction(store.sessions) as session:
        return list((await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all())


async def test_created_queues_ack_and_team_notice(store: Store) -> None:
    settings = notify_settings(store.settings)
    seeded = await seed_ticket(store.sessions)
    await _enqueue(store, settings, [TicketCreated(seeded.ticket_id, seeded.message_id)])
    rows = await _outbox(store)
    assert [(r.kind, r.recipient, r.automatic) for r in rows] == [
        ("acknowledgement", "zoe@client.example", True),
        ("new_ticket", "team@corp.example", True),
    ]
    async with transaction(store.sessions) as session:
        query = select(TicketMessage).where(TicketMessage.direction == Direction.OUTBOUND)
        out = (await session.scalars(query.order_by(TicketMessage.id))).all()
    assert [(m.public, m.message_id) for m in out] == [(True, rows[0].message_id), (False, rows[1].message_id)]
    assert out[0].in_reply_to == "client-12@client.example"
    assert out[0].subject == "[TCK-12] Printer on fire"
    assert out[0].to_addresses == ["zoe@client.example"]


async def test_switches_and_acknowledge_flag(store: Store) -> None:
    settings = notify_settings(store.settings, notify_distribution_on_create=False)
    seeded = await seed_ticket(store.sessions)
    await _enqueue(store, settings, [TicketCreated(seeded.ticket_id, seeded.message_id, acknowledge=False)])
    assert await _outbox(store) == []
    off = notify_settings(store.settings, notify_client_on_create=False)
    await _enqueue(store, off, [TicketCreated(seeded.ticket_id, seeded.message_id)])
    assert [r.kind for r in await _outbox(store)] == ["new_ticket"]


async def test_client_reply_goes_to_distribution_list_when_unassigned(store: Store) -> None:
    settings = notify_settings(store.settings)
    seeded = await seed_ticket(store.sessions)
    await _enqueue(store, settings, [ClientReplied(seeded.ticket_id, seeded.message_id)])
    (row,) = await _outbox(store)
    assert (row.kind, row.recipient) == ("client_reply", "team@corp.example")
    assert b"the printer is on fire" in row.raw or b"printer is on =\r\nfire" in row.raw


async def test_no_automatic_mail_to_machines_or_ourselves(store: Store) -> None:
    settings = notify_settings(store.settings, notify_new_tickets_to=[])
    for number, address in enumerate(
        ["noreply@shop.example", "MAILER-DAEMON@mx.example", "support@helpdesk.example", "x@helpdesk.example"]
    ):
        seeded = await seed_ticket(store.sessions, number=number + 1, contact_email=address)
        await _enqueue(store, settings, [TicketCreated(seeded.ticket_id, seeded.message_id)])
    assert await _outbox(store) == []


async def test_rate_limit_per_recipient(store: Store) -> None:
    settings = notify_settings(store.settings, notify_new_tickets_to=[])
    for number in range(1, 16):
        seeded = await seed_ticket(store.sessions, number=number)
        await _enqueue(store, settings, [TicketCreated(seeded.ticket_id, seeded.message_id)])
    assert len(await _outbox(store)) == settings.auto_mail_limit_short


async def test_a_long_threads_headers_name_its_first_and_latest_messages(store: Store) -> None:
    from email import message_from_bytes, policy

    from mailtickets.notify.message import MAX_REFERENCES

    settings = notify_settings(store.settings)
    seeded = await seed_ticket(store.sessions)
    async with transaction(store.sessions) as session:
        for n in range(60):  # the client's replies, then a run of our own mails after the last of them
            direction = Direction.INBOUND if n < 30 else Direction.OUTBOUND
            session.add(
                TicketMessage(ticket_id=seeded.ticket_id, direction=direction, message_id=f"m{n}@x", body_text="")
            )
    await _enqueue(store, settings, [ClientReplied(seeded.ticket_id, seeded.message_id)])
    (row,) = await _outbox(store)
    sent = message_from_bytes(row.raw, policy=policy.default)
    references = sent["References"].split()
    assert len(references) == MAX_REFERENCES
    assert references[0] == "<client-12@client.example>"  # the thread's first message
    assert references[-1] == "<m29@x>" == sent["In-Reply-To"]  # the client's latest, though 30 mails older
    assert references[-2] == "<m59@x>"


async def test_recent_counts_stop_at_the_larger_limit_yet_see_a_run_on_one_ticket(store: Store) -> None:
    """An agent alerted about many tickets: the read stops at the larger limit (it stays cheap however
    busy the agent is), and the alerts about one ticket, older than that many others, are still counted."""
    from datetime import timedelta

    from mailtickets.notify.guard import internal_loop_reason
    from mailtickets.notify.outbox import recent_counts

    settings = notify_settings(store.settings)
    looping, busy = await seed_ticket(store.sessions, number=12), await seed_ticket(store.sessions, number=13)
    now, agent = store.clock.now(), "ana@corp.example"

    def alert(ticket_id: int, age: timedelta, n: int) -> OutboxMail:
        return OutboxMail(
            kind="client_reply", ticket_id=ticket_id, recipient=agent, message_id=f"{ticket_id}-{n}@x", raw=b"",
            automatic=True, created_at=now - age, next_attempt_at=now,
        )  # fmt: skip

    async with transaction(store.sessions) as session:
        for n in range(3 * settings.auto_mail_limit_long):  # the newest: about the busy ticket
            session.add(alert(busy.ticket_id, timedelta(seconds=n), n))
        for n in range(settings.auto_mail_limit_short):  # older, still in the short window: about one ticket
            session.add(alert(looping.ticket_id, timedelta(minutes=5, seconds=n), n))
        session.add(alert(looping.ticket_id, timedelta(hours=2), 99))  # outside the long window
    async with transaction(store.sessions) as session:
        counts = await recent_counts(session, settings, agent, looping.ticket_id, now)
        other = await recent_counts(session, settings, "someone@else.example", looping.ticket_id, now)
    assert counts.recipient_long == counts.recipient_short == settings.auto_mail_limit_long  # stopped there
    assert (counts.recipient_ticket_short, counts.recipient_ticket_long) == (settings.auto_mail_limit_short,) * 2
    assert (
        internal_loop_reason(counts, settings)
        == "rate limit per recipient and ticket (an automatic loop on one ticket)"
    )
    assert (other.recipient_long, other.recipient_ticket_long) == (0, 0)
    assert other.ticket_long == 0  # client_reply is an alert to agents, not a mail to the client (CLIENT_KINDS)

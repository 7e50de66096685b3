"""Merging through the whole service: mail that still names the merged ticket lands on the target."""

from __future__ import annotations

from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.models import OutboxMail, Outcome
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.tickets import lifecycle
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world


async def test_reply_to_a_merged_ticket_lands_on_the_target(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    created = await store.pipeline().ingest(make_message(subject="Toner", message_id="<toner-1@acme.example>"), "t")
    assert (created.outcome, created.ticket) == (Outcome.CREATED, "TCK-4")
    async with transaction(store.sessions) as session:
        events = await lifecycle.merge(session, store.settings, store.clock.now(), "TCK-4", "TCK-1")
        await enqueue_notifications(session, store.settings, store.clock, events)
    by_tag = make_message(subject="Re: [TCK-4] Toner", message_id="<toner-2@acme.example>")
    result = await store.pipeline().ingest(by_tag, "t")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    by_header = make_message(
        subject="Toner?", message_id="<toner-3@acme.example>", in_reply_to="<toner-1@acme.example>"
    )
    result = await store.pipeline().ingest(by_header, "t")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")


async def test_reply_to_the_merge_notice_lands_on_the_target(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    await store.pipeline().ingest(make_message(subject="Toner", message_id="<toner-1@acme.example>"), "t")
    async with transaction(store.sessions) as session:
        events = await lifecycle.merge(session, store.settings, store.clock.now(), "TCK-4", "TCK-1")
        await enqueue_notifications(session, store.settings, store.clock, events)
        notice = await session.scalar(select(OutboxMail.message_id).where(OutboxMail.kind == "merged"))
    assert notice is not None
    answer = make_message(subject="thanks", message_id="<toner-4@acme.example>", in_reply_to=notice)
    result = await store.pipeline().ingest(answer, "t")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")

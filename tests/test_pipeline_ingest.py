"""The pipeline end to end over a real database: outcomes, threading, who may write, idempotence."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailtickets.errors import TemporaryError
from mailtickets.models import Attachment, Contact, InboundMail, Outcome, Ticket, TicketMessage, TicketStatus
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    return store


async def count(store: Store, model: type) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def ticket(store: Store, number: int) -> Ticket:
    async with store.sessions() as session:
        return (await session.scalars(select(Ticket).where(Ticket.number == number))).one()


async def test_known_contact_opens_a_new_ticket(world: Store) -> None:
    result = await world.pipeline().ingest(make_message(subject="Re: Fwd: Scanner jammed"), "pipe")
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4")
    created = await ticket(world, 4)
    assert created.subject == "Scanner jammed"
    assert created.status == TicketStatus.OPEN


async def test_unknown_address_at_a_client_domain_becomes_a_contact_of_that_client(world: Store) -> None:
    raw = make_message(sender="New Person <new.person@ACME.co.uk>", message_id="<n1@acme.co.uk>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.CREATED
    async with world.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.email == "new.person@acme.co.uk"))
        assert contact is not None and contact.client is not None and contact.client.name == "Acme Corp"
        assert contact.name == "New Person"


async def test_unknown_sender_without_reference_is_quarantined_with_raw_bytes_kept(world: Store) -> None:
    raw = make_message(sender="someone@stranger.example", message_id="<s1@stranger.example>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED and result.ticket is None
    assert "unknown sender" in (result.reason or "")
    async with world.sessions() as session:
        record = (await session.scalars(select(InboundMail))).one()
    assert record.raw_stored
    assert (world.settings.raw_dir / record.raw_sha256[:2] / record.raw_sha256).read_bytes() == raw


async def test_a_parser_bug_faked_by_monkeypatch_quarantines_instead_of_losing_the_mail(
    world: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_parser(raw: bytes, limits: object, store: object = None) -> None:
        raise KeyError("a bug in our own parsing code")

    monkeypatch.setattr("mailtickets.pipeline.parse_worker.parse_message", broken_parser)
    raw = make_message(message_id="<bug1@acme.example>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED
    assert (result.reason or "").startswith("parser failure: KeyError")
    async with world.sessions() as session:
        record = (await session.scalars(select(InboundMail))).one()
    assert record.raw_stored and world.pipeline().raw_store.get(record.raw_sha256) == raw


async def test_unknown_sender_is_dropped_when_the_setting_says_so(world: Store) -> None:
    world.settings.unknown_sender = "drop"
    result = await world.pipeline().ingest(make_message(sender="x@stranger.example"), "pipe")
    assert result.outcome == Outcome.DROPPED


async def test_reply_threads_by_subject_tag_and_stores_only_the_new_text(world: Store) -> None:
    body = "It works again, thanks.\n\nOn Mon, 5 Jan 2026, Support wrote:\n> old text\n> more old text\n"
    raw = make_message(
        sender="bob@acme.example", subject="AW: RE: [TCK-1] Printer on fire", body=body, message_id="<r1@acme.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    async with world.sessions() as session:
        message = await session.scalar(select(TicketMessage).where(TicketMessage.message_id == "r1@acme.example"))
    assert message is not None
    assert message.body_text_new == "It works again, thanks."
    assert "old text" in message.body_text


async def test_reply_threads_by_in_reply_to_without_any_tag(world: Store) -> None:
    raw = make_message(
        sender="erin@partner.example",
        subject="Re: your request",
        in_reply_to="<TCK-1.ack@helpdesk.example>",
        message_id="<e1@partner.example>",
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")


async def test_reply_threads_by_plus_address(world: Store) -> None:
    raw = make_message(
        sender="alice@acme.example", to="support+TCK-1@helpdesk.example", subject="more", message_id="<p1@acme.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")


async def test_stranger_quoting_a_ticket_number_is_quarantined(world: Store) -> None:
    raw = make_message(
        sender="mallory@evil.example", subject="Re: [TCK-1] Printer on fire", message_id="<m1@evil.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED
    assert "TCK-1" in (result.reason or "")
    assert await count(world, TicketMessage) == 4  # the seeded messages only


async def test_earlier_participant_may_write_by_ticket_number(world: Store) -> None:
    # Erin joined by answering our mail to her; after that the ticket number is enough.
    joined = make_message(
        sender="erin@partner.example", in_reply_to="<TCK-1.ack@helpdesk.example>", message_id="<e1@partner.example>"
    )
    assert (await world.pipeline().ingest(joined, "pipe")).outcome == Outcome.REPLIED
    raw = make_message(
        sender="erin@partner.example", subject="Re: [TCK-1] Printer on fire", message_id="<e2@partner.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    assert "participant" in (result.reason or "")


async def test_a_recipient_of_our_mail_who_never_wrote_needs_its_message_id(world: Store) -> None:
    raw = make_message(
        sender="erin@partner.example", subject="Re: [TCK-1] Printer on fire", message_id="<e2@partner.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED and "may not write into TCK-1" in (result.reason or "")


async def test_reference_to_a_missing_ticket_is_just_a_new_ticket(world: Store) -> None:
    result = await world.pipeline().ingest(make_message(subject="Re: [TCK-999] gone"), "pipe")
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4")


async def test_reply_to_recently_closed_ticket_reopens_it(world: Store) -> None:
    raw = make_message(sender="bob@acme.example", subject="Re: [TCK-2] VPN down", message_id="<v2@acme.example>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REOPENED, "TCK-2")
    reopened = await ticket(world, 2)
    assert reopened.status == TicketStatus.OPEN and reopened.closed_at is None


async def test_reply_to_long_closed_ticket_opens_a_linked_new_one(world: Store) -> None:
    raw = make_message(
        sender="carol@globex.example", subject="Re: [TCK-3] Old laptop", message_id="<l2@globex.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4")
    assert (await ticket(world, 4)).linked_ticket_id == (await ticket(world, 3)).id
    assert (await ticket(world, 3)).status == TicketStatus.CLOSED


@pytest.mark.parametrize(("policy", "outcome"), [("always-reopen", Outcome.REOPENED), ("new-linked", Outcome.CREATED)])
async def test_reopen_policies(world: Store, policy: str, outcome: Outcome) -> None:
    world.settings.reopen_policy = policy  # type: ignore[assignment]
    raw = make_message(
        sender="carol@globex.example", subject="Re: [TCK-3] Old laptop", message_id="<l3@globex.example>"
    )
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == outcome


async def test_reopen_window_is_measured_on_the_clock(world: Store) -> None:
    world.clock.advance(timedelta(days=6))  # TCK-2 was closed 2 days before the start: now 8 days ago
    raw = make_message(sender="bob@acme.example", subject="Re: [TCK-2] VPN down", message_id="<v3@acme.example>")
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"List-Id": "<announce.lists.example>"},
        {"Return-Path": "<>"},
    ],
)
async def test_automatic_mail_never_opens_or_reopens_a_ticket(world: Store, headers: dict[str, str]) -> None:
    raw = make_message(
        sender="bob@acme.example", subject="Re: [TCK-2] VPN down", headers=headers, message_id="<auto@acme.example>"
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.DROPPED
    assert "automatic" in (result.reason or "")
    assert (await ticket(world, 2)).status == TicketStatus.CLOSED


async def test_mail_from_our_own_address_is_dropped(world: Store) -> None:
    raw = make_message(sender="Support <support@helpdesk.example>", subject="[TCK-1] loop?")
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.DROPPED


async def test_message_without_from_is_quarantined(world: Store) -> None:
    raw = b"To: support@helpdesk.example\r\nSubject: who am I\r\nMessage-ID: <nofrom@x>\r\n\r\nbody\r\n"
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.QUARANTINED


async def test_same_message_twice_is_a_duplicate_and_changes_nothing(world: Store) -> None:
    raw = make_message()
    first = await world.pipeline().ingest(raw, "imap:support")
    second = await world.pipeline().ingest(raw, "imap:helpdesk")  # the same mail sent to two mailboxes
    assert first.outcome == Outcome.CREATED
    assert (second.outcome, second.ticket) == (Outcome.DUPLICATE, "TCK-4")
    assert await count(world, Ticket) == 4
    assert await count(world, InboundMail) == 1


async def test_a_duplicate_burns_no_ticket_number_and_makes_no_second_contact(world: Store) -> None:
    # The first attempt is optimistic (no lookup): it does the work and is rolled back at the dedupe key.
    raw = make_message(sender="newcolleague@acme.example", message_id="<dup-colleague@acme.example>")
    results = [await world.pipeline().ingest(raw, source) for source in ("imap:support", "imap:helpdesk")]
    later = await world.pipeline().ingest(make_message(message_id="<after-dup@acme.example>"), "pipe")
    assert [(r.outcome, r.ticket) for r in results] == [(Outcome.CREATED, "TCK-4"), (Outcome.DUPLICATE, "TCK-4")]
    assert later.ticket == "TCK-5"
    async with world.sessions() as session:
        found = await session.scalar(select(func.count()).where(Contact.email == "newcolleague@acme.example"))
    assert found == 1


async def test_messages_without_message_id_dedupe_by_their_bytes(world: Store) -> None:
    first = make_message(message_id=None, body="first")
    second = make_message(message_id=None, body="second")
    outcomes = [(await world.pipeline().ingest(raw, "pipe")).outcome for raw in (first, second, first)]
    assert outcomes == [Outcome.CREATED, Outcome.CREATED, Outcome.DUPLICATE]


async def test_oversized_message_is_quarantined_not_lost(world: Store) -> None:
    world.settings.max_message_bytes = 1000
    raw = make_message(body="x" * 5000)
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED and "too large" in (result.reason or "")
    async with world.sessions() as session:
        record = (await session.scalars(select(InboundMail))).one()
    assert (world.settings.raw_dir / record.raw_sha256[:2] / record.raw_sha256).read_bytes() == raw


async def test_attachments_are_stored_content_addressed(world: Store) -> None:
    payload = b"%PDF-1.4 fake but bytes are bytes"
    raw = make_message(
        attachments=[
            ("Angebot März.pdf", "application/pdf", payload),
            ("..\\..\\evil.exe", "application/octet-stream", b"MZ"),
        ]
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.CREATED
    async with world.sessions() as session:
        stored = list(await session.scalars(select(Attachment).order_by(Attachment.id)))
    assert [a.filename for a in stored] == ["Angebot März.pdf", "evil.exe"]
    assert (world.settings.attachments_dir / stored[0].sha256[:2] / stored[0].sha256).read_bytes() == payload


async def test_mail_for_a_merged_ticket_lands_on_the_surviving_ticket(world: Store) -> None:
    async with world.sessions() as session, session.begin():
        t1 = (await session.scalars(select(Ticket).where(Ticket.number == 1))).one()
        t2 = (await session.scalars(select(Ticket).where(Ticket.number == 2))).one()
        t2.merged_into_id = t1.id
    raw = make_message(sender="bob@acme.example", subject="Re: [TCK-2] VPN down", message_id="<mg@acme.example>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.ticket == "TCK-1"


async def test_a_failure_mid_message_leaves_nothing_behind(world: Store) -> None:
    world.settings.data_dir.mkdir(parents=True, exist_ok=True)
    world.settings.attachments_dir.write_text("not a directory")  # attachment writes now fail
    raw = make_message(attachments=[("a.txt", "text/plain", b"data")])
    with pytest.raises(TemporaryError):
        await world.pipeline().ingest(raw, "pipe")
    assert await count(world, Ticket) == 3
    assert await count(world, InboundMail) == 0
    world.settings.attachments_dir.unlink()
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED


async def test_reply_to_our_signed_message_id_threads_without_any_stored_record(world: Store) -> None:
    from mailtickets.notify.msgid import make_message_id

    ours = make_message_id("TCK-1", world.settings.secret_key, world.settings.own_message_id_domain)
    raw = make_message(subject="Issue updated", in_reply_to=f"<{ours}>", message_id="<j1@acme.example>")
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    # Threading is not permission: a stranger with the same id, never mailed by us, is held.
    stranger = make_message(
        sender="jira@tracker.example", subject="Issue", in_reply_to=f"<{ours}>", message_id="<j2@tracker.example>"
    )
    held = await world.pipeline().ingest(stranger, "pipe")
    assert held.outcome == Outcome.QUARANTINED and "TCK-1" in (held.reason or "")


async def test_a_forged_signature_proves_nothing(world: Store) -> None:
    raw = make_message(
        sender="mallory@evil.example",
        subject="hi",
        in_reply_to="<TCK-1.abc.forged@helpdesk.example>",
        message_id="<f1@evil.example>",
    )
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.QUARANTINED


async def test_our_own_mail_coming_back_is_dropped_by_its_loop_header(world: Store) -> None:
    from mailtickets.notify.message import LOOP_HEADER

    raw = make_message(sender="alice@acme.example", headers={LOOP_HEADER: "support@helpdesk.example"})
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.DROPPED and "own mail" in (result.reason or "")


async def test_a_pipeline_without_notifications_writes_no_outbox_rows(world: Store) -> None:
    from mailtickets.models import OutboxMail
    from mailtickets.pipeline.ingest import Pipeline

    quiet = Pipeline(world.settings, world.sessions, world.clock, notify=False)
    assert (await quiet.ingest(make_message(), "backfill")).outcome == Outcome.CREATED
    assert await count(world, OutboxMail) == 0
    assert (await world.pipeline().ingest(make_message(message_id="<other@acme.example>"), "pipe")).ticket == "TCK-5"
    assert await count(world, OutboxMail) > 0


async def test_each_message_logs_one_info_line_with_its_message_id_outcome_and_ticket(
    world: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = make_message(message_id="<log-1@acme.example>")
    for _ in range(2):
        await world.pipeline().ingest(raw, "pipe")
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mailtickets.pipeline.ingest" and r.levelno >= logging.INFO
    ]
    assert len(lines) == 2, lines
    assert "log-1@acme.example" in lines[0] and "created TCK-4" in lines[0]
    assert "log-1@acme.example" in lines[1] and "duplicate TCK-4" in lines[1]

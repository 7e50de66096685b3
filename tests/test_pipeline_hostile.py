"""Hostile mail through the real pipeline and its parse workers: each case ends in a recorded outcome
within the enforced limits (the time limit per message, the part, attachment and text limits), and a
poison message never ends in a retry loop. The intakes (pipe, LMTP, IMAP) are in test_pipeline_hostile_intakes.py.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailtickets.errors import TemporaryError
from mailtickets.fit import CUT_MARK
from mailtickets.ingest.result import IngestResult
from mailtickets.models import (
    Attachment,
    Direction,
    InboundMail,
    OutboxMail,
    OutboxState,
    Outcome,
    Ticket,
    TicketMessage,
)
from mailtickets.pipeline.ingest import Pipeline
from tests import hostile_mail
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

SHORT_TIME_LIMIT = 2.0  # for the shapes that cost minutes unbounded; every other case has room on a loaded machine
LIMITS = {
    "parse_timeout_seconds": 30.0,
    "parse_workers": 1,
    "max_mime_parts": 200,
    "max_attachments": 3,
    "max_attachment_bytes": 1_000_000,
    "max_text_chars": 50_000,
    "notify_new_tickets_to": ["team@helpdesk.example"],
}
TIME_LIMIT_SLACK = 20.0  # replacing a killed worker on a loaded machine; far below what the shapes cost unbounded


async def _hostile(store: Store, **overrides: object) -> AsyncIterator[tuple[Store, Pipeline]]:
    await build_world(store.sessions, store.clock)
    store.settings = store.settings.model_copy(update={**LIMITS, **overrides})
    pipeline = Pipeline(store.settings, store.sessions, store.clock)  # parsing in worker processes
    yield store, pipeline
    await pipeline.close()


@pytest.fixture
async def hostile(sqlite_store: Store) -> AsyncIterator[tuple[Store, Pipeline]]:
    async for pair in _hostile(sqlite_store):
        yield pair


@pytest.fixture
async def hostile_short_limit(sqlite_store: Store) -> AsyncIterator[tuple[Store, Pipeline]]:
    async for pair in _hostile(sqlite_store, parse_timeout_seconds=SHORT_TIME_LIMIT):
        yield pair


@pytest.fixture
async def hostile_any_backend(store: Store) -> AsyncIterator[tuple[Store, Pipeline]]:
    async for pair in _hostile(store):
        yield pair


async def _record(store: Store, result: IngestResult) -> InboundMail:
    async with store.sessions() as session:
        return (await session.scalars(select(InboundMail).order_by(InboundMail.id.desc()).limit(1))).one()


async def _message(store: Store, ticket_ref: str | None) -> TicketMessage:
    assert ticket_ref is not None
    number = int(ticket_ref.removeprefix("TCK-"))
    async with store.sessions() as session:
        ticket = (await session.scalars(select(Ticket).where(Ticket.number == number))).one()
        query = (
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == Direction.INBOUND)
            .order_by(TicketMessage.id.desc())
        )
        return (await session.scalars(query.limit(1))).one()


async def _assert_quarantined_whole(store: Store, result: IngestResult, raw: bytes) -> None:
    record = await _record(store, result)
    assert record.outcome == Outcome.QUARANTINED and record.reason == result.reason
    assert record.raw_stored and store.pipeline().raw_store.get(record.raw_sha256) == raw


async def _ingest_timed(pipeline: Pipeline, raw: bytes) -> tuple[IngestResult, float]:
    started = time.monotonic()
    result = await pipeline.ingest(raw, "pipe")
    return result, time.monotonic() - started


@pytest.mark.parametrize("shape", ["nested lists", "deep tables"])
async def test_costly_html_ends_within_the_parse_time_limit(
    hostile_short_limit: tuple[Store, Pipeline], shape: str
) -> None:
    store, pipeline = hostile_short_limit
    raw = hostile_mail.nested_lists() if shape == "nested lists" else hostile_mail.deep_tables()
    result, took = await _ingest_timed(pipeline, raw)
    assert took < SHORT_TIME_LIMIT + TIME_LIMIT_SLACK
    if result.outcome == Outcome.QUARANTINED:
        assert result.reason == "parsing took longer than parse_timeout_seconds (2 s)"
        await _assert_quarantined_whole(store, result, raw)
    else:  # a linear HTML→text conversion finishes in time: the text is bounded all the same
        assert result.outcome == Outcome.CREATED
        assert len((await _message(store, result.ticket)).body_text) <= LIMITS["max_text_chars"]  # type: ignore[operator]
    after, _ = await _ingest_timed(pipeline, make_message(message_id="<after-html@acme.example>"))
    assert after.outcome == Outcome.CREATED  # the next mail is not held up by a replaced worker


async def test_a_reply_of_100000_blank_lines_is_stripped_of_its_quote(hostile: tuple[Store, Pipeline]) -> None:
    store, pipeline = hostile
    result, _ = await _ingest_timed(pipeline, hostile_mail.blank_line_reply(100_000))
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    message = await _message(store, "TCK-1")
    assert message.body_text_new == "Thanks, it works."
    assert len(message.body_text) <= LIMITS["max_text_chars"]  # type: ignore[operator]


async def test_10000_parts_keep_max_mime_parts_and_max_attachments(hostile: tuple[Store, Pipeline]) -> None:
    store, pipeline = hostile
    result, _ = await _ingest_timed(pipeline, hostile_mail.many_parts(10_000))
    assert result.outcome == Outcome.CREATED
    message = await _message(store, result.ticket)
    assert message.body_text == "the body"
    async with store.sessions() as session:
        attachments = (await session.scalars(select(Attachment).where(Attachment.message_id == message.id))).all()
    assert len(attachments) == LIMITS["max_attachments"]
    notes = " | ".join(message.left_out)
    assert "MIME parts left out: over max_mime_parts (200)" in notes or "MIME delimiters left out unread" in notes
    assert "left out: over max_attachments (3)" in notes


async def test_500000_parts_are_cut_before_the_parser_reads_them(hostile: tuple[Store, Pipeline]) -> None:
    store, pipeline = hostile
    raw = hostile_mail.many_parts(500_000, "half-a-million@acme.example", named=False)
    assert len(raw) > 20_000_000
    result, _ = await _ingest_timed(pipeline, raw)
    assert result.outcome == Outcome.CREATED, result.reason
    notes = (await _message(store, result.ticket)).left_out
    assert any("MIME delimiters left out unread: over max_mime_parts (200)" in note for note in notes)


async def test_2000_levels_of_nesting_end_in_a_recorded_outcome(hostile: tuple[Store, Pipeline]) -> None:
    store, pipeline = hostile
    raw = hostile_mail.deep_nesting(2000)
    result, _ = await _ingest_timed(pipeline, raw)
    if result.outcome == Outcome.QUARANTINED:
        await _assert_quarantined_whole(store, result, raw)
    else:
        assert result.outcome == Outcome.CREATED
        assert any("nested deeper than" in note for note in (await _message(store, result.ticket)).left_out)


async def test_one_megabyte_of_headers_is_a_ticket(hostile: tuple[Store, Pipeline]) -> None:
    store, pipeline = hostile
    result, _ = await _ingest_timed(pipeline, hostile_mail.huge_headers())
    assert result.outcome == Outcome.CREATED
    assert (await _message(store, result.ticket)).body_text == "body"


@pytest.mark.parametrize("shape", sorted(hostile_mail.unserialisable_shapes()))
async def test_unserialisable_subjects_and_names_never_fail_the_ingest(
    hostile: tuple[Store, Pipeline], shape: str
) -> None:
    store, pipeline = hostile
    result, _ = await _ingest_timed(pipeline, hostile_mail.unserialisable_shapes()[shape])
    assert result.outcome == Outcome.CREATED, result.reason
    async with store.sessions() as session:
        mails = (await session.scalars(select(OutboxMail))).all()
    assert {m.kind for m in mails} == {"acknowledgement", "new_ticket"}  # each notification has a recorded state
    for mail in mails:
        built = mail.state == OutboxState.PENDING and mail.raw.startswith(b"From:")
        failed = mail.state == OutboxState.FAILED and (mail.last_error or "").startswith("could not be built")
        assert built or failed, (mail.kind, mail.state, mail.last_error)


async def test_over_long_values_and_nul_are_fitted_on_every_backend(
    hostile_any_backend: tuple[Store, Pipeline],
) -> None:
    store, pipeline = hostile_any_backend
    result, _ = await _ingest_timed(pipeline, hostile_mail.over_long_values())
    assert result.outcome == Outcome.CREATED, result.reason
    message = await _message(store, result.ticket)
    assert message.author_name is not None and len(message.author_name) == 200
    assert message.author_name.endswith(CUT_MARK)
    assert "\x00" not in message.body_text and "NUL here: and after" in message.body_text
    async with store.sessions() as session:
        attachment = (await session.scalars(select(Attachment).where(Attachment.message_id == message.id))).one()
    assert attachment.content_id is not None and len(attachment.content_id) <= 998


async def test_a_24_megabyte_mail_keeps_its_text_and_lists_the_attachment_left_out(
    hostile: tuple[Store, Pipeline],
) -> None:
    store, pipeline = hostile
    result, _ = await _ingest_timed(pipeline, hostile_mail.big_attachment(17 * 1024 * 1024))  # 24 MB in base64
    assert result.outcome == Outcome.CREATED, result.reason
    message = await _message(store, result.ticket)
    assert message.body_text == "see attached"
    assert message.left_out == [
        f"attachment big.bin ({17 * 1024 * 1024} bytes) left out: over max_attachment_bytes (1000000)"
    ]


# An idle worker maps about 100 MB. A plain 17 MiB attachment (24 MB of base64) is spooled and decoded in
# chunks (~130 MB at the peak); joined base64 is left to the stdlib and needs over 200 MB.
TIGHT_MEMORY_LIMIT = 170 * 1024 * 1024


async def test_a_message_over_the_memory_limit_is_quarantined_and_the_worker_replaced(sqlite_store: Store) -> None:
    async for store, pipeline in _hostile(sqlite_store, parse_memory_limit_bytes=TIGHT_MEMORY_LIMIT):
        raw = hostile_mail.big_joined_base64_attachment(17 * 1024 * 1024)
        result, _ = await _ingest_timed(pipeline, raw)
        assert result.outcome == Outcome.QUARANTINED
        assert "parse_memory_limit_bytes" in (result.reason or "")
        await _assert_quarantined_whole(store, result, raw)
        after, _ = await _ingest_timed(pipeline, make_message(message_id="<after-memory@acme.example>"))
        assert after.outcome == Outcome.CREATED


async def test_a_24_megabyte_attachment_fits_in_a_limit_the_stdlib_alone_would_exceed(sqlite_store: Store) -> None:
    async for _store, pipeline in _hostile(sqlite_store, parse_memory_limit_bytes=TIGHT_MEMORY_LIMIT):
        result, _ = await _ingest_timed(pipeline, hostile_mail.big_attachment(17 * 1024 * 1024))
        assert result.outcome == Outcome.CREATED, result.reason


def failing_message(monkeypatch: pytest.MonkeyPatch, subject: str) -> bytes:
    """A message that meets a faked store failure every time, alone (as a too-long value once did)."""
    from mailtickets.pipeline import ingest

    real_decide = ingest.decide

    async def decide(context, rules):  # type: ignore[no-untyped-def]
        if context.parsed.subject == subject:
            raise TemporaryError("store unavailable: DataError (faked)")
        return await real_decide(context, rules)

    monkeypatch.setattr(ingest, "decide", decide)
    return make_message(subject=subject, message_id=f"<{subject.replace(' ', '-')}@acme.example>")


async def test_a_temporary_failure_repeated_poison_max_attempts_times_is_quarantined_faked(
    hostile: tuple[Store, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, pipeline = hostile
    raw = failing_message(monkeypatch, "always fails")
    for _ in range(store.settings.poison_max_attempts - 1):
        with pytest.raises(TemporaryError):
            await pipeline.ingest(raw, "lmtp")
    result = await pipeline.ingest(raw, "lmtp")
    assert result.outcome == Outcome.QUARANTINED
    assert (result.reason or "").startswith("poison: failed 5 times since ")
    assert (result.reason or "").endswith("last: store unavailable: DataError (faked)")
    await _assert_quarantined_whole(store, result, raw)
    again = await pipeline.ingest(raw, "lmtp")  # the MTA's next retry: settled, not another failure
    assert again.outcome == Outcome.DUPLICATE
    normal = await pipeline.ingest(make_message(message_id="<after-poison@acme.example>"), "lmtp")
    assert normal.outcome == Outcome.CREATED


async def test_a_temporary_failure_repeating_for_poison_max_age_seconds_is_quarantined_faked(
    hostile: tuple[Store, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, pipeline = hostile
    raw = failing_message(monkeypatch, "fails for an hour")
    for _ in range(2):
        with pytest.raises(TemporaryError):
            await pipeline.ingest(raw, "pipe")
        store.clock.advance(timedelta(seconds=1800))
    result = await pipeline.ingest(raw, "pipe")  # the third try, an hour after the first
    assert result.outcome == Outcome.QUARANTINED and (result.reason or "").startswith("poison: failed 3 times")


async def test_a_bug_in_our_code_quarantines_at_once_never_retries_faked(
    hostile: tuple[Store, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, pipeline = hostile

    async def broken(context, rules):  # type: ignore[no-untyped-def]
        raise KeyError("a bug in deciding")

    monkeypatch.setattr("mailtickets.pipeline.ingest.decide", broken)
    raw = make_message(message_id="<bug@acme.example>")
    result = await pipeline.ingest(raw, "imap:support")
    assert result.outcome == Outcome.QUARANTINED
    assert result.reason == "processing failed: KeyError: 'a bug in deciding'"
    await _assert_quarantined_whole(store, result, raw)


async def test_a_big_attachment_is_stored_by_the_worker_and_recorded_on_the_message(sqlite_store: Store) -> None:
    content = bytes(range(256)) * 12_000  # 3 MB: the worker writes it, the pipeline records its digest
    async for store, pipeline in _hostile(sqlite_store, max_attachment_bytes=4 * 1024 * 1024):
        result, _ = await _ingest_timed(pipeline, hostile_mail.attachment_of(content))
        assert result.outcome == Outcome.CREATED, result.reason
        message = await _message(store, result.ticket)
        async with store.sessions() as session:
            attachment = (await session.scalars(select(Attachment).where(Attachment.message_id == message.id))).one()
        assert (attachment.filename, attachment.size) == ("data.bin", len(content))
        assert attachment.sha256 == hashlib.sha256(content).hexdigest()
        assert pipeline.files.get(attachment.sha256) == content

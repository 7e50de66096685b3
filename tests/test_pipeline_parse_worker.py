"""The parse workers: separate processes with a time and memory limit per message; the loop stays free."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailtickets.parse.limits import ParseLimits
from mailtickets.parse.message import ParsedMessage, PayloadStore
from mailtickets.pipeline.parse_worker import (
    InProcessParser,
    ParseFailure,
    ParseOutcome,
    ParseWorkers,
    parse_outcome,
)
from mailtickets.storage import FileStore
from tests import hostile_mail
from tests.builders import make_message
from tests.conftest import Store

MAX_LOOP_STALL_SECONDS = 0.1


@pytest.fixture
async def workers() -> AsyncIterator[ParseWorkers]:
    pool = ParseWorkers(
        ParseLimits(), timeout=1.5, memory_limit=512 * 1024 * 1024, size=1, parse=hostile_mail.slow_parse_faked
    )
    yield pool
    await pool.close()


async def test_a_message_is_parsed_in_another_process(workers: ParseWorkers) -> None:
    outcome = await workers.parse(make_message(subject="Printer on fire"))
    assert isinstance(outcome, ParsedMessage) and outcome.subject == "Printer on fire"
    (worker,) = workers.workers
    assert worker.process.pid is not None and worker.alive()


async def test_a_worker_past_the_time_limit_is_killed_and_replaced_faked(workers: ParseWorkers) -> None:
    await workers.parse(make_message())
    (before,) = workers.workers
    outcome = await workers.parse(hostile_mail.slow_poison())
    assert outcome == ParseFailure("parsing took longer than parse_timeout_seconds (1.5 s)")
    assert not before.alive()
    (after,) = workers.workers
    assert after is not before and after.alive()
    assert isinstance(await workers.parse(make_message()), ParsedMessage)


async def test_a_worker_that_dies_is_replaced_before_the_next_message(workers: ParseWorkers) -> None:
    await workers.parse(make_message())
    (worker,) = workers.workers
    worker.process.kill()
    worker.process.join()
    assert isinstance(await workers.parse(make_message()), ParsedMessage)


async def test_the_loop_never_stalls_while_hostile_mail_is_parsed(workers: ParseWorkers) -> None:
    """A probe ticking every 10 ms on the event loop, while the worker chews on (and is killed for) hostile mail."""
    stalls: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - started - 0.01)

    await workers.parse(make_message())  # started: the probe measures the parsing, not the fork
    ticking = asyncio.create_task(probe())
    hostile = (hostile_mail.nested_lists(), hostile_mail.slow_poison(), hostile_mail.many_parts(10_000))
    for raw in (*hostile, hostile_mail.blank_line_reply(), hostile_mail.big_attachment(10_000_000)):
        await workers.parse(raw)
    stop.set()
    await ticking
    assert len(stalls) > 10
    assert max(stalls) < MAX_LOOP_STALL_SECONDS, sorted(stalls)[-5:]


async def test_in_process_parsing_gives_the_same_outcomes() -> None:
    parser = InProcessParser(ParseLimits(max_mime_parts=10))
    outcome = await parser.parse(hostile_mail.many_parts(50))
    assert isinstance(outcome, ParsedMessage)
    assert any("over max_mime_parts (10)" in note for note in outcome.left_out)


async def test_an_idle_worker_leaves_at_once_on_sigterm_and_is_replaced(workers: ParseWorkers) -> None:
    await workers.parse(make_message())
    (worker,) = workers.workers
    worker.process.terminate()  # SIGTERM, as systemd sends it to the whole group on stop
    async with asyncio.timeout(5):  # the pool sees its socket close, with no message sent, and reaps it
        while worker in workers.workers:
            await asyncio.sleep(0.01)
        await workers.until_idle()
    assert worker.process.exitcode == 0
    assert isinstance(await workers.parse(make_message()), ParsedMessage)


async def test_workers_start_only_as_the_load_needs_them() -> None:
    pool = ParseWorkers(ParseLimits(), timeout=30, memory_limit=512 * 1024 * 1024, size=2)
    try:
        await pool.parse(make_message())
        await pool.parse(make_message())
        assert len(pool.workers) == 1  # one message at a time (the pipe): one process
        await asyncio.gather(*(pool.parse(make_message()) for _ in range(4)))
        await pool.until_idle()  # the second may still be starting when the first has parsed all four
        assert len(pool.workers) == 2
    finally:
        await pool.close()


async def test_a_worker_writes_a_big_attachment_to_the_store_and_sends_back_its_digest(tmp_path: Path) -> None:
    content = bytes(range(256)) * 8192  # 2 MiB: spooled, decoded into the store by the worker
    pool = ParseWorkers(ParseLimits(), timeout=30, memory_limit=512 * 1024 * 1024, size=1, files_dir=tmp_path)
    try:
        stored = await pool.parse(hostile_mail.attachment_of(content))
        shown = await pool.parse(hostile_mail.attachment_of(content + b"!"), write_files=False)  # a dry run
    finally:
        await pool.close()
    assert isinstance(stored, ParsedMessage) and isinstance(shown, ParsedMessage)
    (attachment,) = stored.attachments
    assert attachment.payload == b"" and attachment.size == len(content)
    assert attachment.stored is not None and attachment.stored.sha256 == hashlib.sha256(content).hexdigest()
    assert FileStore(tmp_path).get(attachment.stored.sha256) == content
    assert [a.payload for a in shown.attachments] == [content + b"!"]  # as bytes: nothing written for it
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [attachment.stored.sha256]


async def test_an_answer_that_cannot_be_read_back_fails_that_message_and_replaces_the_worker_faked() -> None:
    pool = ParseWorkers(
        ParseLimits(),
        timeout=30,
        memory_limit=512 * 1024 * 1024,
        size=1,
        parse=hostile_mail.unreadable_answer_parse_faked,
    )
    try:
        await pool.parse(make_message())
        (before,) = pool.workers
        outcome = await pool.parse(hostile_mail.UNREADABLE_MARK + make_message())
        assert outcome == ParseFailure("parse worker failure: ValueError: the answer cannot be read back")
        assert not before.alive()  # its pipe's state was unknown: it went
        assert isinstance(await pool.parse(make_message()), ParsedMessage)  # the next message is parsed as usual
    finally:
        await pool.close()


async def test_warming_up_starts_every_worker_before_the_first_message() -> None:
    pool = ParseWorkers(ParseLimits(), timeout=5, memory_limit=512 * 1024 * 1024, size=2)
    try:
        assert pool.workers == []  # started on first use otherwise
        await pool.warm_up()
        warm = pool.workers
        assert len(warm) == 2 and all(w.alive() for w in warm)
        outcomes = await asyncio.gather(*(pool.parse(make_message(subject=f"Printer {n}")) for n in range(4)))
        assert all(isinstance(o, ParsedMessage) for o in outcomes)
        assert pool.workers == warm  # the same processes: no mail waited for one to start
    finally:
        await pool.close()


async def test_messages_sent_behind_a_hung_one_are_parsed_by_its_replacement_faked(workers: ParseWorkers) -> None:
    """One worker with the next messages already in its socket: the hung one fails alone, the others
    are handed to the replacement and parsed, none lost, none blamed."""
    await workers.parse(make_message())
    subjects = [f"Printer {n}" for n in range(3)]
    outcomes = await asyncio.gather(
        workers.parse(hostile_mail.slow_poison()), *(workers.parse(make_message(subject=s)) for s in subjects)
    )
    assert outcomes[0] == ParseFailure("parsing took longer than parse_timeout_seconds (1.5 s)")
    assert [o.subject for o in outcomes[1:] if isinstance(o, ParsedMessage)] == subjects


async def test_a_caller_that_gives_up_leaves_the_worker_usable(workers: ParseWorkers) -> None:
    await workers.parse(make_message())
    (worker,) = workers.workers
    given_up = asyncio.ensure_future(workers.parse(make_message(subject="never mind")))
    await asyncio.sleep(0)  # sent to the worker
    given_up.cancel()
    outcome = await workers.parse(make_message(subject="Printer on fire"))  # its answer comes after the dropped one
    assert isinstance(outcome, ParsedMessage) and outcome.subject == "Printer on fire"
    assert workers.workers == [worker] and given_up.cancelled()


async def test_a_worker_that_cannot_start_fails_the_messages_waiting_for_it_instead_of_hanging() -> None:
    def not_importable(raw: bytes, limits: ParseLimits, store: PayloadStore | None) -> ParseOutcome:
        return parse_outcome(raw, limits, store)  # a local function: it cannot be sent to a process

    pool = ParseWorkers(ParseLimits(), timeout=5, memory_limit=512 * 1024 * 1024, size=2, parse=not_importable)
    try:
        async with asyncio.timeout(30):
            with pytest.raises(AttributeError, match="Can't pickle local object"):  # what starting it raised
                await pool.parse(make_message())
            outcomes = await asyncio.gather(*(pool.parse(make_message()) for _ in range(3)), return_exceptions=True)
        assert [type(o) for o in outcomes] == [AttributeError] * 3
        assert pool.workers == []
    finally:
        await pool.close()


async def test_a_message_sent_behind_a_slow_one_is_parsed_by_another_worker_faked() -> None:
    """Two workers, one stuck on a slow message (faked: it hangs) far short of its time limit: the
    messages sent behind it are parsed by the other worker within the hedge delay, not after the limit."""
    pool = ParseWorkers(
        ParseLimits(), timeout=60, memory_limit=512 * 1024 * 1024, size=2, parse=hostile_mail.slow_parse_faked
    )
    try:
        await pool.warm_up()
        slow = asyncio.ensure_future(pool.parse(hostile_mail.slow_poison()))
        await asyncio.sleep(0)
        subjects = [f"Printer {n}" for n in range(3)]  # one worker takes one, so one sits behind the slow one
        parsed = await asyncio.wait_for(
            asyncio.gather(*(pool.parse(make_message(subject=s)) for s in subjects)), timeout=20
        )
        assert [o.subject for o in parsed if isinstance(o, ParsedMessage)] == subjects
        assert not slow.done()  # still in hand: the others did not wait for its time limit
        slow.cancel()
    finally:
        for worker in pool.workers:
            worker.process.kill()
        await pool.close()


async def test_a_data_folder_that_cannot_be_written_is_a_temporary_failure_not_the_messages(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """The worker cannot write the attachment (here a file stands where its folder must be: the same
    OSError a full disk gives): the message is left to be tried again, not quarantined, nothing recorded."""
    from sqlalchemy import func, select

    from mailtickets.errors import TemporaryError
    from mailtickets.models import InboundMail
    from mailtickets.pipeline.ingest import Pipeline

    (tmp_path / "blocked").write_text("not a folder")
    pool = ParseWorkers(ParseLimits(), timeout=10, memory_limit=512 * 1024 * 1024, files_dir=tmp_path / "blocked" / "a")
    raw = make_message(attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 " * 100)])
    try:
        outcome = await pool.parse(raw)
        assert isinstance(outcome, ParseFailure) and outcome.temporary
        assert outcome.reason.startswith("the data folder cannot be written")
        pipeline = Pipeline(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock, parser=pool)
        with pytest.raises(TemporaryError):
            await pipeline.ingest(raw, "pipe")
    finally:
        await pool.close()
    async with sqlite_store.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMail)) == 0


def test_an_oserror_the_message_makes_the_parser_raise_is_the_messages_faked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the file store's own write failures are temporary: an OSError from parsing itself (faked
    here) is quarantined like any parser failure, or a hostile mail would be retried for ever."""
    from mailtickets.pipeline import parse_worker

    def parser_raising(*_: object) -> ParsedMessage:
        raise BlockingIOError("raised by the parser")

    monkeypatch.setattr(parse_worker, "parse_message", parser_raising)
    outcome = parse_outcome(make_message(), ParseLimits(), FileStore(Path("/nonexistent")))
    assert isinstance(outcome, ParseFailure) and not outcome.temporary
    assert outcome.reason.startswith("parser failure: BlockingIOError")

"""Group commit over a real database: concurrent messages share one commit, each in its own savepoint; a
failure injected into one of them loses, doubles and burns nothing of the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.errors import TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.models import Contact, InboundMail, OutboxMail, Outcome, Ticket, TicketMessage
from mailtickets.parse.message import ParsedMessage
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.parse_worker import InProcessParser, limits_from
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

INJECT = "X-Test-Inject-Failure"


class FailureInjectedPipeline(Pipeline):
    """The real pipeline, with a fault injected after a marked message's ticket is written (its number
    taken): `times` failures per marked message (a bug, or a `temporary` one), then it succeeds."""

    def __init__(self, store: Store, times: int, *, temporary: bool = False) -> None:
        super().__init__(
            store.settings, store.sessions, store.clock, parser=InProcessParser(limits_from(store.settings))
        )
        self.left: dict[str, int] = {}
        self.held: list[object] = []
        self.times = times
        self.temporary = temporary

    async def _commit_decision(self, session: AsyncSession, *args: Any, **kwargs: Any) -> IngestResult:
        result = await super()._commit_decision(session, *args, **kwargs)
        parsed: ParsedMessage | None = args[1]  # (received, parsed, key, decision, …)
        key: str = args[2]
        if parsed is not None and INJECT.lower() in parsed.headers:
            left = self.left.setdefault(key, self.times)
            if left > 0:
                self.left[key] = left - 1
                self.held.append(args[3])  # its decision (the ticket object) outlives the failure, as a traceback may
                raise TemporaryError("injected failure") if self.temporary else RuntimeError("injected failure")
        return result


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    return store


def mails(count: int, marked: set[int]) -> list[bytes]:
    return [
        make_message(
            subject=f"Printer {n} on fire",
            message_id=f"<batch-{n}@acme.example>",
            headers={INJECT: "yes"} if n in marked else None,
        )
        for n in range(count)
    ]


def count_commits(store: Store) -> list[int]:
    commits = [0]

    def bump(*_: object) -> None:
        commits[0] += 1

    event.listen(store.engine.sync_engine, "commit", bump)
    return commits


async def scalar(store: Store, statement: object) -> object:
    async with store.sessions() as session:
        return await session.scalar(statement)  # type: ignore[call-overload]


async def numbers(store: Store) -> list[int]:
    async with store.sessions() as session:
        return sorted((await session.scalars(select(Ticket.number))).all())


async def test_ready_messages_share_one_commit(world: Store) -> None:
    pipeline = world.pipeline()
    commits = count_commits(world)
    results = await asyncio.gather(*(pipeline.ingest(raw, "imap:x") for raw in mails(8, set())))
    assert [r.outcome for r in results] == [Outcome.CREATED] * 8
    assert commits[0] == 1
    assert await numbers(world) == list(range(1, 12))
    await pipeline.ingest(make_message(message_id="<alone@acme.example>"), "pipe")  # a batch of one
    assert commits[0] == 2


async def test_the_batch_size_bounds_a_commit(world: Store) -> None:
    world.settings.ingest_batch_size = 3
    pipeline = world.pipeline()
    commits = count_commits(world)
    results = await asyncio.gather(*(pipeline.ingest(raw, "imap:x") for raw in mails(7, set())))
    assert [r.outcome for r in results] == [Outcome.CREATED] * 7
    assert commits[0] == 3


async def test_a_failure_in_one_message_loses_and_doubles_nothing_and_burns_no_number(world: Store) -> None:
    pipeline = FailureInjectedPipeline(world, times=1)
    results = await asyncio.gather(*(pipeline.ingest(raw, "lmtp") for raw in mails(6, {2})))
    assert list(pipeline.left.values()) == [0]  # the fault did strike once, inside the batch
    assert [r.outcome for r in results] == [Outcome.CREATED] * 6
    assert sorted(r.ticket or "" for r in results) == sorted(f"TCK-{n}" for n in range(4, 10))
    assert await numbers(world) == list(range(1, 10))  # no gap: the rolled-back bump was undone
    assert await scalar(world, select(func.count()).select_from(InboundMail)) == 6
    inbound = select(func.count(func.distinct(TicketMessage.message_id))).where(TicketMessage.direction == "inbound")
    assert await scalar(world, inbound) == 6 + 3  # the world's three tickets have one inbound message each
    acknowledgements = select(func.count()).select_from(OutboxMail).where(OutboxMail.kind == "acknowledgement")
    assert await scalar(world, acknowledgements) == 6


async def test_after_a_failed_savepoint_the_next_messages_still_commit_in_the_batch(world: Store) -> None:
    # Rows are written with Core and their objects attached as loaded: the failed message's ticket row is
    # rolled back, and the next new ticket gets the same id (SQLite reuses it). Its stale object must be gone
    # from the session, or every later message of the batch would fail on it and be retried alone.
    pipeline = FailureInjectedPipeline(world, times=1)
    commits = count_commits(world)
    results = await asyncio.gather(*(pipeline.ingest(raw, "lmtp") for raw in mails(6, {2})))
    assert [r.outcome for r in results] == [Outcome.CREATED] * 6
    assert commits[0] == 2  # the batch (five messages) and the failed one, alone
    async with world.sessions() as session:
        rows = (await session.execute(select(Ticket.number, TicketMessage.subject).join(TicketMessage))).all()
    ours = sorted((number, subject) for number, subject in rows if subject and subject.split()[1].isdigit())
    assert [number for number, _ in ours] == list(range(4, 10))  # one each, no gap, none doubled
    assert sorted(subject for _, subject in ours) == sorted(f"Printer {n} on fire" for n in range(6))


class FlushFailureInjectedPipeline(Pipeline):
    """The real pipeline, with an ORM flush that fails (a contact clashing with Alice's address) while the
    first marked message is written: a failure SQLAlchemy's session answers by rolling back its whole
    transaction, not just the message's savepoint."""

    def __init__(self, store: Store) -> None:
        super().__init__(
            store.settings, store.sessions, store.clock, parser=InProcessParser(limits_from(store.settings))
        )
        self.struck = 0

    async def _commit_decision(self, session: AsyncSession, *args: Any, **kwargs: Any) -> IngestResult:
        result = await super()._commit_decision(session, *args, **kwargs)
        parsed: ParsedMessage | None = args[1]
        if parsed is not None and INJECT.lower() in parsed.headers and not self.struck:
            self.struck += 1
            session.add(Contact(name="Alice again", email="ALICE@acme.example"))
            await session.flush()
        return result


async def test_a_failed_flush_in_one_message_fails_the_batch_and_each_message_is_then_committed_alone(
    world: Store,
) -> None:
    pipeline = FlushFailureInjectedPipeline(world)
    commits = count_commits(world)

    results = await asyncio.gather(*(pipeline.ingest(raw, "lmtp") for raw in mails(6, {2})))
    assert pipeline.struck == 1
    assert [r.outcome for r in results] == [Outcome.CREATED] * 6
    assert commits[0] == 6  # the batch's transaction was lost with the failed flush: each message alone
    assert await numbers(world) == list(range(1, 10))  # none lost, none doubled, no number burnt
    assert await scalar(world, select(func.count()).select_from(InboundMail)) == 6
    acknowledgements = select(func.count()).select_from(OutboxMail).where(OutboxMail.kind == "acknowledgement")
    assert await scalar(world, acknowledgements) == 6


async def test_a_message_that_keeps_failing_is_quarantined_alone(world: Store) -> None:
    pipeline = FailureInjectedPipeline(world, times=99)
    results = await asyncio.gather(*(pipeline.ingest(raw, "lmtp") for raw in mails(5, {1, 3})))
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.CREATED, Outcome.QUARANTINED, Outcome.CREATED, Outcome.QUARANTINED, Outcome.CREATED]
    assert {results[1].reason, results[3].reason} == {"processing failed: RuntimeError: injected failure"}
    assert await numbers(world) == list(range(1, 7))  # the quarantined ones took no number
    assert await scalar(world, select(func.count()).select_from(InboundMail)) == 5


async def test_a_repeated_temporary_failure_in_a_batch_becomes_poison_and_spares_the_others(world: Store) -> None:
    pipeline = FailureInjectedPipeline(world, times=99, temporary=True)
    batch = mails(3, {1})
    for attempt in range(world.settings.poison_max_attempts):
        fresh = [make_message(message_id=f"<fresh-{attempt}-{n}@acme.example>") for n in range(2)]
        results = await asyncio.gather(
            *(pipeline.ingest(raw, "lmtp") for raw in [batch[1], *fresh]), return_exceptions=True
        )
        assert [r.outcome for r in results[1:] if isinstance(r, IngestResult)] == [Outcome.CREATED] * 2
        if attempt < world.settings.poison_max_attempts - 1:
            assert isinstance(results[0], TemporaryError)  # the intake retries it later
    poisoned = results[0]
    assert isinstance(poisoned, IngestResult) and poisoned.outcome == Outcome.QUARANTINED
    assert (poisoned.reason or "").startswith(f"poison: failed {world.settings.poison_max_attempts} times")
    created = select(func.count()).select_from(InboundMail).where(InboundMail.outcome == Outcome.CREATED)
    assert await scalar(world, created) == 2 * world.settings.poison_max_attempts


async def test_the_same_message_twice_in_one_batch_is_one_ticket_and_one_duplicate(world: Store) -> None:
    pipeline = world.pipeline()
    raw = make_message(message_id="<twice@acme.example>")
    results = await asyncio.gather(pipeline.ingest(raw, "imap:a"), pipeline.ingest(raw, "imap:b"))
    assert sorted(r.outcome for r in results) == sorted([Outcome.CREATED, Outcome.DUPLICATE])
    assert await numbers(world) == [1, 2, 3, 4]


async def test_a_reply_in_the_same_batch_threads_into_the_ticket_created_just_before(world: Store) -> None:
    pipeline = world.pipeline()
    first = make_message(message_id="<root@acme.example>", subject="Scanner")
    reply = make_message(message_id="<reply@acme.example>", subject="Re: Scanner", in_reply_to="<root@acme.example>")
    results = await asyncio.gather(pipeline.ingest(first, "imap:a"), pipeline.ingest(reply, "imap:a"))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REPLIED]
    assert results[0].ticket == results[1].ticket


async def test_the_rules_version_is_checked_once_per_batch(world: Store) -> None:
    pipeline = world.pipeline()
    versions: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "change_counters" in statement:
            versions.append(statement)

    event.listen(world.engine.sync_engine, "before_cursor_execute", seen)
    await asyncio.gather(*(pipeline.ingest(raw, "imap:x") for raw in mails(6, set())))
    assert len(versions) == 1
    await pipeline.ingest(make_message(message_id="<next@acme.example>"), "pipe")
    assert len(versions) == 2  # the next transaction looks again: a rule change applies without a restart


async def test_a_cancelled_caller_neither_doubles_nor_stops_the_others(world: Store) -> None:
    pipeline = world.pipeline()
    raws = mails(4, set())
    tasks = [asyncio.create_task(pipeline.ingest(raw, "lmtp")) for raw in raws]
    await asyncio.sleep(0)  # every task has queued its message; the first holds the writer
    await asyncio.sleep(0)
    tasks[1].cancel()  # e.g. an LMTP client that hung up while its message waited for the writer
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [r.outcome for r in results if isinstance(r, IngestResult)] == [Outcome.CREATED] * 3
    # Taken before the cancel landed, it is written once (and its retry dedupes); otherwise not at all.
    written = await scalar(world, select(func.count()).select_from(InboundMail))
    assert written in (3, 4)
    assert await numbers(world) == list(range(1, 4 + int(str(written))))

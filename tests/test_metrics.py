"""Metrics: counters where events happen (the pipeline), states read on scrape (outbox, IMAP)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from mailtickets.errors import TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.metrics import Metrics, observed_ingest
from mailtickets.models import OutboxMail, OutboxState, Outcome
from mailtickets.notify.sender import deliver_due
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_ingest("created", 0.01)
    assert samples(first)[("mailtickets_messages_total", (("outcome", "created"),))] == 1
    assert ("mailtickets_messages_total", (("outcome", "created"),)) not in samples(second)


async def test_pipeline_counts_outcomes_and_latency(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    pipeline = sqlite_store.pipeline()
    pipeline.metrics = Metrics()
    raw = make_message(message_id="<m1@acme.example>")
    await pipeline.ingest(raw, "test")
    await pipeline.ingest(raw, "test")
    found = samples(pipeline.metrics)
    assert found[("mailtickets_messages_total", (("outcome", "created"),))] == 1
    assert found[("mailtickets_messages_total", (("outcome", "duplicate"),))] == 1
    assert found[("mailtickets_ingest_seconds_count", ())] == 2


async def test_pipeline_without_metrics_still_ingests(sqlite_store: Store) -> None:
    result = await sqlite_store.pipeline().ingest(make_message(), "test")
    assert result.outcome in (Outcome.CREATED, Outcome.QUARANTINED)


class FailingIngestor:
    """Fake: raises the store's temporary error, as the pipeline does when the database is down."""

    metrics: Metrics | None = None

    @observed_ingest
    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        raise TemporaryError("fake store unavailable")


async def test_temporary_errors_are_counted() -> None:
    ingestor = FailingIngestor()
    ingestor.metrics = Metrics()
    with pytest.raises(TemporaryError):
        await ingestor.ingest(b"x", "test")
    assert samples(ingestor.metrics)[("mailtickets_messages_total", (("outcome", "temporary_error"),))] == 1


class FakeListenerState:
    """Stands in for a MailboxListener: connected, or down for the given reason."""

    def __init__(self, up: bool, problem: str = "reconnecting after OSError: connection refused") -> None:
        self.connected = asyncio.Event()
        self.problem = problem
        if up:
            self.connected.set()

    @property
    def status(self) -> str:
        return "connected" if self.connected.is_set() else self.problem


async def test_refresh_reads_outbox_and_mailboxes(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    pipeline = sqlite_store.pipeline()
    pipeline.metrics = metrics = Metrics()
    metrics.watch_mailbox("support", FakeListenerState(True))
    metrics.watch_mailbox("sales", FakeListenerState(False))
    metrics.observe_autoclose(chasers=2, closed=1)
    await pipeline.ingest(make_message(message_id="<m2@acme.example>"), "test")
    async with sqlite_store.sessions() as session:
        await metrics.refresh(session)
    found = samples(metrics)
    assert found[("mailtickets_outbox_mails", (("state", "pending"),))] >= 1
    assert found[("mailtickets_outbox_mails", (("state", "failed"),))] == 0
    assert found[("mailtickets_imap_connected", (("mailbox", "support"),))] == 1
    assert found[("mailtickets_imap_connected", (("mailbox", "sales"),))] == 0
    assert found[("mailtickets_autoclose_actions_total", (("action", "chaser"),))] == 2
    assert found[("mailtickets_autoclose_actions_total", (("action", "closed"),))] == 1


async def test_outbox_mails_whose_delivery_failed_are_counted_as_retrying(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    await sqlite_store.pipeline().ingest(make_message(message_id="<m3@acme.example>"), "test")
    assert sqlite_store.settings.smtp_url == "smtp://127.0.0.1:1"  # nothing listens: every attempt fails
    await deliver_due(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock)
    metrics = Metrics()
    async with sqlite_store.sessions() as session:
        await metrics.refresh(session)
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.state == OutboxState.PENDING)
        )
    found = samples(metrics)
    assert pending and found[("mailtickets_outbox_retrying_mails", ())] == pending
    assert found[("mailtickets_outbox_mails", (("state", "pending"),))] == pending

"""Prometheus metrics, owned by one `Metrics` object that the composition root creates and passes on.

Nothing is registered at import: each `Metrics` has its own `CollectorRegistry`, so tests and several
apps in one process never share counters.  Event counters are updated where the events happen (the
pipeline through `observed_ingest`, the auto-close job through `observe_autoclose`); the outbox depth
and the IMAP connection states are read when Prometheus scrapes (`refresh`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.errors import TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.models import OutboxMail, OutboxState

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds from raw bytes to committed outcome: most messages take milliseconds, big ones a second or more.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TEMPORARY_ERROR = "temporary_error"


class ConnectionState(Protocol):
    """What a mailbox listener exposes: `connected` is set while its session is open and caught up."""

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def status(self) -> str:
        """ "connected", or why not."""
        ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("mailtickets_messages", "Messages ingested, by outcome", ["outcome"], registry=r)
        self.ingest_seconds = Histogram(
            "mailtickets_ingest_seconds", "Time from raw message to committed outcome", buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.autoclose = Counter(
            "mailtickets_autoclose_actions", "Auto-close actions: chasers queued, tickets closed", ["action"],
            registry=r,
        )  # fmt: skip
        self.outbox = Gauge(
            "mailtickets_outbox_mails", "Outbox rows by state (failed = given up)", ["state"], registry=r
        )
        self.outbox_retrying = Gauge(
            "mailtickets_outbox_retrying_mails", "Pending mails whose last delivery attempt failed", registry=r
        )
        self.imap_connected = Gauge(
            "mailtickets_imap_connected", "1 while the mailbox's IMAP session is open and caught up", ["mailbox"],
            registry=r,
        )  # fmt: skip
        self.mailboxes: dict[str, ConnectionState] = {}

    def observe_ingest(self, outcome: str, seconds: float) -> None:
        self.messages.labels(outcome).inc()
        self.ingest_seconds.observe(seconds)

    def observe_autoclose(self, chasers: int, closed: int) -> None:
        self.autoclose.labels("chaser").inc(chasers)
        self.autoclose.labels("closed").inc(closed)

    def watch_mailbox(self, name: str, state: ConnectionState) -> None:
        self.mailboxes[name] = state

    def mailbox_states(self) -> dict[str, bool]:
        return {name: state.connected.is_set() for name, state in self.mailboxes.items()}

    def mailbox_status(self) -> dict[str, str]:
        return {name: state.status for name, state in self.mailboxes.items()}

    async def refresh(self, session: AsyncSession) -> None:
        """Read what is a state rather than an event: the outbox by state (and failing retries), each mailbox."""
        rows = (await session.execute(select(OutboxMail.state, func.count()).group_by(OutboxMail.state))).tuples()
        counts = {state: count for state, count in rows}
        for state in OutboxState:
            self.outbox.labels(state.value).set(counts.get(state, 0))
        retrying = select(func.count()).where(OutboxMail.state == OutboxState.PENDING, OutboxMail.attempts > 0)
        self.outbox_retrying.set(await session.scalar(retrying) or 0)
        for name, connected in self.mailbox_states().items():
            self.imap_connected.labels(name).set(1 if connected else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def watch_mailbox(metrics: Metrics | None, name: str, state: ConnectionState) -> None:
    """For the composition root: register a listener's state when metrics are on."""
    if metrics is not None:
        metrics.watch_mailbox(name, state)


class Observed(Protocol):
    metrics: Metrics | None


IngestMethod = TypeVar("IngestMethod", bound=Callable[..., Awaitable[IngestResult]])


def observed_ingest(ingest: IngestMethod) -> IngestMethod:
    """Decorates `Pipeline.ingest`: counts each outcome and times it, when the pipeline has metrics."""

    @functools.wraps(ingest)
    async def wrapper(self: Observed, raw: bytes, source: str) -> IngestResult:
        started = time.perf_counter()
        try:
            result = await ingest(self, raw, source)
        except TemporaryError:
            if self.metrics is not None:
                self.metrics.observe_ingest(TEMPORARY_ERROR, time.perf_counter() - started)
            raise
        if self.metrics is not None:
            self.metrics.observe_ingest(result.outcome.value, time.perf_counter() - started)
        return result

    return cast(IngestMethod, wrapper)

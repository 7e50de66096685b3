"""The IMAP listener: one per mailbox; catch-up, then IDLE (or NOOP polling), forever.

Order of work: fetch a batch, hand it to the pipeline at once (which commits it together, see
pipeline/batch.py) and, while it commits, fetch the next one and hand it over too (bounded: two batches,
`fetch_batch_bytes` in all); once a batch is committed, move or flag its mail on the server (one UID
command per target folder), and remember the highest UID now and then and at the end of each catch-up.
A crash anywhere in between means a message is fetched again on restart and the pipeline's dedupe
answers "duplicate": nothing is lost, nothing is doubled.
Every failure ends the session and reconnects after an exponential, jittered, capped back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.db import transaction
from mailtickets.errors import TemporaryError
from mailtickets.ingest.imap_session import ImapAuthError, ImapError, ImapSession
from mailtickets.ingest.leases import LeaseLost, Leases, wait_or_stop
from mailtickets.ingest.mailbox_config import redacted
from mailtickets.ingest.result import Ingestor, IngestResult
from mailtickets.models import MailboxState, Outcome
from mailtickets.settings import MailboxSettings

log = logging.getLogger(__name__)

FETCH_BATCH = 100  # aioimaplib's recursive parser fails on replies covering ~1,000 messages
FETCH_BATCH_BYTES = 50 * 1024 * 1024  # and at most this much mail in memory at once (settings.imap_fetch_batch_bytes)
PIPELINE_DEPTH = 2  # batches in hand: one committing, the next fetched and parsing
STATE_SAVE_SECONDS = 2.0  # how often a long catch-up writes its progress (and once at its end)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 120.0
AUTH_RETRY_SECONDS = 300.0
CONNECTED = "connected"
STANDBY = "standby: another instance holds this mailbox's lease"


@dataclass
class Backoff:
    """Exponential back-off with jitter (half to full of the step), capped."""

    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        step: float = min(self.cap, self.base * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return step * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class MailboxStateStore:
    """The UIDVALIDITY and highest processed UID per mailbox (table mailbox_state)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def resync(self, name: str, uidvalidity: int) -> int:
        """Last processed UID, reset to 0 when the server's UIDVALIDITY changed."""
        async with transaction(self._sessions) as session:
            state = await session.get(MailboxState, name)
            if state is None:
                session.add(MailboxState(name=name, uidvalidity=uidvalidity, last_uid=0))
                return 0
            if state.uidvalidity != uidvalidity:
                log.warning("mailbox %s: UIDVALIDITY changed, re-reading the whole folder", name)
                state.uidvalidity, state.last_uid = uidvalidity, 0
            return state.last_uid

    async def save(self, name: str, last_uid: int) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(MailboxState)
                .where(MailboxState.name == name, MailboxState.last_uid < last_uid)
                .values(last_uid=last_uid)
            )


SessionFactory = Callable[[MailboxSettings], ImapSession]


class MailboxListener:
    """Consumes one mailbox while holding its lease, until `stop` is set."""

    def __init__(
        self,
        mailbox: MailboxSettings,
        ingestor: Ingestor,
        sessions: async_sessionmaker[AsyncSession],
        leases: Leases,
        *,
        idle_renew_seconds: float,
        stop: asyncio.Event,
        connect: SessionFactory = ImapSession,
        backoff: Backoff | None = None,
        fetch_batch_bytes: int = FETCH_BATCH_BYTES,
    ) -> None:
        self._fetch_batch_bytes = fetch_batch_bytes
        self.mailbox = mailbox
        self._ingestor = ingestor
        self._state = MailboxStateStore(sessions)
        self._leases = leases
        self._renew = idle_renew_seconds
        self._stop = stop
        self._connect = connect
        self._backoff = backoff or Backoff()
        self.lease_name = f"imap:{mailbox.name}"
        self.connected = asyncio.Event()  # set while a session is open and caught up (tests, health)
        self._problem = "starting"

    @property
    def status(self) -> str:
        """For /readyz: "connected", STANDBY, or why not (the last failure, or what it is doing)."""
        return CONNECTED if self.connected.is_set() else self._problem

    async def run(self) -> None:
        """The worker boundary: every failure is logged here and followed by a reconnect."""
        while not self._stop.is_set():
            delay = await self._run_once()
            await wait_or_stop(self._stop, delay)
        log.info("mailbox %s: stopped", self.mailbox.name)

    async def _run_once(self) -> float:
        """One lease + session; returns how long to wait before the next attempt."""
        name = self.mailbox.name
        try:
            if not await self._leases.try_acquire(self.lease_name):
                self._problem = STANDBY
                if not await self._leases.wait_acquire(self.lease_name, self._stop):
                    return 0.0
            self._problem = "connecting"
            await self._consume_while_leased()
            return 0.0
        except ImapAuthError as exc:
            self._problem = f"login refused: {exc}"
            log.error("mailbox %s: login refused (%s); retry in %.0f s", name, exc, AUTH_RETRY_SECONDS)
            return AUTH_RETRY_SECONDS
        except (ImapError, TemporaryError, LeaseLost, OperationalError, OSError) as exc:
            delay = self._backoff.next()
            self._problem = f"reconnecting after {type(exc).__name__}: {exc}"
            log.warning("mailbox %s: %s: %s; reconnecting in %.1f s", name, type(exc).__name__, exc, delay)
            return delay
        except Exception as exc:  # the worker boundary: a bug must not end the listener for good
            delay = self._backoff.next()
            self._problem = f"reconnecting after an unexpected {type(exc).__name__} (see the log)"
            log.exception("mailbox %s: unexpected failure; reconnecting in %.1f s", name, delay)
            return delay
        finally:
            self.connected.clear()

    async def _consume_while_leased(self) -> None:
        work = asyncio.ensure_future(self._session())
        heartbeat = asyncio.ensure_future(self._leases.keep(self.lease_name))
        try:
            done, _ = await asyncio.wait({work, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, heartbeat):
                task.cancel()
            await asyncio.gather(work, heartbeat, return_exceptions=True)
        for task in done:
            task.result()
        if self._stop.is_set():
            await self._leases.release(self.lease_name)

    async def _session(self) -> None:
        session = self._connect(self.mailbox)
        try:
            uidvalidity = await session.open()
            last_uid = await self._state.resync(self.mailbox.name, uidvalidity)
            log.info("mailbox %s: connected, catching up after UID %d", redacted(self.mailbox), last_uid)
            last_uid = await self._catch_up(session, last_uid)
            self._backoff.reset()
            self.connected.set()
            while not self._stop.is_set():
                await self._wait_for_mail(session)
                last_uid = await self._catch_up(session, last_uid)
        finally:
            await session.logout()

    async def _wait_for_mail(self, session: ImapSession) -> None:
        if session.has("IDLE"):
            await session.idle(self._renew, self._stop)
        else:
            await wait_or_stop(self._stop, self.mailbox.poll_interval_seconds)
            await session.noop()

    async def _catch_up(self, session: ImapSession, last_uid: int) -> int:
        """Fetch, ingest and settle everything after `last_uid`, pipelined: the next batch is fetched and
        handed to the pipeline (whose parse workers start on it) while the previous one is committing.

        Bounded: at most PIPELINE_DEPTH batches and `fetch_batch_bytes` of mail in hand at once. Batches
        are settled in order, each only after the commit that holds it; a batch still in the pipeline when
        this stops or fails is never settled here: it is fetched again and answered "duplicate".
        """
        in_flight: deque[_InFlight] = deque()
        progress = _Progress(last_uid)
        try:
            uids = await session.uids_after(last_uid)
            for start in range(0, len(uids), FETCH_BATCH):
                chunk = uids[start : start + FETCH_BATCH]
                # Half the bound each, so that the next batch fits in hand beside the one committing.
                batch_bytes = self._fetch_batch_bytes // PIPELINE_DEPTH
                for batch, size in await session.sized_batches(chunk, FETCH_BATCH, batch_bytes):
                    while in_flight and (
                        len(in_flight) >= PIPELINE_DEPTH
                        or sum(f.size for f in in_flight) + size > self._fetch_batch_bytes
                    ):
                        await self._settle_oldest(session, in_flight, progress)
                    if self._stop.is_set():
                        break
                    in_flight.append(self._hand_over(await session.fetch(batch), size))
                if self._stop.is_set():
                    break
            while in_flight:
                await self._settle_oldest(session, in_flight, progress)
        except BaseException:
            if not isinstance(sys.exc_info()[1], asyncio.CancelledError):
                # What the pipeline holds finishes before the reconnect fetches it again (it then dedupes).
                await asyncio.gather(*(f.outcomes for f in in_flight), return_exceptions=True)
            if progress.unsaved:  # best effort: what was settled need not be fetched again
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._state.save(self.mailbox.name, progress.last_uid))
            raise
        if progress.unsaved:
            await self._state.save(self.mailbox.name, progress.last_uid)
        return progress.last_uid

    def _hand_over(self, fetched: list[tuple[int, bytes]], size: int) -> _InFlight:
        """The whole batch to the pipeline at once, so that it shares group commits (pipeline/batch.py).

        Shielded: a SIGTERM or a lost lease lets the batch in hand finish committing.
        """
        source = f"imap:{self.mailbox.name}"
        gathered = asyncio.gather(*(self._ingestor.ingest(raw, source) for _, raw in fetched), return_exceptions=True)
        return _InFlight(fetched, size, gathered)

    async def _settle_oldest(self, session: ImapSession, in_flight: deque[_InFlight], progress: _Progress) -> None:
        """Wait for the oldest batch's commits, then move or flag its committed mail (one command per
        target folder). A failed message is fetched again later: raises its failure after settling the
        others; the highest UID below the first failure is what is remembered."""
        oldest = in_flight[0]
        outcomes = await asyncio.shield(oldest.outcomes)
        in_flight.popleft()
        done: list[tuple[int, Outcome]] = []
        failure: BaseException | None = None
        last_uid = 0
        for (uid, _), result in zip(oldest.fetched, outcomes, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            _log_result(self.mailbox.name, uid, result)
            done.append((uid, result.outcome))
            last_uid = uid if failure is None else last_uid
        await self._settle(session, done)
        progress.advance(last_uid)
        if failure is not None:
            raise failure
        if progress.due():
            await self._state.save(self.mailbox.name, progress.last_uid)
            progress.saved()

    async def _settle(self, session: ImapSession, done: list[tuple[int, Outcome]]) -> None:
        if not done:
            return
        m = self.mailbox
        quarantined = [uid for uid, outcome in done if outcome == Outcome.QUARANTINED]
        handled = [uid for uid, outcome in done if outcome != Outcome.QUARANTINED]
        if quarantined:
            await session.move(quarantined, m.quarantine_folder)
        if handled and m.after_processing == "move":
            await session.move(handled, m.processed_folder)
        elif handled:
            await session.flag_seen(handled)


@dataclass(slots=True)
class _InFlight:
    """A fetched batch in the pipeline: its mail, its size as the server gave it, its outcomes to come."""

    fetched: list[tuple[int, bytes]]
    size: int
    outcomes: asyncio.Future[list[IngestResult | BaseException]]


@dataclass(slots=True)
class _Progress:
    """The highest settled UID, written to mailbox_state at most every STATE_SAVE_SECONDS during a
    long catch-up and once at its end: each write is a durable commit beside the pipeline's, and a UID
    not yet written only means that settled mail is fetched again after a crash (and dedupes)."""

    last_uid: int
    unsaved: bool = False
    saved_at: float = field(default_factory=time.monotonic)

    def advance(self, uid: int) -> None:
        if uid > self.last_uid:
            self.last_uid, self.unsaved = uid, True

    def due(self) -> bool:
        return self.unsaved and time.monotonic() - self.saved_at >= STATE_SAVE_SECONDS

    def saved(self) -> None:
        self.unsaved, self.saved_at = False, time.monotonic()


def _log_result(mailbox: str, uid: int, result: IngestResult) -> None:
    log.debug("mailbox %s uid %d: %s %s", mailbox, uid, result.outcome.value, result.ticket or "")

"""The IMAP listener: one per mailbox; catch-up, then IDLE (or NOOP polling), forever.

Order of work: fetch a batch, hand it to the pipeline at once (which commits it together, see
pipeline/batch.py), then move or flag the committed ones on the server (one command per batch), then
remember the highest UID.  A crash anywhere in between means a message is fetched again on restart and
the pipeline's dedupe answers "duplicate": nothing is lost, nothing is doubled.
Every failure ends the session and reconnects after an exponential, jittered, capped back-off.
"""

from __future__ import annotations

import asyncio
import logging
import random
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
    ) -> None:
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
        uids = await session.uids_after(last_uid)
        for start in range(0, len(uids), FETCH_BATCH):
            if self._stop.is_set():
                break
            fetched = await session.fetch(uids[start : start + FETCH_BATCH])
            last_uid = max(last_uid, await self._process_batch(session, fetched))
        return last_uid

    async def _process_batch(self, session: ImapSession, fetched: list[tuple[int, bytes]]) -> int:
        """Ingest the batch (handed over at once, so the pipeline commits it together), then settle the
        committed ones on the server in one command each.

        A crash before settling means they are fetched again and the pipeline answers "duplicate".
        Returns the highest UID below the first failure: a failed message is fetched again later.
        """
        if self._stop.is_set():
            return 0
        source = f"imap:{self.mailbox.name}"
        # Shielded: a SIGTERM or a lost lease lets the batch in hand finish committing.
        outcomes = await asyncio.shield(
            asyncio.gather(*(self._ingestor.ingest(raw, source) for _, raw in fetched), return_exceptions=True)
        )
        done: list[tuple[int, Outcome]] = []
        failure: BaseException | None = None
        last_uid = 0
        for (uid, _), result in zip(fetched, outcomes, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            _log_result(self.mailbox.name, uid, result)
            done.append((uid, result.outcome))
            last_uid = uid if failure is None else last_uid
        await self._settle(session, done, last_uid)
        if failure is not None:
            raise failure
        return last_uid

    async def _settle(self, session: ImapSession, done: list[tuple[int, Outcome]], last_uid: int) -> None:
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
        if last_uid:
            await self._state.save(m.name, last_uid)


def _log_result(mailbox: str, uid: int, result: IngestResult) -> None:
    log.debug("mailbox %s uid %d: %s %s", mailbox, uid, result.outcome.value, result.ticket or "")

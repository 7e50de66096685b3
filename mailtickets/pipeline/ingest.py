"""The pipeline: one raw message in, one committed outcome out.

parse → dedupe → automatic/own mail → match sender → thread → rules → ticket or reply → notifications,
all in ONE transaction with the inbound-mail record, so a crash leaves either nothing or all of it, and
the same message arriving again (another mailbox, a retry after a crash) is a `duplicate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import Clock, SystemClock
from mailtickets.db import Before, connection_of, flush_pending, prepare, transaction
from mailtickets.errors import Conflict, InvalidInput, NotFound, TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.metrics import Metrics, observed_ingest
from mailtickets.models import Client, InboundMail, Outcome, QuarantineState, Ticket
from mailtickets.parse.message import ParsedMessage
from mailtickets.pipeline.batch import GroupCommit
from mailtickets.pipeline.decide import Context, Decision, decide, decide_release, facts_for, record_events
from mailtickets.pipeline.parse_worker import ParseFailure, Parser, ParseWorkers
from mailtickets.pipeline.poison import count_failure, forget_failures
from mailtickets.rules.store import RuleCache
from mailtickets.settings import Settings
from mailtickets.storage import FileStore, UnwrittenFileStore
from mailtickets.tickets.service import write_message
from mailtickets.trust.authres import NO_VERDICT, SenderAuth
from mailtickets.trust.dkim import TxtLookup
from mailtickets.trust.verdict import verdict_for

log = logging.getLogger(__name__)

_INSERT_INBOUND = prepare(insert(cast(Table, InboundMail.__table__)).returning(InboundMail.__table__.c.id))
INTEGRITY_RETRIES = 3  # a concurrent writer won a unique key: re-run, which then sees its row


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What ingest would do with a message now, and the message as parsed (None: it cannot be)."""

    result: IngestResult
    parsed: ParsedMessage | None


@dataclass(frozen=True, slots=True)
class Received:
    raw: bytes
    source: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Ready:
    """A received message, parsed (or why it could not be), waiting for its turn in a group commit."""

    received: Received
    parsed: ParsedMessage | None
    problem: str | None
    verdict: SenderAuth


class Pipeline:
    metrics: Metrics | None = None  # set by the composition root; counts outcomes and latency
    dkim_lookup: TxtLookup | None = None  # DKIM key lookup for `dkim_verify`; None: DNS (tests give keys)

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        *,
        notify: bool = True,
        parser: Parser | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock or SystemClock()
        self.files = FileStore(settings.attachments_dir)
        self.raw_store = FileStore(settings.raw_dir)
        self.rules = RuleCache()
        # False for imports of old mail (backfill): tickets are made, nobody is mailed about them.
        self.notify = notify
        # Parsing runs in worker processes with a time and memory limit per message (started on first use).
        self.parser: Parser = parser or ParseWorkers.from_settings(settings)
        self._failed: set[str] = set()  # digests with a failure count to clear once they go through
        self.batches = GroupCommit(sessions, self._in_batch, self._alone, settings.ingest_batch_size)

    async def close(self) -> None:
        await self.parser.close()

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @observed_ingest
    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        # Inline SQLite never suspends: without this checkpoint a burst of mail would starve the
        # other tasks (IDLE keepalives, the API) and a cancel (Ctrl-C) would land only after the burst.
        await asyncio.sleep(0)
        received = Received(raw, source, hashlib.sha256(raw).hexdigest())
        parsed, problem = await self._parse(raw)
        try:
            result = await self._decide_and_commit(received, parsed, problem)
        except TemporaryError as exc:
            result = await self._after_temporary_failure(received, parsed, exc)
        except Exception as exc:  # the pipeline's boundary: the message's fault or our bug, never retried
            log.exception("processing failed; the message is quarantined whole")
            result = await self._quarantine_whole(received, parsed, f"processing failed: {type(exc).__name__}: {exc}")
        if received.sha256 in self._failed:
            self._failed.discard(received.sha256)
            with contextlib.suppress(SQLAlchemyError, OSError):  # best effort: stale counts expire anyway
                await forget_failures(self.sessions, received.sha256)
        self._log(result, received)
        return result

    async def _decide_and_commit(
        self, received: Received, parsed: ParsedMessage | None, problem: str | None
    ) -> IngestResult:
        verdict = await self._verdict(parsed, received.raw)
        # Concurrent deliveries (an IMAP fetch, LMTP sessions) share one commit; returns after it. A message
        # that fails in the batch is undone to its savepoint and run again alone (`_alone`): what that raises
        # comes back here only, to this message's boundary, never to the others of the batch.
        return await self.batches.submit(Ready(received, parsed, problem, verdict))

    async def _in_batch(self, session: AsyncSession, ready: Ready) -> IngestResult:
        # Optimistic: the unique dedupe key refuses a duplicate at the insert, and the message is then
        # retried alone, looking it up. Fresh mail (nearly all of it) saves a query. A message that takes
        # too long is cut off here too, so it cannot hold the whole batch.
        async with asyncio.timeout(self.settings.worker_timeout_seconds):
            return await self._process(
                session, ready.received, ready.parsed, ready.problem, ready.verdict, look_up_first=False
            )

    async def _alone(self, ready: Ready) -> IngestResult:
        async def work(session: AsyncSession, attempt: int) -> IngestResult:
            return await self._process(
                session, ready.received, ready.parsed, ready.problem, ready.verdict, look_up_first=attempt > 0
            )

        try:
            async with asyncio.timeout(self.settings.worker_timeout_seconds):
                return await self._in_transaction(work)
        except TimeoutError as exc:
            limit = self.settings.worker_timeout_seconds
            raise TemporaryError(f"processing took longer than worker_timeout_seconds ({limit:g} s)") from exc

    async def _after_temporary_failure(
        self, received: Received, parsed: ParsedMessage | None, error: TemporaryError
    ) -> IngestResult:
        """Counted; raised again (the intake retries later) until the same message has failed too often."""
        now = self.clock.now()
        try:
            if await self._already_recorded(dedupe_key(parsed, received.sha256)):  # e.g. quarantined as poison
                message_id = parsed.message_id if parsed else None
                return IngestResult(Outcome.DUPLICATE, None, "already processed", message_id)
            count = await count_failure(self.sessions, self.settings, received.sha256, str(error), now)
        except (SQLAlchemyError, OSError):
            raise error from None  # not even the count can be written: the store is down, truly temporary
        self._failed.add(received.sha256)
        if not count.is_poison(self.settings, now):
            raise error
        since = f"{count.first_failed_at:%Y-%m-%d %H:%M} UTC"
        reason = f"poison: failed {count.attempts} times since {since}; last: {error}"
        return await self._quarantine_whole(received, parsed, reason)

    async def _already_recorded(self, key: str) -> bool:
        async with self.sessions() as session:
            return await session.scalar(select(InboundMail.id).where(InboundMail.dedupe_key == key)) is not None

    async def _quarantine_whole(self, received: Received, parsed: ParsedMessage | None, reason: str) -> IngestResult:
        """Hold the message with its raw bytes and the reason; if even that fails, the intake retries."""

        async def work(session: AsyncSession, attempt: int) -> IngestResult:
            key = dedupe_key(parsed, received.sha256)
            if attempt > 0 and await session.scalar(select(InboundMail.id).where(InboundMail.dedupe_key == key)):
                return IngestResult(Outcome.DUPLICATE, None, "already processed", parsed.message_id if parsed else None)
            decision = Decision(Outcome.QUARANTINED, reason=reason)
            await _INSERT_INBOUND.run(await connection_of(session), self._record(received, parsed, key, decision, None))
            return IngestResult(Outcome.QUARANTINED, None, reason, parsed.message_id if parsed else None)

        try:
            return await self._in_transaction(work)
        except IntegrityError as exc:
            raise TemporaryError(f"cannot record the quarantine: {type(exc).__name__}") from exc

    async def rehearse(self, raw: bytes, source: str, *, anew: int | None = None) -> Rehearsal:
        """The dry run: `ingest`'s own decision code on a transaction that is rolled back, with file
        stores that write nothing, so the outcome it reports is the one ingest would give.

        `anew`: the trace entry (inbound_mail id) the bytes come from, rehearsed as if it had not been
        recorded yet (else it is its own duplicate); its dedupe key is set aside in the rolled-back transaction.
        """
        received = Received(raw, source, hashlib.sha256(raw).hexdigest())
        parsed, problem = await self._parse(raw, write_files=False)  # in the workers: an upload cannot hold the loop
        verdict = await self._verdict(parsed, raw)
        rehearsal = copy.copy(self)
        rehearsal.files = UnwrittenFileStore(self.files.root)
        rehearsal.raw_store = UnwrittenFileStore(self.raw_store.root)
        async with self.sessions() as session:
            try:
                if anew is not None:
                    aside = update(InboundMail).where(InboundMail.id == anew)
                    await session.execute(aside.values(dedupe_key=f"rehearsal:{anew}"))
                result = await rehearsal._process(session, received, parsed, problem, verdict, look_up_first=True)
            finally:
                await session.rollback()
        return Rehearsal(result, parsed)

    async def _verdict(self, parsed: ParsedMessage | None, raw: bytes) -> SenderAuth:
        if parsed is None:
            return NO_VERDICT
        if self.settings.dkim_verify:  # DNS lookups block: off the event loop
            return await asyncio.to_thread(verdict_for, parsed, self.settings, raw, self.dkim_lookup)
        return verdict_for(parsed, self.settings)

    async def release(self, inbound_id: int, client_id: int | None = None) -> IngestResult:
        """Ingest a held message as if its sender were known (optionally for a given client)."""

        async with self.sessions() as session:  # parsed before the transaction: no lock held meanwhile
            raw = self.raw_store.get((await held_message(session, inbound_id)).raw_sha256)
        parsed = await self.parser.parse(raw)
        if isinstance(parsed, ParseFailure):
            if parsed.temporary:
                raise TemporaryError(parsed.reason)
            raise InvalidInput("the message cannot be parsed", {"message": parsed.reason})
        verdict = await self._verdict(parsed, raw)

        async def work(session: AsyncSession, attempt: int) -> IngestResult:
            held = await held_message(session, inbound_id)  # again, locked: still held?
            client = await session.get(Client, client_id) if client_id is not None else None
            if client_id is not None and client is None:
                # 422, not 404: the message exists, the client named for it does not.
                raise InvalidInput("the release is not valid", {"client_id": f"no client with id {client_id}"})
            held.quarantine_state = QuarantineState.RELEASED
            held.dedupe_key = f"released:{held.id}:{held.dedupe_key}"[:1100]
            await session.flush()
            context = Context(session, self.settings, self.clock, self.files, parsed, held.source, verdict)
            decision = await decide_release(context, client)
            return await self._commit_decision(
                session,
                Received(raw, held.source, held.raw_sha256),
                parsed,
                dedupe_key(parsed, held.raw_sha256),
                decision,
                verdict.authenticated,
            )

        result = await self._in_transaction(work)
        ticket = result.ticket or "-"
        log.info("quarantined message %s released: %s %s", result.message_id, result.outcome.value, ticket)
        return result

    async def _in_transaction(self, work: Callable[[AsyncSession, int], Awaitable[IngestResult]]) -> IngestResult:
        for attempt in range(INTEGRITY_RETRIES):
            try:
                async with transaction(self.sessions) as session:
                    return await work(session, attempt)
            except IntegrityError:
                if attempt == INTEGRITY_RETRIES - 1:
                    raise
            except (OperationalError, InterfaceError, OSError) as exc:
                raise TemporaryError(f"store unavailable: {type(exc).__name__}") from exc
        raise AssertionError("unreachable: the last attempt re-raises")

    def _log(self, result: IngestResult, received: Received) -> None:
        source = received.source
        log.info(
            "message %s from %s: %s %s%s",
            result.message_id or f"sha256:{received.sha256[:12]}",
            source,
            result.outcome.value,
            result.ticket or "-",
            f" ({result.reason})" if result.reason else "",
        )

    async def _parse(self, raw: bytes, *, write_files: bool = True) -> tuple[ParsedMessage | None, str | None]:
        if len(raw) > self.settings.max_message_bytes:
            return None, f"too large: {len(raw)} bytes, limit {self.settings.max_message_bytes}"
        try:
            outcome = await self.parser.parse(raw, write_files=write_files)
        except OSError as exc:  # no worker could be started (out of processes or memory): ours, passing
            raise TemporaryError(f"no parse worker: {exc}") from exc
        if isinstance(outcome, ParseFailure):
            if outcome.temporary:  # e.g. a full disk: not the message's fault, so not quarantined
                raise TemporaryError(outcome.reason)
            return None, outcome.reason
        if outcome.left_out:  # one line per message, however many parts were skipped
            left_out = outcome.left_out
            log.warning("message %s: %d notes on what was left out: %s", outcome.message_id, len(left_out), left_out)
        return outcome, None

    async def _process(
        self,
        session: AsyncSession,
        received: Received,
        parsed: ParsedMessage | None,
        problem: str | None,
        verdict: SenderAuth,
        *,
        look_up_first: bool,
    ) -> IngestResult:
        key = dedupe_key(parsed, received.sha256)
        existing = (
            await session.scalar(select(InboundMail).where(InboundMail.dedupe_key == key)) if look_up_first else None
        )
        if existing is not None:
            original = await session.get(Ticket, existing.ticket_id) if existing.ticket_id else None
            return IngestResult(
                Outcome.DUPLICATE,
                original.reference if original else None,
                f"already processed as {existing.outcome.value}",
                parsed.message_id if parsed else None,
                existing.authenticated,
            )
        matched: list[str] = []
        if parsed is None:
            decision = Decision(Outcome.QUARANTINED, reason=problem)
        else:
            context = Context(session, self.settings, self.clock, self.files, parsed, received.source, verdict, matched)
            decision = await decide(context, await self.rules.active_rules(session))
            return await self._commit_decision(session, received, parsed, key, decision, verdict.authenticated, matched)
        return await self._commit_decision(session, received, parsed, key, decision)

    async def _commit_decision(
        self,
        session: AsyncSession,
        received: Received,
        parsed: ParsedMessage | None,
        key: str,
        decision: Decision,
        authenticated: bool | None = None,
        matched_rules: list[str] | None = None,
    ) -> IngestResult:
        if parsed is not None and parsed.sender_ambiguity:  # recorded whatever the outcome
            decision.reason = "; ".join(filter(None, [decision.reason, f"From: {parsed.sender_ambiguity}"]))
        record = self._record(received, parsed, key, decision, authenticated)
        record["matched_rules"] = matched_rules or None
        # A Core insert built once (same Table as the model), on the connection: no ORM object to track,
        # no autoflush (a pending change of a reply's ticket waits for the flush below).
        message = decision.message
        if message is not None and inspect(message).transient:  # made by decide (agent mail writes its own)
            await write_message(session, message, Before(_INSERT_INBOUND, record, "inbound_mail_id"))
        else:
            inbound_id = (await _INSERT_INBOUND.one(await connection_of(session), record))[0]
            if message is not None:
                message.inbound_mail_id = inbound_id
        # A new ticket's rows are all written already; what is left: a reply's ticket update, agent mail's objects.
        await flush_pending(session)
        if self.notify:
            await record_events(session, self.settings, self.clock, decision.make_events())
        role = decision.author_role or (decision.message.author_role if decision.message is not None else None)
        message_id = parsed.message_id if parsed is not None else None
        return IngestResult(decision.outcome, decision.reference, decision.reason, message_id, authenticated, role)

    def _record(
        self, received: Received, parsed: ParsedMessage | None, key: str, decision: Decision, authenticated: bool | None
    ) -> dict[str, Any]:
        """The inbound_mail row's values (the trace): what came in, what became of it and why."""
        keep_raw = decision.outcome in (Outcome.QUARANTINED, Outcome.DROPPED)
        if keep_raw:
            self.raw_store.put_with_digest(received.raw, received.sha256)
        return {
            "dedupe_key": key,
            "source": received.source[:200],
            "message_id": parsed.message_id if parsed else None,
            "sender": parsed.sender[:320] if parsed and parsed.sender else None,
            "subject": parsed.subject[:998] if parsed else None,
            "raw_sha256": received.sha256,
            "raw_size": len(received.raw),
            "outcome": decision.outcome,
            "reason": decision.reason,
            "ticket_id": decision.ticket.id if decision.ticket else None,
            "raw_stored": keep_raw,
            "matched_rules": None,
            "headers": header_block(received.raw),
            "quarantine_state": QuarantineState.HELD if decision.outcome == Outcome.QUARANTINED else None,
            "received_at": self.clock.now(),
            "authenticated": authenticated,
        }


async def held_message(session: AsyncSession, inbound_id: int) -> InboundMail:
    held = await session.get(InboundMail, inbound_id, with_for_update=True)
    if held is None:
        raise NotFound(f"no inbound message {inbound_id}")
    if held.quarantine_state != QuarantineState.HELD or not held.raw_stored:
        state = held.quarantine_state.value if held.quarantine_state else held.outcome.value
        raise Conflict(f"message {inbound_id} is not held in quarantine (it is {state})")
    return held


__all__ = ["Pipeline", "Rehearsal", "dedupe_key", "facts_for", "held_message"]


def dedupe_key(parsed: ParsedMessage | None, sha256: str) -> str:
    """Same Message-ID from the same sender is the same message, whichever mailbox it came in on."""
    if parsed is None or parsed.message_id is None:
        return f"sha256:{sha256}"
    return f"mid:{parsed.message_id}|{parsed.sender or ''}"[:1100]


MAX_TRACE_HEADER_CHARS = 16_000
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def header_block(raw: bytes) -> str:
    """The header section as received, for the console's trace (bounded; shown as text, never as HTML)."""
    window = raw[: MAX_TRACE_HEADER_CHARS * 4]
    blank = _BLANK_LINE.search(window)
    head = window[: blank.start()] if blank else window
    return head.decode("utf-8", "replace").replace("\x00", "")[:MAX_TRACE_HEADER_CHARS]

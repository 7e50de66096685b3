"""Backfill: import a mailbox's history through the pipeline, read-only and resumable.

The mailbox is only read: the folder is opened with EXAMINE (so not even \\Recent changes), fetched with
BODY.PEEK[] (no \\Seen), nothing moved, no folder created.  Progress is kept
in `mailbox_state` under a key of its own per (mailbox, folder, since), committed after every batch and
on interruption, so a re-run continues after the last committed UID; a UIDVALIDITY change restarts
from the beginning, which the pipeline's dedupe makes safe ("duplicate").
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.errors import InvalidInput
from mailtickets.ingest.imap import FETCH_BATCH, FETCH_BATCH_BYTES, MailboxStateStore, SessionFactory
from mailtickets.ingest.imap_session import ImapSession
from mailtickets.ingest.mailbox_config import configured_mailboxes, redacted
from mailtickets.ingest.result import Ingestor, IngestResult
from mailtickets.settings import MailboxSettings, Settings

log = logging.getLogger(__name__)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, uid: int, result: IngestResult) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, uid: int, result: IngestResult) -> None:
        pass


@dataclass
class Summary:
    mailbox: str
    folder: str
    since: date
    found: int = 0  # messages the server has since that date
    skipped: int = 0  # already imported by an earlier run (resume)
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        head = {"mailbox": self.mailbox, "folder": self.folder, "since": self.since.isoformat()}
        return {**head, "found": self.found, "skipped": self.skipped, **dict(sorted(self.outcomes.items()))}


def imap_date(day: date) -> str:
    """date(2026, 1, 5) → '05-Jan-2026' (IMAP month names are English whatever the locale)."""
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def state_key(mailbox: str, folder: str, since: date) -> str:
    return f"backfill:{mailbox}:{folder}:{since.isoformat()}"[:200]


def find_mailbox(settings: Settings, name: str) -> MailboxSettings:
    mailboxes = {m.name: m for m in configured_mailboxes(settings)}
    if name not in mailboxes:
        known = ", ".join(sorted(mailboxes)) or "none configured"
        raise InvalidInput(f"no mailbox named {name!r} (known: {known})")
    return mailboxes[name]


def aimed_at(mailbox: MailboxSettings, folder: str | None) -> MailboxSettings:
    """The mailbox settings aimed at another folder (e.g. Sent), or unchanged."""
    return mailbox.model_copy(update={"folder": folder or mailbox.folder})


async def backfill(
    mailbox: MailboxSettings,
    since: date,
    ingestor: Ingestor,
    sessions: async_sessionmaker[AsyncSession],
    *,
    folder: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    connect: SessionFactory = ImapSession,
) -> Summary:
    """Ingest every message of the folder since `since` not yet imported; at most `limit` this run."""
    target = aimed_at(mailbox, folder)
    summary = Summary(mailbox.name, target.folder, since)
    state, key = MailboxStateStore(sessions), state_key(mailbox.name, target.folder, since)
    session = connect(target)
    try:
        last_uid = await state.resync(key, await session.open(read_only=True))
        log.info("backfill %s since %s, after UID %d", redacted(target), since, last_uid)
        found = await search_since(session, since)
        fresh = [uid for uid in found if uid > last_uid]
        summary.found, summary.skipped = len(found), len(found) - len(fresh)
        run = _Run(ingestor, state, key, f"backfill:{mailbox.name}", summary, progress or NoProgress())
        await _import(session, fresh[:limit], run)
    finally:
        await session.logout()
    return summary


async def search_since(session: ImapSession, since: date) -> list[int]:
    response = await session.ok(session.client.uid_search(f"SINCE {imap_date(since)}", charset=None), "UID SEARCH")
    words = b" ".join(bytes(line) for line in response.lines[:-1]).split()
    return sorted(int(w) for w in words if w.isdigit())


@dataclass(frozen=True)
class _Run:
    ingestor: Ingestor
    state: MailboxStateStore
    key: str
    source: str
    summary: Summary
    progress: Progress


async def _import(session: ImapSession, pending: list[int], run: _Run) -> None:
    run.progress.start(len(pending))
    last_done = 0
    try:
        for start in range(0, len(pending), FETCH_BATCH):
            for batch in await session.batches(pending[start : start + FETCH_BATCH], FETCH_BATCH, FETCH_BATCH_BYTES):
                for uid, raw in await session.fetch(batch):
                    result = await run.ingestor.ingest(raw, run.source)
                    run.summary.outcomes[result.outcome.value] += 1
                    last_done = uid
                    run.progress.advance(uid, result)
                await run.state.save(run.key, last_done)
    except asyncio.CancelledError:  # Ctrl-C: keep what was committed, so that a re-run continues from there
        if last_done:
            await run.state.save(run.key, last_done)
        raise

"""The quarantine: messages held with their raw bytes and a reason, until an admin releases or discards them.

Releasing goes through the pipeline (`Pipeline.release`), so a released message becomes a ticket or a
reply exactly like any other, in one transaction with the change of state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.errors import NotFound
from mailtickets.models import InboundMail, QuarantineState
from mailtickets.pipeline.ingest import held_message
from mailtickets.pipeline.parse_worker import ParseFailure, Parser
from mailtickets.pipeline.preview import header_lines, printable, safe_text
from mailtickets.storage import FileStore

PREVIEW_CHARS = 2000


def held_summary(record: InboundMail) -> dict[str, Any]:
    return {
        "id": record.id,
        "received_at": record.received_at.isoformat() if record.received_at else None,
        "source": record.source,
        "sender": record.sender,
        "subject": record.subject,
        "message_id": record.message_id,
        "reason": record.reason,
        "size": record.raw_size,
        "state": record.quarantine_state.value if record.quarantine_state else None,
    }


async def list_held(
    session: AsyncSession,
    state: QuarantineState | None = QuarantineState.HELD,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Quarantined messages, newest first; all of them unless a page (limit, offset) is asked for."""
    query = select(InboundMail).where(InboundMail.quarantine_state.is_not(None)).order_by(InboundMail.id.desc())
    if state is not None:
        query = query.where(InboundMail.quarantine_state == state)
    return [held_summary(r) for r in await session.scalars(query.limit(limit).offset(offset))]


async def count_held(session: AsyncSession, state: QuarantineState | None = QuarantineState.HELD) -> int:
    query = select(func.count()).select_from(InboundMail).where(InboundMail.quarantine_state.is_not(None))
    if state is not None:
        query = query.where(InboundMail.quarantine_state == state)
    return int(await session.scalar(query) or 0)


async def show_held(session: AsyncSession, raw_store: FileStore, inbound_id: int, parser: Parser) -> dict[str, Any]:
    """A quarantined message, held or already released or discarded, with a readable preview of its raw bytes.

    Parsed by `parser` (the workers): a message held for being hostile must not hold the viewer too."""
    record = await session.get(InboundMail, inbound_id)
    if record is None:
        raise NotFound(f"no inbound message {inbound_id}")
    if record.quarantine_state is None:
        raise NotFound(f"message {inbound_id} was not quarantined (it was {record.outcome.value})")
    summary = {k: printable(v) if isinstance(v, str) else v for k, v in held_summary(record).items()}
    raw = held_raw(raw_store, record)
    if raw is None:
        return {**summary, "to": [], "headers": [], "text": "(the raw bytes were not kept)"}
    parsed = await parser.parse(raw, write_files=False)  # a preview writes no attachment
    if isinstance(parsed, ParseFailure):
        preview, to = printable(f"(cannot be parsed: {parsed.reason})"), []
    else:
        preview, to = safe_text(parsed.text, raw, PREVIEW_CHARS), [printable(a) for a in parsed.to]
    return {**summary, "to": to, "headers": [list(pair) for pair in header_lines(raw)], "text": preview}


def held_raw(raw_store: FileStore, record: InboundMail) -> bytes | None:
    """The bytes as they arrived, if they were kept."""
    if not record.raw_stored or not raw_store.exists(record.raw_sha256):
        return None
    return raw_store.get(record.raw_sha256)


async def held_raw_bytes(session: AsyncSession, raw_store: FileStore, inbound_id: int) -> bytes:
    record = await session.get(InboundMail, inbound_id)
    if record is None or record.quarantine_state is None:
        raise NotFound(f"no quarantined message {inbound_id}")
    raw = held_raw(raw_store, record)
    if raw is None:
        raise NotFound(f"the raw bytes of message {inbound_id} were not kept")
    return raw


async def discard_held(session: AsyncSession, inbound_id: int) -> None:
    """Mark as discarded; the raw bytes stay in the store (content-addressed, shared) for audit."""
    record = await held_message(session, inbound_id)
    record.quarantine_state = QuarantineState.DISCARDED

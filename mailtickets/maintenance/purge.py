"""Retention of kept raw mail: `mailtickets db purge` forgets the bytes of messages older than the limit.

The inbound record (sender, subject, outcome, reason) stays for the audit trail, and so do tickets,
their messages and attachments; only the raw copy goes. Mail still held in quarantine keeps its bytes,
whatever its age, since releasing it needs them. A file is deleted only when no record that keeps
its bytes names it (identical mail shares one content-addressed file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.models import InboundMail, QuarantineState
from mailtickets.storage import FileStore


@dataclass(frozen=True)
class PurgeReport:
    records: int  # inbound records whose raw bytes are forgotten
    files: tuple[Path, ...]  # to delete once the transaction that forgets them has committed
    bytes: int


def delete_files(report: PurgeReport) -> None:
    """After the commit: a crash before it leaves every file in place, never a record without its file."""
    for path in report.files:
        path.unlink(missing_ok=True)


async def purge_raw_mail(
    session: AsyncSession, raw_store: FileStore, now: datetime, older_than_days: float, *, dry_run: bool = False
) -> PurgeReport:
    """Forget (in this transaction) the raw bytes of inbound mail received more than `older_than_days` ago,
    unless held; the caller deletes the report's files after committing (delete_files)."""
    cutoff = now - timedelta(days=older_than_days)
    held = InboundMail.quarantine_state.is_not(None) & (InboundMail.quarantine_state == QuarantineState.HELD)
    expired = list(
        await session.scalars(
            select(InboundMail).where(InboundMail.raw_stored.is_(True), InboundMail.received_at < cutoff, ~held)
        )
    )
    digests = {record.raw_sha256 for record in expired}
    still_kept = set(
        await session.scalars(
            select(InboundMail.raw_sha256).where(
                InboundMail.raw_stored.is_(True),
                InboundMail.raw_sha256.in_(digests),
                InboundMail.id.not_in([r.id for r in expired]),
            )
        )
    )
    doomed = [raw_store.path_for(d) for d in sorted(digests - still_kept) if raw_store.exists(d)]
    size = sum(path.stat().st_size for path in doomed)
    if not dry_run:
        for record in expired:
            record.raw_stored = False
        await session.flush()
    return PurgeReport(len(expired), tuple(doomed), size)

"""What every intake gets back from the pipeline for one message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailtickets.models import AuthorRole, Outcome


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    ticket: str | None  # e.g. "TCK-12"
    reason: str | None
    message_id: str | None
    authenticated: bool | None = None  # the trusted verdict on the sender; None: no verdict
    author_role: AuthorRole | None = None  # whose mail it was taken as: a client's or an agent's; None when refused

    def as_json(self) -> dict[str, str | bool | None]:
        return {
            "outcome": self.outcome.value,
            "ticket": self.ticket,
            "reason": self.reason,
            "message_id": self.message_id,
            "authenticated": self.authenticated,
            "author_role": self.author_role.value if self.author_role is not None else None,
        }


class Ingestor(Protocol):
    """The pipeline as intakes see it.

    `ingest` returns only after the outcome is committed.  It raises
    `mailtickets.errors.TemporaryError` when the store is unavailable: the caller must keep the message
    (leave it on the IMAP server, answer 4xx to LMTP, exit 75 to an MTA) and try again later.
    """

    async def ingest(self, raw: bytes, source: str) -> IngestResult: ...

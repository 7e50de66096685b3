"""The parsed form of one email, as every later stage (matching, rules, tickets) sees it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """An attachment's bytes already written to the content-addressed file store (by the parse worker)."""

    sha256: str
    size: int


class PayloadStore(Protocol):
    """Where a big attachment is written as it is decoded (`storage.FileStore`), instead of kept in memory."""

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredPayload: ...


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # already made safe: no path separators, control characters or empty names
    content_type: str
    payload: bytes  # b"" when `stored`
    content_id: str | None = None  # without angle brackets
    inline: bool = False
    stored: StoredPayload | None = None  # the bytes are in the file store already, not in `payload`

    @property
    def size(self) -> int:
        return self.stored.size if self.stored else len(self.payload)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message_id: str | None  # without angle brackets; None when absent or unusable
    sender: str | None  # From address, lower-cased; None when missing or unparseable
    sender_name: str  # decoded after the address list was parsed; never holds an address of its own
    subject: str  # decoded (RFC 2047), unfolded, "" when absent
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    delivered_to: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    return_path: str | None = None  # "" for the null sender <> of bounces
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: datetime | None = None
    # Header names lower-cased, values decoded; every occurrence kept in order.
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_type: str = "text/plain"  # of the top-level part, e.g. multipart/report
    text: str = ""  # the body as plain text (derived from HTML when there is no text part)
    html: str | None = None  # sanitised HTML, safe to show in a browser
    attachments: tuple[ParsedAttachment, ...] = ()
    defects: tuple[str, ...] = ()  # what was wrong with the message and how it was worked around
    sender_ambiguity: str | None = None  # why the From could mislead (several mailboxes, an address in the name)
    # What the sender wrote, quoted history stripped; None when not computed (messages built by hand).
    new_text: str | None = None
    left_out: tuple[str, ...] = ()  # parts, attachments and text over a limit, each with the reason

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_items(self, name: str) -> list[tuple[str, str]]:
        """(name, value) for every occurrence of one header, topmost first."""
        return [(name, value) for value in self.headers.get(name.lower(), ())]

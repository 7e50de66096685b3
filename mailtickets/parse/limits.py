"""Bounds on the work one message may cause: parts read, attachments kept, characters kept.

Every step of parsing is bounded by the size of what it keeps: the raw message is cut after the MIME
part that exceeds `max_mime_parts` (before the stdlib parser reads it), the parsed tree is pruned to
that many parts, attachments beyond `max_attachments` or larger than `max_attachment_bytes` are left
out, and text is cut at `max_text_chars` with a marker.  Whatever is left out is listed, with the
reason, in `ParsedMessage.left_out`.  Pure: no I/O.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Protocol, TypeVar

MAX_NESTING = 40  # MIME parts nested deeper are left out: nobody's mail client nests that deep
CUT_MARKER = "\n[… cut: longer than {limit} characters]"
_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*"?([^"\r\n;]{1,70})', re.IGNORECASE)
_MAX_BOUNDARIES = 1000  # distinct boundaries looked for when bounding the raw message


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_mime_parts: int = 500
    max_attachments: int = 100
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 500_000


def cut_text(text: str, limit: int) -> str:
    """`text` of at most `limit` characters (marker included) when it is longer; unchanged otherwise."""
    if len(text) <= limit:
        return text
    marker = CUT_MARKER.format(limit=limit)
    return text[: max(limit - len(marker), 0)] + marker[: max(limit, 0)]


def bound_raw(raw: bytes, max_parts: int) -> tuple[bytes, int]:
    """The raw message cut before the delimiter line that would start part number 2 * `max_parts`.

    A cheap scan for the delimiters of the boundaries the message declares, so that the stdlib parser
    never reads hundreds of thousands of parts; `prune_parts` then enforces the exact limit on what is
    left.  Returns the (maybe shortened) bytes and how many delimiter lines were cut away.
    """
    boundaries = declared_boundaries(raw)
    if not boundaries:
        return raw, 0
    delimiter = delimiter_lines(boundaries)
    allowed = 2 * max_parts
    for count, found in enumerate(delimiter.finditer(raw)):
        if count == allowed:
            return raw[: found.start()], sum(1 for _ in delimiter.finditer(raw, found.start()))
    return raw, 0


def declared_boundaries(raw: bytes) -> list[bytes]:
    """Every boundary parameter anywhere in the message (a superset of those the stdlib uses), first ones first."""
    return list(dict.fromkeys(m.group(1).strip() for m in _BOUNDARY_PARAM.finditer(raw)))[:_MAX_BOUNDARIES]


def delimiter_lines(boundaries: Iterable[bytes]) -> re.Pattern[bytes]:
    """Lines that start with "--" and one of `boundaries`: every delimiter line of those boundaries, and more."""
    return re.compile(rb"^--(?:" + b"|".join(re.escape(b) for b in boundaries if b) + rb")", re.MULTILINE)


def prune_parts(message: Message, max_parts: int) -> list[str]:
    """Keep the first `max_parts` parts, breadth first (the body is near the top), none nested too deep."""
    budget, too_many, too_deep = max_parts, 0, 0
    queue: deque[tuple[Message, int]] = deque([(message, 0)])
    while queue:
        part, depth = queue.popleft()
        payload = part.get_payload()
        if not part.is_multipart() or not isinstance(payload, list):
            continue
        kept: list[Message | str] = []
        for child in payload:
            if not isinstance(child, Message):
                kept.append(child)
            elif depth + 1 > MAX_NESTING:
                too_deep += 1
            elif budget <= 0:
                too_many += 1
            else:
                budget -= 1
                kept.append(child)
                queue.append((child, depth + 1))
        if len(kept) != len(payload):
            part.set_payload(kept)
    notes = [f"{too_many} MIME parts left out: over max_mime_parts ({max_parts})"] if too_many else []
    notes += [f"{too_deep} MIME parts left out: nested deeper than {MAX_NESTING} levels"] if too_deep else []
    return notes


class _Limited(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def size(self) -> int: ...


Limited = TypeVar("Limited", bound=_Limited)


def limit_attachments(attachments: list[Limited], limits: ParseLimits) -> tuple[list[Limited], list[str]]:
    """At most `max_attachments`, none over `max_attachment_bytes`; the rest listed with the reason."""
    kept: list[Limited] = []
    left_out: list[str] = []
    for attachment in attachments:
        if attachment.size > limits.max_attachment_bytes:
            left_out.append(
                f"attachment {attachment.filename} ({attachment.size} bytes) left out: "
                f"over max_attachment_bytes ({limits.max_attachment_bytes})"
            )
        elif len(kept) >= limits.max_attachments:
            left_out.append(
                f"attachment {attachment.filename} left out: over max_attachments ({limits.max_attachments})"
            )
        else:
            kept.append(attachment)
    return kept, left_out


class _Counter(logging.Filter):
    """Swallows a library's per-part warnings and counts them: the pipeline logs one line per message."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        self.count += 1
        self.first = self.first or record.getMessage()[:200]
        return False


@contextmanager
def counted_warnings(logger_names: tuple[str, ...], notes: list[str]) -> Iterator[None]:
    """While parsing, these loggers' records are counted into one note instead of one line each."""
    counter = _Counter()
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addFilter(counter)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(counter)
        if counter.count:
            notes.append(f"{counter.count} parser warnings (first: {counter.first})")

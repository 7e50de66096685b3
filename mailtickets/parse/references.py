"""Ticket references written by people and mail clients: `[TCK-12]` in subjects, `support+TCK-12@` addresses."""

from __future__ import annotations

import re
from functools import lru_cache

# Reply and forward prefixes of common mail clients, in several languages, possibly repeated or counted.
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|antwort|wg|fw|fwd|tr|rif|odp|ynt|r|réf|ref)(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)


@lru_cache(maxsize=16)
def _subject_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*(\d{1,9})\s*\]", re.IGNORECASE)


@lru_cache(maxsize=16)
def _plus_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"^[^@+]+\+" + re.escape(prefix) + r"(\d{1,9})@", re.IGNORECASE)


def subject_ticket_numbers(subject: str, prefix: str) -> list[int]:
    """Ticket numbers tagged in a subject, first first: "RE: AW: [TCK-12] Printer" → [12]."""
    return [int(n) for n in _subject_pattern(prefix).findall(subject)]


def plus_address_numbers(addresses: tuple[str, ...], prefix: str) -> list[int]:
    """Ticket numbers from plus-addressed recipients: support+TCK-12@helpdesk.example → [12]."""
    numbers = []
    for address in addresses:
        match = _plus_pattern(prefix).match(address)
        if match:
            numbers.append(int(match.group(1)))
    return numbers


def clean_subject(subject: str, prefix: str) -> str:
    """A subject for a new ticket: reply/forward prefixes and our own tags removed."""
    subject = _subject_pattern(prefix).sub("", subject)
    return " ".join(_REPLY_PREFIX.sub("", subject).split())

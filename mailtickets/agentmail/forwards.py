"""The original of a forwarded mail: an attached message/rfc822, or the header block mail clients write.

Outlook (``-----Original Message-----`` or a ruled line, then ``From:/Sent:/To:/Subject:``), Gmail
(``---------- Forwarded message ---------``), Apple Mail (``Begin forwarded message:``) and Thunderbird
(``-------- Forwarded Message --------``), in English and German.  Pure: the addresses are read with the
stdlib address parser, an attached message with our own parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.parser import UnparseableMessage, parse_message

_MARKER = re.compile(
    r"""^\s*(?:
        -{4,}\s*(?:forwarded\ message|original\ message|weitergeleitete\ nachricht|ursprüngliche\ nachricht
                 |message\ transféré|message\ d'origine)\s*-{4,}
      | begin\ forwarded\ message:
      | anfang\ der\ weitergeleiteten\ nachricht:
      | _{10,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_HEADER = re.compile(r"^\s*\**(?P<name>[A-Za-zÀ-ÿ -]{2,20}?)\**\s*:\**\s*(?P<value>.*)$")
_FROM_NAMES = frozenset({"from", "von", "de", "van"})
_SUBJECT_NAMES = frozenset({"subject", "betreff", "objet", "onderwerp"})
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]", re.IGNORECASE)  # Outlook: Alice Able [mailto:alice@…]
_QUOTED = re.compile(r"^>[ ]?")
MAX_HEADER_LINES = 12


@dataclass(frozen=True, slots=True)
class Forwarded:
    sender: str  # the original sender's address, lower-cased
    sender_name: str
    subject: str
    text: str  # what the original sender wrote


def forwarded_original(parsed: ParsedMessage) -> Forwarded | None:
    """The first forwarded original in the mail: an attached message first, then an inline block."""
    return _attached(parsed) or _inline(parsed.text)


def _attached(parsed: ParsedMessage) -> Forwarded | None:
    for attachment in parsed.attachments:
        if attachment.content_type.lower() != "message/rfc822":
            continue
        try:
            inner = parse_message(attachment.payload)
        except UnparseableMessage:
            continue
        if inner.sender:
            return Forwarded(inner.sender, inner.sender_name, inner.subject, inner.text.strip())
    return None


def _inline(text: str) -> Forwarded | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        quoted = _QUOTED.match(line)  # Apple Mail quotes a plain-text forward: "> Begin forwarded message:"
        if _MARKER.match(line[quoted.end() :] if quoted else line):
            rest = [_QUOTED.sub("", later, count=1) for later in lines[index + 1 :]] if quoted else lines[index + 1 :]
            found = _header_block(rest, 0)
            if found is not None:
                return found
    return None


def _header_block(lines: list[str], start: int) -> Forwarded | None:
    """The ``Name: value`` lines after a marker (a blank line before them allowed), then the text."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    fields: dict[str, str] = {}
    while index < len(lines) and len(fields) < MAX_HEADER_LINES:
        match = _HEADER.match(lines[index])
        if match is None:
            break
        fields.setdefault(match.group("name").strip().lower(), match.group("value").strip())
        index += 1
    sender = next((fields[name] for name in fields if name in _FROM_NAMES), None)
    address, name = _address(sender) if sender else ("", "")
    if not address:
        return None
    subject = next((fields[name] for name in fields if name in _SUBJECT_NAMES), "")
    return Forwarded(address, name, subject, "\n".join(lines[index:]).strip())


def _address(value: str) -> tuple[str, str]:
    value = _MAILTO.sub(lambda m: f"<{m.group(1)}>", value.replace("*", ""))
    pairs = [(name, addr) for name, addr in getaddresses([value]) if "@" in addr]
    if len(pairs) != 1:
        return "", ""
    name, address = pairs[0]
    return address.strip().lower(), name.strip().strip('"')

"""The From mailbox, parsed once and correctly: the addr-spec of its mailbox, never an address in its name.

The address list is parsed first (stdlib's RFC 5322 parser, on the raw value: an encoded word cannot
add a comma or an angle bracket), and only then is each display name decoded. A From that holds
several mailboxes, or whose display name holds another address, is read as its real address only; the
ambiguity is recorded so that people and logs can see it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import _header_value_parser as rfc5322  # the parser behind email.headerregistry
from email.errors import HeaderParseError

# An addr-spec written where a display name belongs, e.g. "alice@acme.example" or "<alice@acme.example>".
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"(),;:@]+@[^\s<>\"(),;:@]+\.[^\s<>\"(),;:@]+")
# An unquoted "alice@acme.example <evil@attacker.example>": the angle-addr is the address.
_TRAILING_ANGLE_ADDR = re.compile(r"<\s*([^<>\s\"@]+@[^<>\s\"@]+)\s*>\s*(?:\([^()]*\)\s*)?$")
_EMPTY_BRACKETS = re.compile(r"<\s*>|\(\s*\)|\[\s*\]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# The stdlib parser is quadratic on some shapes (runs of comments: 8,000 characters take seconds); a real
# From is a few hundred characters, several mailboxes included.
MAX_FROM_CHARS = 1000


@dataclass(frozen=True, slots=True)
class FromMailbox:
    address: str | None  # addr-spec, lower-cased; None when From holds no usable mailbox
    name: str  # display name, decoded after parsing; "" when none
    ambiguity: str | None = None  # why this From could mislead a reader; None when it is plain

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] if self.address else ""


def parse_from(values: Sequence[str], decode_name: Callable[[str], str] = str) -> FromMailbox:
    """The mailbox of the From header(s). `decode_name` turns a raw display name into text."""
    mailboxes: list[tuple[str, str]] = []
    notes = []
    for value in values:
        unfolded = _FOLD.sub("", value)
        if len(unfolded) > MAX_FROM_CHARS:
            notes.append(f"From cut to {MAX_FROM_CHARS} characters")
        mailboxes.extend(_mailboxes(unfolded[:MAX_FROM_CHARS]))
    if not mailboxes:
        return FromMailbox(None, "")
    raw_name, address = mailboxes[0]
    name = decode_name(raw_name)
    if len(values) > 1:
        notes.append(f"{len(values)} From headers")
    if len(mailboxes) > 1:
        notes.append(f"{len(mailboxes)} mailboxes in From; only {address} is used")
    named = {a.lower().strip("<>") for a in _ADDRESS_IN_TEXT.findall(name)} - {address}
    if named:
        notes.append(f"display name holds another address ({', '.join(sorted(named))}); {address} is used")
        name = " ".join(_EMPTY_BRACKETS.sub("", _ADDRESS_IN_TEXT.sub("", name)).split()).strip(" ,;")
    return FromMailbox(address, name, "; ".join(notes) or None)


def _mailboxes(value: str) -> list[tuple[str, str]]:
    """(raw display name, lower-cased addr-spec) of each mailbox, groups flattened, unusable ones skipped."""
    try:
        address_list, _rest = rfc5322.get_address_list(value)
    # Besides its own errors, the stdlib parser trips over some malformed input with TypeError,
    # AttributeError or UnboundLocalError (a NameError), and over nested comments with RecursionError.
    # Such a From holds no usable mailbox: the message is quarantined for lack of one.
    except (HeaderParseError, IndexError, ValueError, TypeError, AttributeError, NameError, RecursionError):
        return []
    found = []
    for mailbox in address_list.all_mailboxes:
        parsed = _mailbox(mailbox)
        if parsed is not None and parsed not in found:
            found.append(parsed)
    return found


def _mailbox(token: rfc5322.TokenList) -> tuple[str, str] | None:
    if token.token_type == "invalid-mailbox":  # an InvalidMailbox, or a Mailbox the parser marked invalid
        # An unquoted address before the real one: everything before the angle-addr is the name.
        text = str(token).strip()
        angle = _TRAILING_ANGLE_ADDR.search(text)
        if angle is None:
            return None
        return text[: angle.start()].strip(), angle.group(1).lower()
    if not isinstance(token, rfc5322.Mailbox):
        return None
    address = (token.addr_spec or "").strip().lower()
    if address.count("@") != 1 or " " in address or address.startswith("@") or address.endswith("@"):
        return None
    return _raw_display_name(token), address


def _raw_display_name(mailbox: rfc5322.TokenList) -> str:
    """The display name as written (encoded words still encoded, quotes removed), for `decode_name`."""
    for part in mailbox:
        if isinstance(part, rfc5322.NameAddr):
            for piece in part:
                if isinstance(piece, rfc5322.DisplayName):
                    return _unquoted(str(piece).strip())
    return ""


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text

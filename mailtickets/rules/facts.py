"""What the rules see of one message: the parsed mail plus what sender matching found out."""

from __future__ import annotations

from dataclasses import dataclass

from mailtickets.parse.message import ParsedMessage


@dataclass(frozen=True, slots=True)
class MessageFacts:
    parsed: ParsedMessage
    mailbox: str  # the intake source name the message came in on
    client_name: str | None  # the client sender matching found, None when unknown
    contact_email: str | None  # the matched contact's address, None when unknown
    sender_known: bool
    automatic_reason: str | None  # why the mail counts as auto-generated, None when it does not

"""Never answer a machine: which recipients must not get automatic mail, and how to spot our own mail.

Pure functions over addresses, headers and counts; the counts themselves come from the outbox table
(`outbox.recent_counts`).  Rate limits are sliding windows over automatic mail already queued, per
recipient and per ticket, so two autoresponders cannot ping-pong through us.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailtickets.notify.message import LOOP_HEADER
from mailtickets.notify.msgid import ticket_ref_from_message_id
from mailtickets.settings import Settings

# Local parts of mailboxes that nobody reads or that belong to list and bounce machinery.
_MACHINE_LOCAL = re.compile(
    r"""^(?:
        .*no[-_.]?reply.*
      | .*do[-_.]?not[-_.]?reply.*
      | mailer[-_.]?daemon | postmaster | mail[-_.]?daemon
      | bounces?(?:[-+_.].*)?
      | .*-bounces?(?:\+.*)?
      | listserv | majordomo | owner-.* | .*-request | .*-owner
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def is_machine_address(address: str) -> bool:
    local = address.rpartition("@")[0]
    return bool(_MACHINE_LOCAL.match(local))


def own_addresses(settings: Settings) -> frozenset[str]:
    notes = [settings.note_address] if settings.note_address else []
    return frozenset(a.lower() for a in [settings.support_address, *settings.own_addresses, *notes])


def is_own_mailbox(address: str, settings: Settings) -> bool:
    """Our support address or an alias, also plus-addressed (support+TCK-1@…). Agents may share our domain."""
    local, _, domain = address.partition("@")
    unplussed = f"{local.partition('+')[0]}@{domain}"
    return is_own_address(address, settings, include_domain=False) or is_own_address(
        unplussed, settings, include_domain=False
    )


def is_own_address(address: str, settings: Settings, *, include_domain: bool) -> bool:
    """Our support mailbox and aliases; with include_domain, anything at our Message-ID domain too.

    Internal mail (agents, the distribution list) does not use the domain rule: agents usually share
    the company's domain with the support mailbox.
    """
    address = address.lower()
    if address in own_addresses(settings):
        return True
    return include_domain and address.rpartition("@")[2] == settings.own_message_id_domain.lower()


def suppression_reason(address: str, settings: Settings, *, automatic: bool, internal: bool) -> str | None:
    """Why no mail may go to `address`, or None when it may."""
    if "@" not in address:
        return "not an email address"
    if is_own_address(address, settings, include_domain=not internal):
        return "own address (mail loop)"
    if automatic and is_machine_address(address):
        return "no-reply or machine address"
    return None


@dataclass(frozen=True, slots=True)
class RecentCounts:
    """Automatic mails queued recently: (short window, long window) per recipient and per ticket."""

    recipient_short: int
    recipient_long: int
    ticket_short: int
    ticket_long: int
    recipient_ticket_short: int = 0  # to this recipient about this ticket only
    recipient_ticket_long: int = 0


def internal_loop_reason(counts: RecentCounts, settings: Settings) -> str | None:
    """Agents and the distribution list get every alert across tickets; only a run of alerts about ONE
    ticket is held, which is what an agent's autoresponder answering a client's autoresponder produces."""
    short, long_ = settings.auto_mail_limit_short, settings.auto_mail_limit_long
    if counts.recipient_ticket_short >= short or counts.recipient_ticket_long >= long_:
        return "rate limit per recipient and ticket (an automatic loop on one ticket)"
    return None


def rate_limit_reason(counts: RecentCounts, settings: Settings) -> str | None:
    short, long_ = settings.auto_mail_limit_short, settings.auto_mail_limit_long
    if counts.recipient_short >= short or counts.recipient_long >= long_:
        return "rate limit per recipient"
    if counts.ticket_short >= short or counts.ticket_long >= long_:
        return "rate limit per ticket"
    return None


def is_own_mail(headers: Mapping[str, Sequence[str]], settings: Settings) -> bool:
    """True for mail we sent ourselves coming back (a loop): drop it, never make it a ticket.

    `headers` maps lower-case header names to their values (ParsedMessage.headers).  Ours carries
    ``X-Loop: <support address>`` and a Message-ID signed with our secret on our domain.
    """
    loops = {v.strip().lower() for v in headers.get(LOOP_HEADER.lower(), ())}
    if loops & own_addresses(settings):
        return True
    for message_id in headers.get("message-id", ()):
        ref = ticket_ref_from_message_id(message_id, settings.secret_key, settings.own_message_id_domain)
        if ref is not None:
            return True
    return False

"""Which ticket a message belongs to, and whether its sender may write into it.

Threading, strongest first: In-Reply-To/References naming one of our signed Message-IDs, then another
Message-ID we sent, then one stored on a ticket; then a `[TCK-12]` tag in the subject; then
plus-addressing. A Message-ID stored on more than one ticket, or on a ticket of another client than
the sender's, is not used: anyone can reuse a Message-ID they have seen.

Threading only finds the ticket; it grants no right to write. Who may write is `may_write`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.db import RowLoader
from mailtickets.match.sender import SenderMatch
from mailtickets.models import Direction, OutboxMail, Ticket, TicketMessage
from mailtickets.notify.msgid import ticket_ref_from_message_id
from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.references import plus_address_numbers, subject_ticket_numbers
from mailtickets.settings import Settings

ThreadedBy = Literal["headers", "subject", "plus-address"]
MAX_MERGE_HOPS = 20
MAX_REFERENCE_IDS = 50  # the newest References entries are enough to thread; long chains are cut
# Built once (statements on every reply's path): building one costs more than running it.
_TICKET_BY_NUMBER = RowLoader(
    Ticket,
    Ticket.prefix == bindparam("prefix"),
    Ticket.number == bindparam("number"),
    joined=("contact", "assigned_agent", "client"),  # the client last: the contact's own client is then held
)
_TICKET_ID_BY_NUMBER = select(Ticket.id).where(
    Ticket.prefix == bindparam("prefix"), Ticket.number == bindparam("number")
)
_CLIENT_OF_TICKET = select(Ticket.client_id).where(Ticket.id == bindparam("ticket_id"))
_SENT_BY_OUTBOX = select(OutboxMail.message_id, OutboxMail.ticket_id).where(
    OutboxMail.message_id.in_(bindparam("ids", expanding=True)), OutboxMail.ticket_id.is_not(None)
)
_SENT_AS_MESSAGE = select(TicketMessage.message_id, TicketMessage.ticket_id).where(
    TicketMessage.message_id.in_(bindparam("ids", expanding=True)), TicketMessage.direction == Direction.OUTBOUND
)
_STORED = select(TicketMessage.message_id, TicketMessage.ticket_id).where(
    TicketMessage.message_id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    ticket: Ticket
    threaded_by: ThreadedBy


async def find_thread(
    session: AsyncSession, parsed: ParsedMessage, settings: Settings, sender: SenderMatch | None = None
) -> ThreadMatch | None:
    ticket_id = await _ticket_by_headers(session, header_ids(parsed), settings, sender)
    if ticket_id is not None:
        return ThreadMatch(await follow_merges(session, await session.get_one(Ticket, ticket_id)), "headers")
    prefix = settings.ticket_prefix
    for numbers, threaded_by in (
        (subject_ticket_numbers(parsed.subject, prefix), "subject"),
        (plus_address_numbers(parsed.to + parsed.cc + parsed.delivered_to, prefix), "plus-address"),
    ):
        for number in numbers:
            found = await _TICKET_BY_NUMBER.first(session, {"prefix": prefix, "number": number})
            if found is not None:
                return ThreadMatch(await follow_merges(session, found), threaded_by)  # type: ignore[arg-type]
    return None


def header_ids(parsed: ParsedMessage) -> list[str]:
    """The Message-IDs a message answers, strongest first: In-Reply-To, then References newest first."""
    return list(dict.fromkeys(parsed.in_reply_to + tuple(reversed(parsed.references[-MAX_REFERENCE_IDS:]))))


async def _ticket_by_headers(
    session: AsyncSession, ids: list[str], settings: Settings, sender: SenderMatch | None
) -> int | None:
    if not ids:
        return None
    client_id = sender.client_id if sender is not None and sender.known else None
    for lookup in (_tickets_by_signed_id, _tickets_we_sent, _tickets_stored):
        for candidates in await lookup(session, ids, settings):
            usable = await _usable(session, candidates, client_id)
            if usable is not None:
                return usable
    return None


async def _usable(session: AsyncSession, ticket_ids: set[int], client_id: int | None) -> int | None:
    """One ticket for one Message-ID, and not another client's; else the id is not evidence of anything."""
    if len(ticket_ids) != 1:
        return None
    (ticket_id,) = ticket_ids
    if client_id is not None:
        ticket_client = await session.scalar(_CLIENT_OF_TICKET, {"ticket_id": ticket_id})
        if ticket_client is not None and ticket_client != client_id:
            return None
    return ticket_id


async def _tickets_by_signed_id(session: AsyncSession, ids: list[str], settings: Settings) -> list[set[int]]:
    """Our Message-IDs carry the ticket reference with an HMAC: they thread even if our records were lost."""
    found: list[set[int]] = []
    for message_id in ids:
        number = _signed_ticket_number(message_id, settings)
        if number is not None:
            ticket_id = await session.scalar(_TICKET_ID_BY_NUMBER, {"prefix": settings.ticket_prefix, "number": number})
            if ticket_id is not None:
                found.append({ticket_id})
    return found


def _signed_ticket_number(message_id: str, settings: Settings) -> int | None:
    reference = ticket_ref_from_message_id(message_id, settings.secret_key, settings.own_message_id_domain)
    if reference and reference.startswith(settings.ticket_prefix):
        number = reference[len(settings.ticket_prefix) :]
        if number.isdigit():
            return int(number)
    return None


async def _tickets_we_sent(session: AsyncSession, ids: list[str], settings: Settings) -> list[set[int]]:
    rows = await session.execute(_SENT_BY_OUTBOX, {"ids": ids})
    outbound = await session.execute(_SENT_AS_MESSAGE, {"ids": ids})
    return _by_id(ids, [*rows, *outbound])


async def _tickets_stored(session: AsyncSession, ids: list[str], settings: Settings) -> list[set[int]]:
    rows = await session.execute(_STORED, {"ids": ids})
    return _by_id(ids, list(rows))


def _by_id(ids: list[str], rows: list[tuple[str | None, int | None]]) -> list[set[int]]:
    """The tickets each Message-ID is stored on, in the order of `ids`."""
    tickets: dict[str, set[int]] = {}
    for message_id, ticket_id in rows:
        if message_id is not None and ticket_id is not None:
            tickets.setdefault(message_id, set()).add(ticket_id)
    return [tickets[i] for i in ids if i in tickets]


async def follow_merges(session: AsyncSession, ticket: Ticket) -> Ticket:
    """Mail for a merged ticket lands on the ticket it was merged into."""
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into_id is None:
            break
        ticket = await session.get_one(Ticket, ticket.merged_into_id)
    return ticket

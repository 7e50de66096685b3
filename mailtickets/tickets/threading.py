"""Which ticket a message belongs to, and whether its sender may write into it.

Threading, strongest first: In-Reply-To/References naming a Message-ID stored on a ticket (inbound or
sent by us), or one of our signed Message-IDs; then a `[TCK-12]` tag in the subject; then
plus-addressing. Header matches prove the sender saw the thread; the others must be checked against
who the sender is (a ticket number alone is easy to guess).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.match.sender import SenderMatch
from mailtickets.models import OutboxMail, Ticket, TicketMessage
from mailtickets.notify.msgid import ticket_ref_from_message_id
from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.references import plus_address_numbers, subject_ticket_numbers
from mailtickets.settings import Settings

ThreadedBy = Literal["headers", "subject", "plus-address"]
MAX_MERGE_HOPS = 20
MAX_REFERENCE_IDS = 50  # the newest References entries are enough to thread; long chains are cut


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    ticket: Ticket
    threaded_by: ThreadedBy

    @property
    def proven(self) -> bool:
        return self.threaded_by == "headers"


async def find_thread(session: AsyncSession, parsed: ParsedMessage, settings: Settings) -> ThreadMatch | None:
    ticket_id = await _ticket_by_headers(session, parsed, settings)
    if ticket_id is not None:
        return ThreadMatch(await _follow_merges(session, await session.get_one(Ticket, ticket_id)), "headers")
    prefix = settings.ticket_prefix
    for numbers, threaded_by in (
        (subject_ticket_numbers(parsed.subject, prefix), "subject"),
        (plus_address_numbers(parsed.to + parsed.cc + parsed.delivered_to, prefix), "plus-address"),
    ):
        for number in numbers:
            found = await session.scalar(select(Ticket).where(Ticket.prefix == prefix, Ticket.number == number))
            if found is not None:
                return ThreadMatch(await _follow_merges(session, found), threaded_by)  # type: ignore[arg-type]
    return None


async def _ticket_by_headers(session: AsyncSession, parsed: ParsedMessage, settings: Settings) -> int | None:
    ids = list(dict.fromkeys(parsed.in_reply_to + parsed.references[-MAX_REFERENCE_IDS:]))
    if not ids:
        return None
    stored = await session.scalar(
        select(TicketMessage.ticket_id).where(TicketMessage.message_id.in_(ids)).order_by(TicketMessage.id.desc())
    )
    if stored is not None:
        return stored
    sent = await session.scalar(
        select(OutboxMail.ticket_id).where(OutboxMail.message_id.in_(ids), OutboxMail.ticket_id.is_not(None))
    )
    if sent is not None:
        return sent
    return await _ticket_by_signed_id(session, ids, settings)


async def _ticket_by_signed_id(session: AsyncSession, ids: list[str], settings: Settings) -> int | None:
    """Our Message-IDs carry the ticket reference with an HMAC: they thread even if our records were lost."""
    domain = settings.own_message_id_domain
    for message_id in ids:
        reference = ticket_ref_from_message_id(message_id, settings.secret_key, domain)
        if reference and reference.startswith(settings.ticket_prefix):
            number = reference[len(settings.ticket_prefix) :]
            if number.isdigit():
                found = await session.scalar(
                    select(Ticket.id).where(Ticket.prefix == settings.ticket_prefix, Ticket.number == int(number))
                )
                if found is not None:
                    return found
    return None


async def _follow_merges(session: AsyncSession, ticket: Ticket) -> Ticket:
    """Mail for a merged ticket lands on the ticket it was merged into."""
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into_id is None:
            break
        ticket = await session.get_one(Ticket, ticket.merged_into_id)
    return ticket


async def may_write(session: AsyncSession, match: ThreadMatch, sender: SenderMatch) -> bool:
    """Its contact, its client's people and domains, earlier participants, or proof by headers."""
    ticket = match.ticket
    if match.proven:
        return True
    if sender.contact is not None and sender.contact.id == ticket.contact_id:
        return True
    if ticket.client_id is not None and sender.client_id == ticket.client_id:
        return True
    return sender.address in await participants(session, ticket.id)


async def participants(session: AsyncSession, ticket_id: int) -> set[str]:
    rows = await session.execute(
        select(TicketMessage.author_email, TicketMessage.to_addresses, TicketMessage.cc_addresses).where(
            TicketMessage.ticket_id == ticket_id
        )
    )
    found: set[str] = set()
    for author, to, cc in rows:
        if author:
            found.add(author.lower())
        found.update(str(a).lower() for a in [*(to or []), *(cc or [])])
    return found

"""The life of a ticket after it is opened: assignment, status, replies and notes, merging, priority.

The CLI and the HTTP API call these inside one transaction; each returns the events that happened,
and the caller hands them to `notify.outbox.enqueue_notifications` in the same transaction, so a
notification exists if and only if the change was committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.errors import Conflict, InvalidInput, NotFound
from mailtickets.models import Agent, AuthorRole, Direction, Priority, Ticket, TicketMessage, TicketStatus
from mailtickets.settings import Settings
from mailtickets.tickets.events import AgentReplied, TicketAssigned, TicketClosed, TicketEvent, TicketMerged
from mailtickets.tickets.service import ticket_by_reference

_OPEN_STATES = {TicketStatus.OPEN, TicketStatus.WORKING, TicketStatus.HOLD, TicketStatus.AUTO_CLOSE}
# Any open state may move to any other or be closed; a closed ticket can only be reopened.
ALLOWED_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    **{s: frozenset((_OPEN_STATES - {s}) | {TicketStatus.CLOSED}) for s in _OPEN_STATES},
    TicketStatus.CLOSED: frozenset({TicketStatus.OPEN}),
}


def client_answered(ticket: Ticket) -> None:
    """The client wrote: a ticket in auto-close or on hold goes back to open, and any countdown ends."""
    if ticket.status in (TicketStatus.AUTO_CLOSE, TicketStatus.HOLD):
        ticket.status = TicketStatus.OPEN
    ticket.autoclose_since = None
    ticket.chaser_sent_at = None


def may_reopen(settings: Settings, ticket: Ticket, now: datetime) -> bool:
    """Whether a reply to this closed ticket reopens it (setting reopen_policy), for mail and agents alike."""
    policy = settings.reopen_policy
    if policy == "always-reopen":
        return True
    if policy == "new-linked":
        return False
    if ticket.closed_at is None:
        return True
    return now - ticket.closed_at <= timedelta(days=settings.reopen_window_days)


def parse_status(value: str) -> TicketStatus:
    try:
        return TicketStatus(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in TicketStatus)
        raise InvalidInput(f"unknown status {value!r}", {"status": f"one of {choices}"}) from None


def parse_priority(value: str) -> Priority:
    try:
        return Priority(value.strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in Priority)
        raise InvalidInput(f"unknown priority {value!r}", {"priority": f"one of {choices}"}) from None


async def _ticket(session: AsyncSession, settings: Settings, ref: str) -> Ticket:
    ticket = await ticket_by_reference(session, ref, settings.ticket_prefix)
    if ticket.merged_into_id is not None:
        target = await session.get(Ticket, ticket.merged_into_id)
        raise Conflict(f"{ticket.reference} was merged into {target.reference if target else '?'}")
    return ticket


async def _agent(session: AsyncSession, email: str) -> Agent:
    agent = await session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    if agent is None or not agent.active:
        raise NotFound(f"no active agent {email}")
    return agent


async def assign(
    session: AsyncSession, settings: Settings, now: datetime, ref: str, agent_email: str
) -> list[TicketEvent]:
    ticket = await _ticket(session, settings, ref)
    agent = await _agent(session, agent_email)
    previous = ticket.assigned_agent_id
    if previous == agent.id:
        return []
    ticket.assigned_agent = agent  # the relationship, not only the id: notifications read it
    return [TicketAssigned(ticket.id, agent.id, previous)]


def _close(ticket: Ticket, now: datetime) -> None:
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    ticket.autoclose_since = None
    ticket.chaser_sent_at = None


async def set_status(
    session: AsyncSession, settings: Settings, now: datetime, ref: str, status: TicketStatus | str
) -> list[TicketEvent]:
    wanted = parse_status(status) if isinstance(status, str) else status
    ticket = await _ticket(session, settings, ref)
    if ticket.status == wanted:
        return []
    if wanted not in ALLOWED_TRANSITIONS[ticket.status]:
        raise Conflict(f"{ticket.reference} is {ticket.status.value}: cannot become {wanted.value}")
    if wanted == TicketStatus.CLOSED:
        _close(ticket, now)
        return [TicketClosed(ticket.id)]
    ticket.status = wanted
    ticket.closed_at = None
    ticket.autoclose_since = now if wanted == TicketStatus.AUTO_CLOSE else None
    ticket.chaser_sent_at = None
    return []


async def close(session: AsyncSession, settings: Settings, now: datetime, ref: str) -> list[TicketEvent]:
    ticket = await _ticket(session, settings, ref)
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict(f"{ticket.reference} is already closed")
    _close(ticket, now)
    return [TicketClosed(ticket.id)]


async def reply(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    ref: str,
    body: str,
    *,
    private: bool,
    agent_email: str | None = None,
) -> list[TicketEvent]:
    """An agent's public reply (mailed to the client) or private note (kept on the ticket only).

    Without `agent_email` the ticket's assigned agent is the author, or the support team if none.
    """
    if not body.strip():
        raise InvalidInput("empty reply", {"body": "must not be empty"})
    ticket = await _ticket(session, settings, ref)
    agent = await _agent(session, agent_email) if agent_email else ticket.assigned_agent
    if not private:
        _check_reply_reaches_someone(settings, ticket)
    if ticket.status == TicketStatus.CLOSED:
        _reopen_for_reply(settings, ticket, now)
    message = TicketMessage(
        ticket_id=ticket.id,
        direction=Direction.OUTBOUND,
        public=not private,
        author_name=agent.name if agent else "Support",
        author_email=agent.email if agent else settings.support_address,
        agent_id=agent.id if agent else None,
        author_role=AuthorRole.AGENT,
        body_text=body,
        body_text_new=body,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return [] if private else [AgentReplied(ticket.id, message.id)]


def _check_reply_reaches_someone(settings: Settings, ticket: Ticket) -> None:
    contact = ticket.contact
    if contact is None or not contact.email:
        raise InvalidInput(
            f"{ticket.reference} has no contact to mail a public reply to: set its contact, or add a private note",
            {"private": "a public reply needs a contact with an email address"},
        )
    if not settings.notify_client_on_agent_reply:
        raise InvalidInput(
            "public replies are not mailed (notify_client_on_agent_reply is off): add a private note instead",
            {"private": "a public reply would reach nobody"},
        )


def _reopen_for_reply(settings: Settings, ticket: Ticket, now: datetime) -> None:
    """A reply on a closed ticket follows reopen_policy, as a client's mail does."""
    if not may_reopen(settings, ticket, now):
        raise Conflict(
            f"{ticket.reference} is closed and reopen_policy ({settings.reopen_policy}) does not reopen it: "
            "open a new ticket"
        )
    ticket.status = TicketStatus.OPEN
    ticket.closed_at = None


async def merge(
    session: AsyncSession, settings: Settings, now: datetime, source_ref: str, into_ref: str
) -> list[TicketEvent]:
    """Move the source's messages to the target and close the source with a pointer to it.

    Later mail that references the source lands on the target: threading follows merged_into_id.
    The source's client is told where the request continues (TicketMerged).
    """
    source = await _ticket(session, settings, source_ref)
    target = await _ticket(session, settings, into_ref)
    if source.id == target.id:
        raise InvalidInput("a ticket cannot be merged into itself", {"into": "must differ from the source"})
    moved = (
        await session.scalars(
            update(TicketMessage)
            .where(TicketMessage.ticket_id == source.id)
            .values(ticket_id=target.id)
            .returning(TicketMessage.id)
            .execution_options(synchronize_session="fetch")
        )
    ).all()
    _close(source, now)
    source.merged_into_id = target.id
    return [TicketMerged(source.id, target.id, tuple(sorted(moved)))]


async def set_priority(
    session: AsyncSession, settings: Settings, now: datetime, ref: str, priority: Priority | str
) -> list[TicketEvent]:
    ticket = await _ticket(session, settings, ref)
    ticket.priority = parse_priority(priority) if isinstance(priority, str) else priority
    return []

"""One mail from an agent's address, inside the pipeline's transaction.

Refused (quarantined, the agent told why) unless authenticated as `agent_mail_requires` says; automatic
mail dropped; then a reply or a private note on the ticket it threads to, with its `#commands` applied
in one savepoint (all or none); or, threading nowhere, a new ticket for the client it forwards or names.
Mail that only pretends to be an agent's (the address in the display name, a lookalike domain) is
quarantined and the real agent told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.agentmail.apply import apply_commands
from mailtickets.agentmail.commands import CommandError, Commands, parse_commands
from mailtickets.agentmail.forwards import Forwarded, forwarded_original
from mailtickets.agentmail.identity import AgentProof, agent_signed_refs, impersonated
from mailtickets.agentmail.store import agent_addresses
from mailtickets.clock import Clock
from mailtickets.match.sender import match_sender
from mailtickets.models import Agent, AuthorRole, Contact, Outcome, Ticket, TicketMessage
from mailtickets.notify.guard import is_own_mailbox
from mailtickets.parse.automatic import automatic_reason
from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.references import clean_subject
from mailtickets.parse.text import strip_quoted
from mailtickets.settings import Settings
from mailtickets.storage import FileStore
from mailtickets.tickets.events import AgentMailRefused, AgentReplied, NoteAdded, TicketCreated, TicketEvent
from mailtickets.tickets.lifecycle import client_answered
from mailtickets.tickets.service import NewTicket, create_ticket, inbound_message, store_attachments
from mailtickets.tickets.threading import find_thread, follow_merges, header_ids
from mailtickets.trust.authres import SenderAuth

MAX_DESCRIPTION_CHARS = 100_000
_OWN_LINE = "mailtickets-agent-text"


class MailContext(Protocol):
    """What the pipeline hands over (its decision Context)."""

    @property
    def session(self) -> AsyncSession: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def files(self) -> FileStore: ...
    @property
    def parsed(self) -> ParsedMessage: ...
    @property
    def sender_auth(self) -> SenderAuth: ...


@dataclass(slots=True)
class AgentDecision:
    outcome: Outcome
    reason: str
    ticket: Ticket | None = None
    message: TicketMessage | None = None
    make_events: Callable[[], list[TicketEvent]] = list
    author_role: AuthorRole | None = None


async def agent_mail(context: MailContext, *, vouched: bool = False) -> AgentDecision | None:
    """The decision for mail from (or posing as) an agent; None for anybody else's mail.

    `vouched`: an admin releases it from quarantine, so it needs no proof and is not checked for posing.
    """
    parsed, session = context.parsed, context.session
    sender = parsed.sender or ""
    agents = await agent_addresses(session)
    if sender not in agents:
        return None if vouched else await _posing(context, agents)
    agent = await session.get_one(Agent, agents[sender])
    automatic = automatic_reason(parsed)
    if automatic and not vouched:
        return AgentDecision(Outcome.DROPPED, f"automatic mail from agent {sender} ({automatic})")
    thread = await find_thread(session, parsed, context.settings)
    ticket = thread.ticket if thread is not None else None
    if not vouched and not (await _proof(context, agent, ticket)).satisfies(context.settings.agent_mail_requires):
        return _refused(context, agent, f"unauthenticated mail from agent {sender}")
    try:
        commands = parse_commands(parsed.text)
    except CommandError as exc:
        return _refused(context, agent, f"agent command refused: {exc}")
    if ticket is not None:
        return await _on_ticket(context, agent, ticket, commands)
    return await _new_ticket(context, agent, commands, set(agents))


async def _proof(context: MailContext, agent: Agent, ticket: Ticket | None) -> AgentProof:
    auth = context.sender_auth
    signed = ticket is not None and await _signed_for(context, agent, ticket)
    return AgentProof(dmarc=auth.dmarc == "pass" or auth.dkim_aligned_pass, signed_reply=signed)


async def _signed_for(context: MailContext, agent: Agent, ticket: Ticket) -> bool:
    """A Message-ID we signed for this agent about this ticket, or about one since merged into it: the
    agent answers a mail from before the merge, and threading lands the answer on the surviving ticket."""
    parsed, settings = context.parsed, context.settings
    refs = agent_signed_refs(header_ids(parsed), agent.id, settings.secret_key, settings.own_message_id_domain)
    if ticket.reference in refs:
        return True
    for ref in refs:
        number = ref.removeprefix(settings.ticket_prefix)
        if ref == number or not number.isdigit():
            continue
        signed = await context.session.scalar(
            select(Ticket).where(Ticket.prefix == settings.ticket_prefix, Ticket.number == int(number))
        )
        if signed is None or signed.merged_into_id is None:
            continue
        if (await follow_merges(context.session, signed)).id == ticket.id:
            return True
    return False


async def _posing(context: MailContext, agents: dict[str, int]) -> AgentDecision | None:
    parsed = context.parsed
    posing = impersonated(parsed.sender or "", parsed.header("from") or "", agents)
    if posing is None:
        return None
    if posing.how == "lookalike domain" and (await match_sender(context.session, parsed.sender or "")).known:
        return None  # info@acme.example is a client of the agent info@acme-it.example, not a lookalike
    agent = await context.session.get_one(Agent, agents[posing.agent_address])
    reason = f"mail from {parsed.sender} posing as agent {posing.agent_address} ({posing.how})"
    return _refused(context, agent, reason)


def _refused(context: MailContext, agent: Agent, reason: str) -> AgentDecision:
    """Quarantined (nothing is lost: an admin may release it), and the agent told why (rate-limited)."""
    parsed = context.parsed
    refusal = AgentMailRefused(agent.id, reason, parsed.subject[:200] or "(no subject)", parsed.message_id)
    return AgentDecision(Outcome.QUARANTINED, reason, make_events=lambda: [refusal])


def is_note(commands: Commands, parsed: ParsedMessage, settings: Settings) -> bool:
    note_address = (settings.note_address or "").lower()
    return commands.is_note or (bool(note_address) and note_address in (*parsed.to, *parsed.cc, *parsed.delivered_to))


async def _on_ticket(context: MailContext, agent: Agent, ticket: Ticket, commands: Commands) -> AgentDecision:
    """A reply (mailed to the client) or a private note, then the commands; all of it or, on a bad command, none."""
    session, settings = context.session, context.settings
    text = new_text(commands.text)
    note = is_note(commands, context.parsed, settings)
    try:
        async with session.begin_nested():
            message = _message(context, ticket, agent, text or _summary(commands), public=bool(text) and not note)
            await session.flush()
            if message.public:  # a reply ends a wait as a client's does: on hold or in auto-close, open again
                client_answered(ticket)
            events = await apply_commands(session, settings, context.clock.now(), ticket, agent, commands.actions)
    except CommandError as exc:
        return _refused(context, agent, f"agent command refused: {exc}")
    first: list[TicketEvent] = []
    if message.public:
        first = [AgentReplied(ticket.id, message.id)]
    elif text:
        first = [NoteAdded(ticket.id, message.id, agent.id)]
    reason = _reason(commands, "agent note" if note else "agent reply", bool(text))
    decision = AgentDecision(Outcome.REPLIED, reason, ticket, message, lambda: first + events, AuthorRole.AGENT)
    return decision


def new_text(text: str) -> str:
    """What the agent wrote above the quoted history; "" when the mail is only commands and a quote.

    `strip_quoted` keeps the whole text when nothing new is left (right for a client's mail, which must
    never become empty); a line of our own in front tells "only a quote" apart.
    """
    stripped = strip_quoted(f"{_OWN_LINE}\n\n{text}")
    return stripped.removeprefix(_OWN_LINE).strip() if stripped.startswith(_OWN_LINE) else stripped


def _summary(commands: Commands) -> str:
    return ", ".join(str(c) for c in commands.commands)


def _reason(commands: Commands, kind: str, has_text: bool) -> str:
    applied = f"commands applied: {', '.join(str(c) for c in commands.actions)}" if commands.actions else ""
    if has_text:
        return f"{kind}; {applied}" if applied else kind
    return applied or "agent mail without text or commands, kept as a private note"


def _message(context: MailContext, ticket: Ticket, agent: Agent, new_text: str, *, public: bool) -> TicketMessage:
    message = inbound_message(context.parsed, ticket, new_text, None, context.clock.now())
    message.agent_id, message.author_role, message.public = agent.id, AuthorRole.AGENT, public
    message.author_name = agent.name
    store_attachments(message, context.parsed, context.files)
    context.session.add(message)
    return message


@dataclass(frozen=True, slots=True)
class _Opening:
    """Who a new ticket opened by an agent is for, and what it says."""

    address: str
    name: str
    subject: str
    description: str
    forwarded: bool


def _opening(context: MailContext, commands: Commands, agents: set[str]) -> _Opening | None:
    parsed, settings = context.parsed, context.settings
    subject = clean_subject(parsed.subject, settings.ticket_prefix)
    forward: Forwarded | None = forwarded_original(parsed) if settings.agent_forward_as_client else None
    if forward is not None and forward.sender not in agents and not is_own_mailbox(forward.sender, settings):
        return _Opening(forward.sender, forward.sender_name, forward.subject or subject, forward.text, True)
    for address in (*parsed.to, *parsed.cc):
        if address not in agents and not is_own_mailbox(address, settings):
            return _Opening(address, "", subject, commands.text.strip(), False)
    return None


async def _new_ticket(context: MailContext, agent: Agent, commands: Commands, agents: set[str]) -> AgentDecision:
    opening = _opening(context, commands, agents)
    if opening is None:
        sender = context.parsed.sender
        return _refused(context, agent, f"mail from agent {sender} names no client to open a ticket for")
    session, now = context.session, context.clock.now()
    try:
        async with session.begin_nested():
            ticket, message = await _open(context, agent, opening)
            events = await apply_commands(session, context.settings, now, ticket, agent, commands.actions)
    except CommandError as exc:
        return _refused(context, agent, f"agent command refused: {exc}")
    how = "forwarded" if opening.forwarded else "opened"
    reason = f"{how} by agent {agent.email} for {opening.address}"
    if commands.actions:
        reason += f"; commands applied: {', '.join(str(c) for c in commands.actions)}"
    # A forward's client hears of the ticket; one the agent wrote to directly already has the agent's mail.
    created = TicketCreated(ticket.id, message.id, acknowledge=opening.forwarded)
    return AgentDecision(Outcome.CREATED, reason, ticket, message, lambda: [created, *events], AuthorRole.AGENT)


async def _open(context: MailContext, agent: Agent, opening: _Opening) -> tuple[Ticket, TicketMessage]:
    session, settings, now = context.session, context.settings, context.clock.now()
    contact = await _contact(context, opening.address, opening.name)
    new = NewTicket(
        subject=opening.subject,
        description=opening.description[:MAX_DESCRIPTION_CHARS],
        client_id=contact.client_id,
        contact_id=contact.id,
    )
    ticket = await create_ticket(session, settings.ticket_prefix, new, now)
    ticket.contact, ticket.client, ticket.assigned_agent = contact, contact.client, None
    if opening.forwarded:  # the client's words: their message, brought in by the agent
        message = inbound_message(context.parsed, ticket, opening.description, contact.id, now)
        message.author_email, message.author_name, message.agent_id = opening.address, opening.name or None, agent.id
        store_attachments(message, context.parsed, context.files)
        session.add(message)
    else:
        message = _message(context, ticket, agent, opening.description, public=True)
    await session.flush()
    return ticket, message


async def _contact(context: MailContext, address: str, name: str) -> Contact:
    """The contact with this address, else a new one (of the client owning its domain, if any): the agent vouches."""
    match = await match_sender(context.session, address)
    if match.contact is not None:
        return match.contact
    now = context.clock.now()
    contact = Contact(
        client=match.client,
        name=(name or address.partition("@")[0])[:64],
        email=address,
        created_at=now,
        updated_at=now,
    )
    context.session.add(contact)
    await context.session.flush()
    return contact

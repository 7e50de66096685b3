"""The decisions of the pipeline for one parsed message, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from mailtickets.agentmail.handle import AgentDecision, agent_mail
from mailtickets.clock import Clock
from mailtickets.directory.validation import is_valid_email, normalize_email
from mailtickets.errors import InvalidInput
from mailtickets.match.sender import SenderMatch, match_sender
from mailtickets.models import AuthorRole, Client, Contact, Outcome, Priority, Ticket, TicketMessage, TicketStatus
from mailtickets.notify.guard import is_own_mail, is_own_mailbox
from mailtickets.notify.outbox import enqueue_notifications
from mailtickets.parse.automatic import automatic_reason
from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.quotes import reply_text
from mailtickets.parse.references import clean_subject
from mailtickets.parse.remote import without_remote_resources
from mailtickets.rules.apply import TicketOverrides, resolve
from mailtickets.rules.compile import CompiledRule
from mailtickets.rules.engine import RuleDecision, evaluate
from mailtickets.rules.facts import MessageFacts
from mailtickets.settings import Settings
from mailtickets.storage import FileStore
from mailtickets.tickets.events import ClientReplied, TicketAssigned, TicketCreated, TicketEvent
from mailtickets.tickets.lifecycle import client_answered, may_reopen
from mailtickets.tickets.service import NewTicket, create_ticket, inbound_message, store_attachments
from mailtickets.tickets.threading import ThreadMatch, find_thread, header_ids
from mailtickets.tickets.writers import write_permission
from mailtickets.trust.authres import NO_VERDICT, SenderAuth
from mailtickets.trust.verdict import trusts_sender

MAX_DESCRIPTION_CHARS = 100_000


@dataclass(slots=True)
class Decision:
    outcome: Outcome
    reason: str | None = None
    ticket: Ticket | None = None
    message: TicketMessage | None = None
    # Built after the one flush that writes the message with its inbound record (it gives message.id).
    make_events: Callable[[], list[TicketEvent]] = list
    author_role: AuthorRole | None = None  # whose mail it was taken as; None: from the stored message, if any

    @property
    def reference(self) -> str | None:
        return self.ticket.reference if self.ticket is not None else None


@dataclass(frozen=True, slots=True)
class Context:
    session: AsyncSession
    settings: Settings
    clock: Clock
    files: FileStore
    parsed: ParsedMessage
    source: str
    # The trusted receiving system's verdict on the From address (trust/); NO_VERDICT when none applies.
    sender_auth: SenderAuth = NO_VERDICT
    matched_rules: list[str] = field(default_factory=list)  # filled by decide: the trace records them


async def decide(context: Context, rules: Sequence[CompiledRule]) -> Decision:
    parsed, settings = context.parsed, context.settings
    if parsed.sender is None:
        return Decision(Outcome.QUARANTINED, reason="no usable From address")
    if is_own_mail(parsed.headers, settings) or is_own_sender(parsed.sender, settings):
        return Decision(Outcome.DROPPED, reason=f"our own mail coming back (from {parsed.sender})")
    by_agent = await agent_mail(context)  # an agent's reply, note, commands or forward: agentmail/ decides
    if by_agent is not None:
        return _agents(by_agent)
    automatic = automatic_reason(parsed)
    sender = trusted_match(context, await match_sender(context.session, parsed.sender))
    ruling = evaluate(rules, facts_from(parsed, context.source, sender, automatic)) if rules else None
    context.matched_rules.extend(ruling.matched_rules if ruling is not None else ())
    if ruling is not None and ruling.ends_processing:
        return _ruled_out(ruling)
    if automatic:
        return Decision(Outcome.DROPPED, reason=f"automatic mail ({automatic})")
    overrides = await resolve(context.session, ruling) if ruling is not None else TicketOverrides()
    if overrides.client is not None and not sender.known:
        sender = SenderMatch(sender.address, "domain", contact=sender.contact, client=overrides.client)
    if sender.contact is None and sender.client is not None and not is_valid_email(sender.address):
        # It would become a contact the CLI and API refuse: one address rule for every door.
        return Decision(Outcome.QUARANTINED, reason=f"From address {sender.address!r} is not a valid contact address")
    thread = await find_thread(context.session, parsed, settings, sender)
    if thread is not None:
        return await _threaded(context, thread, sender, overrides)
    if not sender.known:
        outcome = Outcome.DROPPED if settings.unknown_sender == "drop" else Outcome.QUARANTINED
        return Decision(outcome, reason=f"{_unknown(context)} {_who(parsed.sender, sender)} and no ticket reference")
    return await _new_ticket(context, sender, overrides)


def trusted_match(context: Context, sender: SenderMatch) -> SenderMatch:
    """Under `unauthenticated_sender = "unknown"`, a sender the trusted verdict does not authenticate is nobody."""
    if trusts_sender(context.sender_auth, context.settings):
        return sender
    return SenderMatch(sender.address, "unknown")


def _unknown(context: Context) -> str:
    if trusts_sender(context.sender_auth, context.settings):
        return "unknown sender"
    if context.sender_auth.authserv_id is None:
        return "unauthenticated sender (no verdict from a trusted authserv-id)"
    return f"unauthenticated sender (verdict of {context.sender_auth.authserv_id})"


def _who(address: str, sender: SenderMatch) -> str:
    return f"{address} ({sender.why_unknown})" if sender.why_unknown else address


def _agents(made: AgentDecision) -> Decision:
    return Decision(made.outcome, made.reason, made.ticket, made.message, made.make_events, made.author_role)


async def decide_release(context: Context, client: Client | None) -> Decision:
    """An admin vouches for a held message: no sender, rule or automatic-mail checks, optionally a client."""
    parsed = context.parsed
    if parsed.sender is None:
        raise InvalidInput("the message has no From address to open a ticket for", {"sender": "missing"})
    by_agent = await agent_mail(context, vouched=True)  # held agent mail: the admin vouches for the agent
    if by_agent is not None:
        return _agents(by_agent)
    sender = await match_sender(context.session, parsed.sender)
    if client is not None or not sender.known:
        chosen = client or sender.client
        sender = SenderMatch(sender.address, "domain", contact=sender.contact, client=chosen)
    thread = await find_thread(context.session, parsed, context.settings, sender)
    if thread is not None:
        return await _reply(context, thread, sender, TicketOverrides(), "released from quarantine")
    return await _new_ticket(context, sender, TicketOverrides(), note="released from quarantine")


def facts_from(parsed: ParsedMessage, source: str, sender: SenderMatch, automatic: str | None) -> MessageFacts:
    return MessageFacts(
        parsed=parsed,
        mailbox=source,
        client_name=sender.client.name if sender.client is not None else None,
        contact_email=sender.contact.email if sender.contact is not None and sender.known else None,
        sender_known=sender.known,
        automatic_reason=automatic,
    )


async def facts_for(session: AsyncSession, parsed: ParsedMessage, source: str) -> MessageFacts:
    """What the rules would see of this message now (the dry run uses it; it writes nothing)."""
    sender = await match_sender(session, parsed.sender) if parsed.sender else SenderMatch("", "unknown")
    return facts_from(parsed, source, sender, automatic_reason(parsed))


def _ruled_out(ruling: RuleDecision) -> Decision:
    rule = ", ".join(ruling.matched_rules)
    if ruling.quarantine_reason is not None:
        return Decision(Outcome.QUARANTINED, reason=f"rule {rule}: {ruling.quarantine_reason}")
    return Decision(Outcome.DROPPED, reason=f"rule {rule}: {ruling.drop_reason}")


async def _threaded(context: Context, thread: ThreadMatch, sender: SenderMatch, overrides: TicketOverrides) -> Decision:
    answered = header_ids(context.parsed)
    trusted = trusts_sender(context.sender_auth, context.settings)
    ticket = thread.ticket
    why = await write_permission(context.session, ticket, sender, answered, context.settings, trusted)
    if why is not None:
        return await _reply(context, thread, sender, overrides, why)
    if not sender.known:
        return Decision(
            Outcome.QUARANTINED,
            reason=f"{_unknown(context)} {_who(sender.address, sender)} may not write into {ticket.reference}",
        )
    # A known sender quoting somebody else's ticket number gets a ticket of their own.
    return await _new_ticket(context, sender, overrides, note=f"quoted {thread.ticket.reference}, not theirs")


def is_own_sender(address: str, settings: Settings) -> bool:
    return is_own_mailbox(address, settings)


async def _reply(
    context: Context, thread: ThreadMatch, sender: SenderMatch, overrides: TicketOverrides, why: str
) -> Decision:
    ticket = thread.ticket
    if ticket.status == TicketStatus.CLOSED:
        if not may_reopen(context.settings, ticket, context.clock.now()):
            return await _new_ticket(context, sender, overrides, linked=ticket)
        ticket.status = TicketStatus.OPEN
        ticket.closed_at = None
        outcome = Outcome.REOPENED
    else:
        outcome = Outcome.REPLIED
    client_answered(ticket)
    ticket.updated_at = context.clock.now()
    # Earlier participants and header-proven senders may be unknown: they write without becoming contacts.
    contact = await _contact_for(context, sender) if sender.known else None
    parsed = context.parsed  # the worker stripped the quotes; messages built by hand are stripped here
    new_text = parsed.new_text if parsed.new_text is not None else reply_text(parsed.text, parsed.subject)
    message = _add_message(context, ticket, contact, new_text)
    reopened = outcome == Outcome.REOPENED

    def events() -> list[TicketEvent]:
        return [ClientReplied(ticket.id, message.id, reopened=reopened)]

    reason = f"threaded by {thread.threaded_by}; sender {why}"
    return Decision(outcome, reason=reason, ticket=ticket, message=message, make_events=events)


async def _new_ticket(
    context: Context,
    sender: SenderMatch,
    overrides: TicketOverrides,
    linked: Ticket | None = None,
    note: str | None = None,
) -> Decision:
    parsed = context.parsed
    creates_contact = overrides.contact is None and sender.contact is None
    contact = overrides.contact or await _contact_for(context, sender)
    client = overrides.client or (contact.client if contact.client_id is not None else sender.client)
    new = NewTicket(
        subject=clean_subject(parsed.subject, context.settings.ticket_prefix),
        description=parsed.text[:MAX_DESCRIPTION_CHARS],
        client_id=client.id if client is not None else None,
        contact_id=contact.id,
        priority=overrides.priority or Priority.MEDIUM,
        category=overrides.category,
        status=overrides.status or TicketStatus.OPEN,
        tags=overrides.tags,
        assigned_agent_id=overrides.agent.id if overrides.agent is not None else None,
        linked_ticket_id=linked.id if linked else None,
        suppress_acknowledgement=overrides.suppress_acknowledgement,
    )
    ticket = await create_ticket(context.session, context.settings.ticket_prefix, new, context.clock.now())
    # Hand the new ticket its people now: notifications read them, and asyncio forbids lazy loads. As
    # loaded values: their ids are already in the row, so there is nothing for a flush to write.
    for name, person in (("contact", contact), ("client", client), ("assigned_agent", overrides.agent)):
        set_committed_value(ticket, name, person)
    message = _add_message(context, ticket, contact, parsed.text.strip())
    reason = f"follow-up to closed {linked.reference}" if linked else note
    agent = overrides.agent

    def events() -> list[TicketEvent]:
        acknowledge = not new.suppress_acknowledgement and (not creates_contact or _acknowledges_new(context))
        created: list[TicketEvent] = [TicketCreated(ticket.id, message.id, acknowledge=acknowledge)]
        if agent is not None:
            created.append(TicketAssigned(ticket.id, agent.id, previous_agent_id=None))
        return created

    return Decision(Outcome.CREATED, reason=reason, ticket=ticket, message=message, make_events=events)


def _acknowledges_new(context: Context) -> bool:
    """No relaying: a contact this mail created from an unknown address is acknowledged only if authenticated."""
    policy = context.settings.acknowledge_new_contacts
    return policy == "always" or (policy == "authenticated" and context.sender_auth.authenticated is True)


async def _contact_for(context: Context, sender: SenderMatch) -> Contact:
    """The sender's contact; an unknown address at a client's domain becomes a contact of that client."""
    if sender.contact is not None:
        return sender.contact
    parsed = context.parsed
    try:
        email = normalize_email(sender.address)
    except ValueError as exc:  # a release of held mail: the admin is told, nothing is written
        raise InvalidInput(f"the From address cannot be a contact's: {exc}", {"sender": str(exc)}) from exc
    contact = Contact(
        client=sender.client,
        name=(parsed.sender_name or sender.address.partition("@")[0])[:64],
        email=email,
        created_at=context.clock.now(),
        updated_at=context.clock.now(),
    )
    context.session.add(contact)
    await context.session.flush()
    return contact


def _add_message(context: Context, ticket: Ticket, contact: Contact | None, new_text: str) -> TicketMessage:
    """Made, not written: the caller writes it (`write_message`) once its inbound record has an id."""
    contact_id = contact.id if contact is not None else None
    message = inbound_message(context.parsed, ticket, new_text, contact_id, context.clock.now())
    if message.body_html and not context.settings.keep_remote_resources:
        message.body_html = without_remote_resources(message.body_html)
    store_attachments(message, context.parsed, context.files)
    return message


async def record_events(session: AsyncSession, settings: Settings, clock: Clock, events: list[TicketEvent]) -> None:
    """Notifications for what just happened, written in the same transaction (the outbox)."""
    if events:
        await enqueue_notifications(session, settings, clock, events)

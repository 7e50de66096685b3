"""The transactional outbox: notifications written in the caller's transaction, sent later.

`enqueue_notifications` turns ticket events into OutboxMail rows (the rendered mail, ready to send)
and records each mail on the ticket as an outbound TicketMessage, so that replies thread by
In-Reply-To and the ticket shows what was sent.  A notification exists if and only if its cause
was committed.  Suppressed mails (machines, our own addresses, rate limits) are logged with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    false,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from mailtickets.agentmail.store import agent_addresses
from mailtickets.clock import Clock
from mailtickets.db import connection_of, flush_pending, get_held, insert_together, prepare
from mailtickets.models import Agent, AuthorRole, Direction, OutboxMail, OutboxState, Ticket, TicketMessage
from mailtickets.notify import guard
from mailtickets.notify.message import MAX_REFERENCES, MailAttachment, OutgoingMail, thread_references, to_bytes
from mailtickets.notify.msgid import make_agent_message_id, make_message_id
from mailtickets.notify.notices import Suppressed, enqueue_refusal, redact, sender_name
from mailtickets.notify.plan import Person, Planned, TicketParties, plan_notifications
from mailtickets.notify.quoting import quoted_subject
from mailtickets.notify.templates import MailContext, TicketView, cached_environment, render
from mailtickets.prepared import Prepared
from mailtickets.settings import Settings
from mailtickets.storage import FileStore
from mailtickets.tickets.events import (
    AgentMailRefused,
    AgentReplied,
    ClientReplied,
    NoteAdded,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketEvent,
    TicketMerged,
)

log = logging.getLogger(__name__)

_INSERT_OUTBOX = prepare(insert(cast(Table, OutboxMail.__table__)))
_INSERT_MESSAGE = prepare(insert(cast(Table, TicketMessage.__table__)))
# Attachments are not needed for a notification about a client's message: no eager load (built once).
_WITHOUT_ATTACHMENTS = (lazyload(TicketMessage.attachments),)
CLIENT_KINDS = ("acknowledgement", "agent_reply", "chaser", "closed", "merged")  # counted by the per-ticket limit
_OUTBOX = OutboxMail.__table__.c


def _newest_automatic(which: str, *where: ColumnElement[bool]) -> Select[Any]:
    """The creation times of the newest automatic mails that match, at most `cap` of them, tagged `which`."""
    newest = (
        select(literal_column(f"'{which}'").label("which"), _OUTBOX.created_at)
        .where(_OUTBOX.automatic.is_(True), _OUTBOX.created_at >= bindparam("since"), *where)
        .order_by(_OUTBOX.created_at.desc())
        .limit(bindparam("cap"))
        .subquery()
    )
    return select(newest)


# Built once: it runs for every automatic mail, and building a statement costs more than running it. Each
# part reads at most `cap` rows (the larger limit: a count that reaches it is all a guard needs to know),
# so an agent who gets thousands of alerts an hour costs what one who gets ten does.
_RECENT_AUTOMATIC = prepare(
    select(
        union_all(
            _newest_automatic("recipient", _OUTBOX.recipient == bindparam("recipient")),
            _newest_automatic(
                "ticket",
                _OUTBOX.ticket_id == bindparam("ticket_id"),
                # Written out, not an expanding IN (which a prepared statement cannot carry); our own names.
                _OUTBOX.kind.in_([literal_column(f"'{kind}'") for kind in CLIENT_KINDS]),
            ),
            _newest_automatic(
                "recipient_ticket",
                _OUTBOX.ticket_id == bindparam("ticket_id"),
                _OUTBOX.recipient == bindparam("recipient"),
            ),
        ).subquery()
    )
)


async def enqueue_notifications(
    session: AsyncSession, settings: Settings, clock: Clock, events: Sequence[TicketEvent]
) -> list[Suppressed]:
    """Queue the mails the events call for; returns those a guard held back (already logged)."""
    suppressed: list[Suppressed] = []
    for event in events:
        if isinstance(event, AgentMailRefused):  # about a mail, not (necessarily) a ticket
            await enqueue_refusal(session, settings, clock, event)
            continue
        ticket = await get_held(session, Ticket, event.ticket_id)
        if ticket is None:
            log.warning("notification for missing ticket id %s skipped", event.ticket_id)
            continue
        planned = plan_notifications(event, await _parties(session, settings, ticket, event), settings)
        if planned:
            about = await _about(session, ticket, event)
            for one in _not_mailed_yet(planned, about):
                held = await _enqueue_one(session, settings, clock, about, one)
                suppressed += [held] if held is not None else []
    return suppressed


@dataclass(frozen=True, slots=True)
class _About:
    """What every mail about one event shares, loaded once per event."""

    ticket: Ticket
    event: TicketEvent
    message: TicketMessage | None  # the client's message or the agent's reply the event is about
    in_reply_to: str | None
    references: tuple[str, ...]
    merged_into: str = ""  # for TicketMerged: the reference of the ticket that carries on


async def _about(session: AsyncSession, ticket: Ticket, event: TicketEvent) -> _About:
    message = await _event_message(session, event)
    if isinstance(event, TicketCreated) and message is not None:
        in_reply_to, references = _thread_of_new(message)  # a new ticket's thread is its first message
    else:
        in_reply_to, references = await _thread(session, ticket, event)
    if isinstance(event, TicketMerged):
        target = await session.get_one(Ticket, event.into_ticket_id)
        return _About(ticket, event, message, in_reply_to, references, target.reference)
    return _About(ticket, event, message, in_reply_to, references)


def _not_mailed_yet(planned: list[Planned], about: _About) -> list[Planned]:
    """An agent who answered by mail with the client in To/Cc already reached them: no second copy."""
    reply = about.message if isinstance(about.event, AgentReplied) else None
    if reply is None or reply.direction != Direction.INBOUND:
        return planned
    reached = {str(a).lower() for a in [*(reply.to_addresses or []), *(reply.cc_addresses or [])]}
    return [one for one in planned if one.to.email.lower() not in reached]


def _thread_of(ticket: Ticket, event: TicketEvent) -> ColumnElement[bool]:
    """The messages of the conversation a mail belongs to: a merged ticket's are now on the other one."""
    if isinstance(event, TicketMerged):
        return TicketMessage.id.in_(event.moved_message_ids)
    return TicketMessage.ticket_id == ticket.id


async def _parties(session: AsyncSession, settings: Settings, ticket: Ticket, event: TicketEvent) -> TicketParties:
    contact = None
    if ticket.contact is not None and ticket.contact.email:
        contact = Person(ticket.contact.email, ticket.contact.name)
    else:
        if isinstance(event, TicketMerged):
            first = await session.scalar(_first_client_author(_thread_of(ticket, event)))
        else:
            await flush_pending(session)  # as a query's autoflush would: this transaction's messages count
            first = await _FIRST_CLIENT_AUTHOR.scalar(await connection_of(session), {"ticket_id": ticket.id})
        contact = Person(first) if first else None
    agent = ticket.assigned_agent
    event_agent = None
    if isinstance(event, TicketAssigned | NoteAdded):
        named = await session.get(Agent, event.agent_id if isinstance(event, TicketAssigned) else event.author_agent_id)
        event_agent = _agent_person(named)
    others = await _client_side(session, settings, ticket, contact) if isinstance(event, AgentReplied) else ()
    return TicketParties(
        contact=contact,
        assigned_agent=_agent_person(agent),
        event_agent=event_agent,
        also_client_side=others,
        suppress_acknowledgement=ticket.suppress_acknowledgement,
    )


def _agent_person(agent: Agent | None) -> Person | None:
    return Person(agent.email, agent.name, agent.id) if agent is not None and agent.active else None


async def _client_side(
    session: AsyncSession, settings: Settings, ticket: Ticket, contact: Person | None
) -> tuple[Person, ...]:
    """To/Cc of the client's messages on the ticket, minus the contact, our addresses and agents."""
    rows = await session.execute(
        select(TicketMessage.to_addresses, TicketMessage.cc_addresses).where(
            TicketMessage.ticket_id == ticket.id, TicketMessage.author_role == AuthorRole.CLIENT
        )
    )
    excluded = set(await agent_addresses(session)) | {contact.email.lower() if contact else ""}
    found: dict[str, None] = {}
    for to, cc in rows:
        for address in (str(a).lower() for a in [*(to or []), *(cc or [])]):
            if address not in excluded and not guard.is_own_mailbox(address, settings):
                found[address] = None
    return tuple(Person(a) for a in found)


def _public_ids(messages: ColumnElement[bool]) -> Select[int, str | None, Direction]:
    """The thread's messages whose Message-ID the client saw."""
    return select(TicketMessage.id, TicketMessage.message_id, TicketMessage.direction).where(
        messages,
        TicketMessage.message_id.is_not(None),
        TicketMessage.public.is_(True),
        # An agent's own mail to us: the client never saw its Message-ID, only our copy of it.
        or_(TicketMessage.direction == Direction.OUTBOUND, TicketMessage.agent_id.is_(None)),
    )


def _thread_ends(messages: ColumnElement[bool]) -> Select[Any]:
    """The first and the latest in one statement (one round trip on every reply's path)."""
    public_ids = _public_ids(messages)
    first = public_ids.order_by(TicketMessage.id).limit(1).subquery()
    latest = public_ids.order_by(TicketMessage.id.desc()).limit(MAX_REFERENCES).subquery()
    return select(union_all(select(first, true().label("first")), select(latest, false().label("first"))).subquery())


def _first_client_author(messages: ColumnElement[bool]) -> Select[Any]:
    return (
        select(TicketMessage.author_email)
        .where(messages, TicketMessage.direction == Direction.INBOUND)
        .order_by(TicketMessage.id)
        .limit(1)
    )


# Built once, for the usual thread (one ticket's messages): they run for every notification about a reply.
_OF_TICKET = TicketMessage.ticket_id == bindparam("ticket_id")
_THREAD_ENDS = prepare(_thread_ends(_OF_TICKET))
_FIRST_CLIENT_AUTHOR = prepare(_first_client_author(_OF_TICKET))


async def _thread(session: AsyncSession, ticket: Ticket, event: TicketEvent) -> tuple[str | None, tuple[str, ...]]:
    """The client's latest message id (In-Reply-To) and the References list: the thread's first id and
    its latest ones (RFC 5322 lets the middle be trimmed), each read with a LIMIT on the ticket's index,
    so that a mail costs the same on the 1,500th reply as on the first."""
    found: list[tuple[Any, ...]]
    if isinstance(event, TicketMerged):  # the moved messages: a list that differs each time
        found = [tuple(row) for row in await session.execute(_thread_ends(_thread_of(ticket, event)))]
    else:
        await flush_pending(session)  # as a query's autoflush would: this transaction's messages count
        found = await _THREAD_ENDS.rows(await connection_of(session), {"ticket_id": ticket.id})
    # Each row: (id, message_id, direction, first).
    newest_first = sorted((row for row in found if not row[3]), key=lambda row: int(row[0]), reverse=True)
    rows = [(row[1], row[2]) for row in [*(r for r in found if r[3]), *reversed(newest_first)]]
    inbound = [str(row[1]) for row in newest_first if row[2] == Direction.INBOUND]
    in_reply_to = inbound[0] if inbound else None
    if in_reply_to is None and len(newest_first) == MAX_REFERENCES:  # the client's latest is older than those
        in_reply_to = await session.scalar(
            _public_ids(_thread_of(ticket, event))
            .with_only_columns(TicketMessage.message_id)
            .where(TicketMessage.direction == Direction.INBOUND)
            .order_by(TicketMessage.id.desc())
            .limit(1)
        )
    return in_reply_to, thread_references([str(mid) for mid, _ in rows], in_reply_to)


def _thread_of_new(message: TicketMessage) -> tuple[str | None, tuple[str, ...]]:
    if message.message_id is None or not message.public:
        return None, ()
    in_reply_to = message.message_id if message.direction == Direction.INBOUND else None
    return in_reply_to, thread_references([message.message_id], in_reply_to)


async def _event_message(session: AsyncSession, event: TicketEvent) -> TicketMessage | None:
    if isinstance(event, AgentReplied):  # its attachments go to the client with it
        reply = await session.get_one(TicketMessage, event.message_id)
        if "attachments" in inspect(reply).unloaded:  # written in this session without any
            await session.refresh(reply, ["attachments"])
        return reply
    if isinstance(event, TicketCreated | ClientReplied | NoteAdded) and event.message_id is not None:
        return await get_held(session, TicketMessage, event.message_id, options=_WITHOUT_ATTACHMENTS)
    return None


def _context(settings: Settings, about: _About, planned: Planned) -> MailContext:
    ticket, event, message, contact = about.ticket, about.event, about.message, about.ticket.contact
    text = ""
    if message is not None:
        # The new text only: an agent's reply by mail keeps its quoted history in body_text.
        text = message.body_text_new or message.body_text
    elif isinstance(event, TicketCreated):  # opened by the API or an agent: its description is the request
        text = ticket.description
    agent_name = ticket.assigned_agent.name if ticket.assigned_agent is not None else ""
    if message is not None and isinstance(event, AgentReplied | NoteAdded):
        agent_name = message.author_name or agent_name
    # Automatic mail to the client repeats the sender's subject only short and defanged (no relaying).
    subject = quoted_subject(ticket.subject) if planned.automatic and not planned.internal else ticket.subject
    return MailContext(
        ticket=TicketView(ticket.reference, subject, str(ticket.status), str(ticket.priority)),
        support_address=settings.support_address,
        recipient_name=planned.to.name,
        contact_name=contact.name if contact is not None else "",
        contact_email=contact.email or "" if contact is not None else "",
        client_name=ticket.client.name if ticket.client is not None else "",
        agent_name=agent_name,
        message_text=text,
        author_name=(message.author_name or "") if message is not None else "",
        author_email=(message.author_email or "") if message is not None else "",
        reopened=isinstance(event, ClientReplied) and event.reopened,
        automatic=isinstance(event, TicketClosed) and event.automatic,
        close_in_hours=round(max(settings.autoclose_close_hours - settings.autoclose_chaser_hours, 0)),
        merged_into=about.merged_into,
    )


async def recent_counts(
    session: AsyncSession, settings: Settings, recipient: str, ticket_id: int, now: datetime
) -> guard.RecentCounts:
    """Automatic mails queued in the short and long windows: to `recipient`, to the ticket's client, and
    to `recipient` about this ticket. Each count stops at the larger limit (`guard`'s rules compare
    them with the limits only), so the read is bounded however much mail a recipient gets."""
    long_ = now - timedelta(minutes=settings.auto_mail_window_long_minutes)
    short = now - timedelta(minutes=settings.auto_mail_window_short_minutes)
    cap = max(settings.auto_mail_limit_short, settings.auto_mail_limit_long, 1)
    # Core on the connection: no autoflush needed (the outbox is written with Core inserts), no ORM layer.
    connection = await connection_of(session)
    parameters = {"since": long_, "recipient": recipient, "ticket_id": ticket_id, "cap": cap}
    found: dict[str, list[datetime]] = {"recipient": [], "ticket": [], "recipient_ticket": []}
    for which, at in await _RECENT_AUTOMATIC.rows(connection, parameters):
        found[which].append(at)

    def counts(which: str) -> tuple[int, int]:
        return sum(at >= short for at in found[which]), len(found[which])

    # RecentCounts' order: (short, long) to the recipient, to the ticket's client, to the recipient about it.
    return guard.RecentCounts(*counts("recipient"), *counts("ticket"), *counts("recipient_ticket"))


async def _suppressed(
    session: AsyncSession, settings: Settings, ticket: Ticket, planned: Planned, now: datetime
) -> Suppressed | None:
    address = planned.to.email.lower()
    reason = guard.suppression_reason(address, settings, automatic=planned.automatic, internal=planned.internal)
    if reason is not None:
        return Suppressed(ticket.id, planned.kind, reason, rate_limited=False)
    if planned.automatic:
        counts = await recent_counts(session, settings, address, ticket.id, now)
        rule = guard.internal_loop_reason if planned.internal else guard.rate_limit_reason
        reason = rule(counts, settings)
    return Suppressed(ticket.id, planned.kind, reason, rate_limited=True) if reason is not None else None


async def _enqueue_one(
    session: AsyncSession, settings: Settings, clock: Clock, about: _About, planned: Planned
) -> Suppressed | None:
    now, ticket = clock.now(), about.ticket
    held = await _suppressed(session, settings, ticket, planned, now)
    if held is not None:
        log.info(
            "notification %s for %s to %s suppressed: %s",
            planned.kind,
            ticket.reference,
            redact(planned.to.email),
            held.reason,
        )
        return held
    message_id = _message_id(settings, ticket.reference, planned.to.agent_id)
    row = {
        "kind": planned.kind,
        "ticket_id": ticket.id,
        "recipient": planned.to.email.lower(),
        "message_id": message_id,
        "automatic": planned.automatic,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    try:
        mail = _outgoing(settings, about, planned, now, message_id)
        raw = to_bytes(mail)
    except Exception as exc:  # one notification's boundary: it never fails the message or job that caused it
        log.exception("notification %s for %s could not be built; recorded as failed", planned.kind, ticket.reference)
        error = f"could not be built: {type(exc).__name__}: {exc}"
        failed = {**row, "raw": b"", "state": OutboxState.FAILED, "last_error": error}
        await _INSERT_OUTBOX.run(await connection_of(session), failed)
        return None
    # Core inserts built once (same Table objects as the model), on the connection: no ORM layer, no
    # autoflush (the ticket they point at is always written already: `create_ticket` inserts at once).
    outbox_row = (_INSERT_OUTBOX, {**row, "raw": raw, "state": OutboxState.PENDING})
    # An agent's reply typed in (API, CLI) is the sent mail itself; one that came by mail keeps its own ids.
    reply = about.message if isinstance(about.event, AgentReplied) else None
    if reply is not None and (reply.direction == Direction.INBOUND or reply.message_id is not None):
        reply = None
    await _queue_with_copy(session, ticket, planned, mail, reply, outbox_row)
    log.info("notification %s for %s queued as %s", planned.kind, ticket.reference, mail.message_id)
    return None


def _message_id(settings: Settings, reference: str, agent_id: int | None) -> str:
    # Mail to an agent carries an id signed for that agent: their reply to it authenticates them.
    secret, domain = settings.secret_key, settings.own_message_id_domain
    if agent_id is not None:
        return make_agent_message_id(reference, agent_id, secret, domain)
    return make_message_id(reference, secret, domain)


def _outgoing(settings: Settings, about: _About, planned: Planned, now: datetime, message_id: str) -> OutgoingMail:
    context = _context(settings, about, planned)
    rendered = render(cached_environment(settings.templates_dir), planned.kind, context)
    reference = about.ticket.reference
    reply = about.message if isinstance(about.event, AgentReplied) else None
    return OutgoingMail(
        sender=settings.support_address,
        sender_name=sender_name(context.agent_name, settings) if reply is not None else "",
        to_address=planned.to.email,
        to_name=planned.to.name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        date=now,
        ticket_ref=reference,
        auto_submitted=planned.auto_submitted,
        in_reply_to=about.in_reply_to,
        references=about.references,
        attachments=_attachments(settings, reply),
    )


def _attachments(settings: Settings, reply: TicketMessage | None) -> tuple[MailAttachment, ...]:
    """An agent's attachments travel with their reply (read back from the data folder)."""
    if reply is None or not reply.attachments:
        return ()
    files = FileStore(settings.attachments_dir)
    return tuple(MailAttachment(a.filename, a.content_type, files.get(a.sha256)) for a in reply.attachments)


async def _queue_with_copy(
    session: AsyncSession,
    ticket: Ticket,
    planned: Planned,
    mail: OutgoingMail,
    reply: TicketMessage | None,
    outbox_row: tuple[Prepared, dict[str, Any]],
) -> None:
    """Write the outbox row, and store what was sent on the ticket (in the same statement where round
    trips are costly); an agent's reply is already there and only gets its ids."""
    recorded = {
        "public": not planned.internal,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": " ".join(mail.references) or None,
        "subject": mail.subject,
        "to_addresses": [mail.to_address],
    }
    if reply is not None:
        await insert_together(session, outbox_row)
        for name, value in recorded.items():
            setattr(reply, name, value)
        return
    copy = {
        "ticket_id": ticket.id,
        "direction": Direction.OUTBOUND,
        "author_role": AuthorRole.SYSTEM,
        "body_text": mail.text,
        "author_email": mail.sender,
    }
    await insert_together(session, outbox_row, (_INSERT_MESSAGE, copy | recorded))

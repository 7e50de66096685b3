"""Who hears about an event: pure recipient rules, one function per kind of event.

created → the client contact (acknowledgement) and the distribution list; client replied → the assigned
agent, or the distribution list when nobody is assigned; agent public reply → the client contact and the
thread's other client-side people; auto-close chaser, closure and merge into another ticket → the client
contact; assigned → the agent; an agent's private note → the assigned agent, unless they wrote it.  Each kind can be
switched off in settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtickets.settings import Settings
from mailtickets.tickets.events import (
    AgentReplied,
    ChaserDue,
    ClientReplied,
    NoteAdded,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketEvent,
    TicketMerged,
)

AUTO_REPLIED = "auto-replied"  # RFC 3834: automatic mail in answer to the client's message
AUTO_GENERATED = "auto-generated"  # RFC 3834: automatic mail not answering anyone (internal notices)


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str = ""
    agent_id: int | None = None  # an agent: their mail gets a Message-ID signed for them


@dataclass(frozen=True, slots=True)
class TicketParties:
    """The people an event may concern, loaded from the ticket by the caller."""

    contact: Person | None
    assigned_agent: Person | None = None
    event_agent: Person | None = None  # the agent named by a TicketAssigned event, or a note's author
    also_client_side: tuple[Person, ...] = ()  # To/Cc of the client's messages, beside the contact
    suppress_acknowledgement: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    kind: str  # also the template name
    to: Person
    internal: bool  # to agents or the distribution list: recorded on the ticket as private
    auto_submitted: str | None  # None for a human's mail (an agent's reply): no rate limit, no no-reply rule

    @property
    def automatic(self) -> bool:
        return self.auto_submitted is not None


def _client(kind: str, parties: TicketParties, auto: str | None = AUTO_REPLIED) -> list[Planned]:
    return [Planned(kind, parties.contact, False, auto)] if parties.contact else []


def _distribution(kind: str, settings: Settings) -> list[Planned]:
    return [Planned(kind, Person(a), True, AUTO_GENERATED) for a in settings.notify_new_tickets_to]


def _created(event: TicketCreated, parties: TicketParties, settings: Settings) -> list[Planned]:
    planned: list[Planned] = []
    if event.acknowledge and settings.notify_client_on_create and not parties.suppress_acknowledgement:
        planned += _client("acknowledgement", parties)
    if settings.notify_distribution_on_create:
        planned += _distribution("new_ticket", settings)
    return planned


def _client_replied(parties: TicketParties, settings: Settings) -> list[Planned]:
    if not settings.notify_agent_on_client_reply:
        return []
    if parties.assigned_agent is not None:
        return [Planned("client_reply", parties.assigned_agent, True, AUTO_GENERATED)]
    return _distribution("client_reply", settings)


def _note(parties: TicketParties) -> list[Planned]:
    assigned, author = parties.assigned_agent, parties.event_agent
    if assigned is None or (author is not None and author.email.lower() == assigned.email.lower()):
        return []
    return [Planned("agent_note", assigned, True, AUTO_GENERATED)]


def plan_notifications(event: TicketEvent, parties: TicketParties, settings: Settings) -> list[Planned]:
    match event:
        case TicketCreated():
            return _created(event, parties, settings)
        case ClientReplied():
            return _client_replied(parties, settings)
        case AgentReplied():
            if not settings.notify_client_on_agent_reply:
                return []
            others = [Planned("agent_reply", p, False, None) for p in parties.also_client_side]
            return _client("agent_reply", parties, None) + others
        case NoteAdded():
            return _note(parties)
        case TicketAssigned():
            if not settings.notify_agent_on_assign or parties.event_agent is None:
                return []
            return [Planned("assigned", parties.event_agent, True, AUTO_GENERATED)]
        case TicketClosed():
            return _client("closed", parties) if settings.notify_client_on_close else []
        case TicketMerged():
            return _client("merged", parties) if settings.notify_client_on_merge else []
        case ChaserDue():
            return _client("chaser", parties) if settings.notify_client_autoclose_chaser else []
    return []

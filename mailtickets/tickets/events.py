"""What happened to a ticket, as plain values.

The service layer returns these; the notification stage turns them into outbox rows in the same
transaction, so a notification exists if and only if its cause was committed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TicketCreated:
    ticket_id: int
    message_id: int | None  # the TicketMessage that opened it (None for a ticket typed in by an agent)
    acknowledge: bool = True  # False when a rule or the message itself says not to answer


@dataclass(frozen=True, slots=True)
class ClientReplied:
    ticket_id: int
    message_id: int
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class AgentReplied:
    ticket_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class NoteAdded:
    """An agent's private note: the assigned agent hears of it unless they wrote it."""

    ticket_id: int
    message_id: int
    author_agent_id: int


@dataclass(frozen=True, slots=True)
class AgentMailRefused:
    """Mail from an agent's address was not taken (unauthenticated, a bad command): the agent is told why."""

    agent_id: int
    reason: str
    subject: str
    in_reply_to: str | None  # the refused mail's Message-ID
    ticket_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    ticket_id: int
    agent_id: int
    previous_agent_id: int | None


@dataclass(frozen=True, slots=True)
class TicketClosed:
    ticket_id: int
    automatic: bool = False  # closed by the auto-close job


@dataclass(frozen=True, slots=True)
class TicketMerged:
    ticket_id: int  # the merged ticket, now closed and pointing to the other
    into_ticket_id: int
    moved_message_ids: tuple[int, ...]  # its messages, now on the other ticket: the client's thread


@dataclass(frozen=True, slots=True)
class ChaserDue:
    ticket_id: int


TicketEvent = (
    TicketCreated
    | ClientReplied
    | AgentReplied
    | NoteAdded
    | AgentMailRefused
    | TicketAssigned
    | TicketClosed
    | TicketMerged
    | ChaserDue
)

"""Whether mail from an agent's address is really the agent's: pure checks over headers and ids.

Two proofs: (a) the receiving system's verdict, DMARC pass or an aligned DKIM pass for the From domain
from a trusted authserv-id (see `mailtickets.trust`); (b) In-Reply-To/References naming a Message-ID we
signed for this agent and this ticket (`notify.msgid.make_agent_message_id`).  Setting
`agent_mail_requires` says which are needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from mailtickets.notify.msgid import agent_signed_for
from mailtickets.settings import AgentMailRequires

LOOKALIKE_RATIO = 0.8  # helpdesk.example vs he1pdesk.example or helpdesk-example.com


@dataclass(frozen=True, slots=True)
class AgentProof:
    dmarc: bool  # DMARC or aligned DKIM pass, from a trusted authserv-id
    signed_reply: bool  # answers a Message-ID we signed for this agent and this ticket

    def satisfies(self, requires: AgentMailRequires) -> bool:
        if requires == "dmarc":
            return self.dmarc
        if requires == "signed-reply":
            return self.signed_reply
        if requires == "both":
            return self.dmarc and self.signed_reply
        return self.dmarc or self.signed_reply

    def describe(self) -> str:
        proofs = [name for name, held in (("dmarc", self.dmarc), ("signed reply", self.signed_reply)) if held]
        return " and ".join(proofs) or "no proof"


def signed_for_agent(ids: Iterable[str], agent_id: int, ticket_refs: Iterable[str], secret: str, domain: str) -> bool:
    """True when one of `ids` is a Message-ID we signed for this agent about one of `ticket_refs`."""
    return not set(ticket_refs).isdisjoint(agent_signed_refs(ids, agent_id, secret, domain))


def agent_signed_refs(ids: Iterable[str], agent_id: int, secret: str, domain: str) -> list[str]:
    """The ticket references of those of `ids` that are Message-IDs we signed for this agent, in order."""
    refs: dict[str, None] = {}
    for message_id in ids:
        signed = agent_signed_for(message_id, secret, domain)
        if signed is not None and signed[1] == agent_id:
            refs[signed[0]] = None
    return list(refs)


@dataclass(frozen=True, slots=True)
class Posing:
    agent_address: str
    how: Literal["display name", "lookalike domain"]


def impersonated(address: str, from_header: str, agent_addresses: Iterable[str]) -> Posing | None:
    """The agent address a sender that is no agent pretends to be: written in the From header beside the
    real address (the display name), or the same mailbox at a lookalike domain.  None: nothing points at one."""
    address, written = address.lower(), from_header.lower()
    local, _, domain = address.partition("@")
    for agent_address in (a.lower() for a in agent_addresses):
        agent_local, _, agent_domain = agent_address.partition("@")
        if agent_address in written:
            return Posing(agent_address, "display name")
        if local == agent_local and SequenceMatcher(None, domain, agent_domain).ratio() >= LOOKALIKE_RATIO:
            return Posing(agent_address, "lookalike domain")
    return None

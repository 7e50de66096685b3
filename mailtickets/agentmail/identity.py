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


def signed_for_agent(
    ids: Iterable[str], agent_id: int, ticket_refs: Iterable[str], secret: str, domain: str
) -> bool:
    """True when one of `ids` is a Message-ID we signed for this agent about one of `ticket_refs`."""
    wanted = set(ticket_refs)
    for message_id in ids:
        signed = agent_signed_for(message_id, secret, domain)
        if signed is not None and signed[1] == agent_id and signed[0] in wanted:
            return True
    return False


def impersonated(address: str, display_name: str, agent_addresses: Iterable[str]) -> str | None:
    """The agent address this sender pretends to be, though it is not theirs: in the display name, or
    the same mailbox at a lookalike domain.  None when nothing points at an agent."""
    address, name = address.lower(), display_name.lower()
    local, _, domain = address.partition("@")
    for agent_address in agent_addresses:
        agent_address = agent_address.lower()
        if agent_address == address:
            return None
        agent_local, _, agent_domain = agent_address.partition("@")
        if agent_address in name:
            return agent_address
        if local == agent_local and SequenceMatcher(None, domain, agent_domain).ratio() >= LOOKALIKE_RATIO:
            return agent_address
    return None

"""Match a From address to a contact (by address) or to a client (by registered domain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.db import RowLoader, VersionedCache
from mailtickets.directory.validation import normalize_domain
from mailtickets.models import Client, ClientDomain, Contact

MatchedBy = Literal["contact", "domain", "unknown"]
# Built once: building a statement costs more than running it, and this one runs for every message.
_CONTACT_BY_ADDRESS = RowLoader(Contact, func.lower(Contact.email) == bindparam("address"), joined=("client",))


@dataclass(frozen=True, slots=True)
class SenderMatch:
    address: str
    matched_by: MatchedBy
    contact: Contact | None = None
    client: Client | None = None
    # Set when the sender would be known but for this client being deactivated: the trace says so.
    deactivated_client: Client | None = None

    @property
    def known(self) -> bool:
        return self.matched_by != "unknown"

    @property
    def why_unknown(self) -> str | None:
        """Why a sender that would be known is not: the reason recorded in the trace says it."""
        if self.deactivated_client is None:
            return None
        return f"client {self.deactivated_client.name!r} is deactivated"

    @property
    def client_id(self) -> int | None:
        return self.client.id if self.client else None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def candidate_domains(domain: str) -> list[str]:
    """The domain and its parents down to two labels: mail.acme.example → [mail.acme.example, acme.example]."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


def normalise_domain(domain: str) -> str:
    """As client domains are stored (the directory's one rule: IDNA UTS 46); unchanged if it is no domain."""
    try:
        return normalize_domain(domain)
    except ValueError:
        return domain.strip().lower().rstrip(".")


async def match_sender(session: AsyncSession, address: str) -> SenderMatch:
    """The From address (never the display name), compared case-insensitively."""
    address = address.lower()
    contact = await _CONTACT_BY_ADDRESS.first(session, {"address": address})
    if contact is not None and contact.active:
        if contact.client is not None and not contact.client.active:
            return SenderMatch(address, "unknown", contact=contact, deactivated_client=contact.client)
        return SenderMatch(address, "contact", contact=contact, client=contact.client)
    client = await client_for_domain(session, domain_of(address))
    if client is not None and not client.active:
        return SenderMatch(address, "unknown", contact=contact, deactivated_client=client)
    if client is not None:
        return SenderMatch(address, "domain", contact=contact, client=client)
    return SenderMatch(address, "unknown", contact=contact)


async def client_for_domain(session: AsyncSession, domain: str) -> Client | None:
    """The client that registered the domain or its nearest parent; no query at all for a domain nobody
    registered (most unknown senders): the domain map stays in memory until the directory counter moves."""
    by_domain = await _CLIENT_DOMAINS.get(session)
    client_id = next((by_domain[d] for d in candidate_domains(normalise_domain(domain)) if d in by_domain), None)
    return await session.get(Client, client_id) if client_id is not None else None


async def _load_client_domains(session: AsyncSession) -> dict[str, int]:
    return {
        domain: client_id
        for domain, client_id in await session.execute(select(ClientDomain.domain, ClientDomain.client_id))
    }


_CLIENT_DOMAINS = VersionedCache(_load_client_domains)

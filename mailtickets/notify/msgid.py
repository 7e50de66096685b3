"""Message-IDs that carry the ticket reference under a keyed signature.

Our outgoing Message-ID looks like ``TCK-12.k3x9q2mfh7a4c2de.<signature>@helpdesk.example``; a mail to
an agent carries the agent's id in the signed random part (``TCK-12.a7-k3x9….<signature>@…``), so the
agent's reply proves both the ticket and who it was sent to.  When a
mail client or a third-party system drops the ``[TCK-12]`` subject tag, a reply still names our
Message-ID in In-Reply-To/References, and the signature (HMAC-SHA256 over the domain, the reference and
the random part, keyed with ``settings.secret_key``) proves the id is ours and was not made up by
someone guessing ticket numbers.  Pure functions: no I/O, no settings object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# Characters allowed in a dot-atom (RFC 5322 atext) besides the dot that separates our three parts.
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_AGENT_NONCE = re.compile(r"^a(\d{1,18})-[a-z2-7]+$")
AGENT_MARK = "a"  # base32 has no "-": a nonce "a7-…" can only be one we wrote for agent 7
MIN_AGENT_RANDOM_CHARS = 10  # 50 bits: with the ticket and the agent in the id, plenty to never repeat
RANDOM_BYTES = 10  # 80 bits: ids never repeat, even across instances
SIGNATURE_BYTES = 15  # 120 bits of the HMAC, 24 base32 characters


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _signature(ticket_ref: str, nonce: str, secret: str, domain: str) -> str:
    if not secret:
        raise ValueError("secret_key must not be empty")
    payload = f"{domain.lower()}\x00{ticket_ref}\x00{nonce}".encode()
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return _b32(digest[:SIGNATURE_BYTES])


def make_message_id(ticket_ref: str, secret: str, domain: str) -> str:
    """A fresh, signed Message-ID for a mail about `ticket_ref`, without angle brackets."""
    if not _ATEXT.match(ticket_ref):
        raise ValueError(f"ticket reference not usable in a Message-ID: {ticket_ref!r}")
    if not domain or "@" in domain or not _ATEXT.match(domain):
        raise ValueError(f"not a Message-ID domain: {domain!r}")
    nonce = _b32(secrets.token_bytes(RANDOM_BYTES))
    return f"{ticket_ref}.{nonce}.{_signature(ticket_ref, nonce, secret, domain)}@{domain}"


def make_agent_message_id(ticket_ref: str, agent_id: int, secret: str, domain: str) -> str:
    """A signed Message-ID for a mail to agent `agent_id` about `ticket_ref` (the agent's reply proves both)."""
    message_id = make_message_id(ticket_ref, secret, domain)
    local, _, _ = message_id.rpartition("@")
    _, nonce, _ = local.rsplit(".", 2)
    marker = f"{AGENT_MARK}{agent_id}-"
    # As long as an id for a client: a longer one would fold the Message-ID header on common domains.
    agent_nonce = marker + nonce[: max(len(nonce) - len(marker), MIN_AGENT_RANDOM_CHARS)]
    return f"{ticket_ref}.{agent_nonce}.{_signature(ticket_ref, agent_nonce, secret, domain)}@{domain}"


def agent_signed_for(message_id: str, secret: str, domain: str) -> tuple[str, int] | None:
    """(ticket reference, agent id) of one of our per-agent Message-IDs, or None when not one or forged."""
    ticket_ref = ticket_ref_from_message_id(message_id, secret, domain)
    if ticket_ref is None:
        return None
    nonce = message_id.strip().strip("<>").rpartition("@")[0].rsplit(".", 2)[1]
    found = _AGENT_NONCE.match(nonce)
    return (ticket_ref, int(found.group(1))) if found else None


def ticket_ref_from_message_id(message_id: str, secret: str, domain: str) -> str | None:
    """The ticket reference inside one of our Message-IDs, or None when foreign or forged.

    Accepts the id with or without angle brackets and surrounding blanks; the domain compares
    case-insensitively (some relays lower-case it), the signature in constant time.
    """
    local, at, id_domain = message_id.strip().strip("<>").rpartition("@")
    if not at or id_domain.lower() != domain.lower():
        return None
    parts = local.rsplit(".", 2)
    if len(parts) != 3 or not all(parts):
        return None
    ticket_ref, nonce, signature = parts
    if not _ATEXT.match(ticket_ref):
        return None
    expected = _signature(ticket_ref, nonce, secret, domain)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        return None
    return ticket_ref

"""The verdict on one parsed message under the site's settings: what the pipeline's decision reads."""

from __future__ import annotations

from mailtickets.parse.message import ParsedMessage
from mailtickets.settings import Settings
from mailtickets.trust.authres import HEADER, NO_VERDICT, SenderAuth, sender_auth


def verdict_for(parsed: ParsedMessage, settings: Settings) -> SenderAuth:
    if parsed.sender is None:
        return NO_VERDICT
    domain = parsed.sender.rpartition("@")[2]
    return sender_auth(parsed.header_items(HEADER), domain, settings.trusted_authserv_ids)


def trusts_sender(verdict: SenderAuth, settings: Settings) -> bool:
    """May the From address be matched to a contact or a client domain?

    Always when no trusted authserv-id is configured (nothing to go by: today's behaviour) or under
    `unauthenticated_sender = "accept"`; otherwise only when the trusted verdict authenticates it. No
    verdict at all (no trusted block, or only blocks a sender could have written) is not authentication.
    """
    if not settings.trusted_authserv_ids or settings.unauthenticated_sender == "accept":
        return True
    return verdict.authenticated is True

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
    """May the sender be matched to a contact or a client domain? Not when unauthenticated under `unknown`."""
    return verdict.authenticated is not False or settings.unauthenticated_sender == "accept"

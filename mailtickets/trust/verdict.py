"""The verdict on one parsed message under the site's settings: what the pipeline's decision reads."""

from __future__ import annotations

from mailtickets.parse.message import ParsedMessage
from mailtickets.settings import Settings
from mailtickets.trust.authres import HEADER, NO_VERDICT, SenderAuth, sender_auth
from mailtickets.trust.dkim import TxtLookup, dkim_auth


def verdict_for(
    parsed: ParsedMessage, settings: Settings, raw: bytes | None = None, lookup: TxtLookup | None = None
) -> SenderAuth:
    """The trusted receiving system's verdict; else, with `dkim_verify`, our own DKIM check of `raw`.

    The DKIM check looks keys up in DNS (blocking): call it off the event loop.
    """
    if parsed.sender is None:
        return NO_VERDICT
    domain = parsed.sender.rpartition("@")[2]
    verdict = sender_auth(parsed.header_items(HEADER), domain, settings.trusted_authserv_ids)
    if verdict.authserv_id is None and settings.dkim_verify and raw is not None:
        return dkim_auth(raw, domain, lookup)
    return verdict


def authentication_configured(settings: Settings) -> bool:
    return bool(settings.trusted_authserv_ids) or settings.dkim_verify


def trusts_sender(verdict: SenderAuth, settings: Settings) -> bool:
    """May the From address be matched to a contact or a client domain?

    Always when no authentication is configured (nothing to go by: today's behaviour) or under
    `unauthenticated_sender = "accept"`; otherwise only when the verdict authenticates it. No verdict at
    all (no trusted block, or only blocks a sender could have written) is not authentication.
    """
    if not authentication_configured(settings) or settings.unauthenticated_sender == "accept":
        return True
    return verdict.authenticated is True

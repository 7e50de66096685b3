"""Our own DKIM check (dkimpy), for sites whose receiving system writes no `Authentication-Results`.

A sender is authenticated when one DKIM signature verifies and its d= domain aligns (relaxed) with the
From domain: without SPF (we do not see the connecting IP) and without DMARC policy, this is the DKIM half
of DMARC. The DNS lookup is given by the caller (dkimpy's own resolver by default), so tests pass keys
in-process and the pipeline can run the blocking lookup off its event loop.
"""

from __future__ import annotations

from collections.abc import Callable

import dkim

from mailtickets.trust.authres import SenderAuth, aligned

OWN_DKIM = "mailtickets-dkim"  # the authserv-id of our own verdict, as recorded
TxtLookup = Callable[..., bytes | str | None]  # dkimpy's dnsfunc(name: bytes, timeout=...) → the TXT record
MAX_SIGNATURES = 5  # a message with more signatures than this gets only the first ones checked


def dkim_auth(raw: bytes, from_domain: str, lookup: TxtLookup | None = None) -> SenderAuth:
    """Our verdict: an aligned, verifying signature authenticates; none (or none verifying) does not."""
    dnsfunc = lookup or dkim.dnsplug.get_txt
    found = False
    for index in range(min(_signature_count(raw), MAX_SIGNATURES)):
        found = found or _aligned_pass(raw, index, from_domain, dnsfunc)
    return SenderAuth(authserv_id=OWN_DKIM, dmarc=None, dkim_aligned_pass=found, spf_aligned_pass=False)


def _signature_count(raw: bytes) -> int:
    try:
        headers = dkim.DKIM(raw).headers
    except dkim.MessageFormatError:
        return 0
    return sum(1 for name, _value in headers if name.lower() == b"dkim-signature")


def _aligned_pass(raw: bytes, index: int, from_domain: str, dnsfunc: TxtLookup) -> bool:
    verifier = dkim.DKIM(raw)
    try:
        verified = verifier.verify(idx=index, dnsfunc=dnsfunc)
    except (dkim.DKIMException, OSError, ValueError):  # broken signature, key or lookup: not a pass
        return False
    domain = verifier.domain.decode("ascii", "replace") if isinstance(verifier.domain, bytes) else None
    return bool(verified) and aligned(domain, from_domain)

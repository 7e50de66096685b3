"""The receiving system's verdict on the sender, from its `Authentication-Results` header (RFC 8601).

Only the topmost block whose authserv-id is trusted counts: every block below it, and every block from
another id, may have been written by the sender. Microsoft 365 writes its block without an authserv-id;
the trusted id `topmost` accepts the topmost block whatever its id (safe only where the receiving system
always adds one). The header syntax is parsed by the `authres` library; alignment (relaxed, RFC 7489)
compares organisational domains from the Public Suffix List.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import authres
from publicsuffixlist import PublicSuffixList

TOPMOST = "topmost"  # in trusted_ids: trust the topmost block, whatever its authserv-id
HEADER = "authentication-results"
_NO_ID = "authserv-id.missing"  # stands in for the id Microsoft 365 leaves out, so the library can parse
MAX_BLOCKS = 20  # the receiving system's block is at the top; a message with hundreds is not read to the end


@dataclass(frozen=True, slots=True)
class SenderAuth:
    authserv_id: str | None  # id of the trusted block used; None: no trusted verdict
    dmarc: str | None  # result word of that block ("pass", "fail", ...), None if absent
    dkim_aligned_pass: bool  # a dkim=pass whose header.d aligns (relaxed) with the From domain
    spf_aligned_pass: bool  # spf=pass whose smtp.mailfrom domain aligns with the From domain

    @property
    def authenticated(self) -> bool | None:
        """True: DMARC pass or an aligned SPF/DKIM pass; False: a trusted verdict without; None: no verdict."""
        if self.authserv_id is None:
            return None
        return self.dmarc == "pass" or self.dkim_aligned_pass or self.spf_aligned_pass


NO_VERDICT = SenderAuth(authserv_id=None, dmarc=None, dkim_aligned_pass=False, spf_aligned_pass=False)


def sender_auth(headers: Sequence[tuple[str, str]], from_domain: str, trusted_ids: Sequence[str]) -> SenderAuth:
    """The verdict of the topmost trusted `Authentication-Results` block; `headers` in message order."""
    if not trusted_ids or not from_domain:
        return NO_VERDICT
    blocks = [value for name, value in headers if name.lower() == HEADER][:MAX_BLOCKS]
    for value in blocks:
        if not _is_trusted(_leading_id(value), trusted_ids):
            continue  # another system's block: not worth parsing (the library takes ~1 ms a header)
        parsed = _parse(value)
        if parsed is None or not _is_trusted(parsed.authserv_id, trusted_ids):
            return NO_VERDICT  # our receiving system's block, unreadable: never fall through to a lower one
        return _verdict(parsed, from_domain)
    return NO_VERDICT


def _leading_id(value: str) -> str:
    """The authserv-id as written (before the first `;`, without a version); "" when the block has none."""
    leading = value.partition(";")[0].split()
    return leading[0] if leading and "=" not in leading[0] else _NO_ID


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    text = " ".join(value.split())
    for candidate in (text, f"{_NO_ID}; {text}"):
        try:
            return authres.AuthenticationResultsHeader.parse_value(candidate)
        except (authres.AuthResError, RecursionError):  # RecursionError: deeply nested comments
            continue
    return None


def _is_trusted(authserv_id: str | None, trusted_ids: Sequence[str]) -> bool:
    found = (authserv_id or "").lower()
    if TOPMOST in trusted_ids:
        return True
    return found != _NO_ID and any(fnmatch.fnmatchcase(found, pattern.lower()) for pattern in trusted_ids)


def _verdict(block: authres.AuthenticationResultsHeader, from_domain: str) -> SenderAuth:
    dmarc: str | None = None
    dkim = spf = False
    for result in block.results:
        method, word = str(result.method).lower(), str(result.result).lower()
        if method == "dmarc" and dmarc is None:
            # A verdict about another From domain (the receiving system read the From otherwise) is none.
            header_from = _property(result, "header", "from")
            dmarc = word if header_from is None or _same_domain(header_from, from_domain) else None
        elif method == "dkim" and word == "pass":
            signer = _property(result, "header", "d") or _property(result, "header", "i")
            dkim = dkim or aligned(signer, from_domain)
        elif method == "spf" and word == "pass":
            spf = spf or aligned(_property(result, "smtp", "mailfrom"), from_domain)
    authserv_id = str(block.authserv_id) if block.authserv_id != _NO_ID else TOPMOST
    return SenderAuth(authserv_id=authserv_id, dmarc=dmarc, dkim_aligned_pass=dkim, spf_aligned_pass=spf)


def _property(result: authres.core.AuthenticationResult, ptype: str, name: str) -> str | None:
    for prop in result.properties:
        if str(prop.type).lower() == ptype and str(prop.name).lower() == name:
            return str(prop.value)
    return None


def aligned(domain: str | None, from_domain: str) -> bool:
    """Relaxed alignment: both domains have the same organisational domain (mail.acme.example ~ acme.example)."""
    if not domain:
        return False
    domain, from_domain = _bare_domain(domain), _bare_domain(from_domain)
    if domain == from_domain:
        return True
    organisational = _public_suffixes().privatesuffix(from_domain)
    return organisational is not None and organisational == _public_suffixes().privatesuffix(domain)


def _same_domain(one: str, other: str) -> bool:
    return _bare_domain(one) == _bare_domain(other)


def _bare_domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()

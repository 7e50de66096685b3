"""API-key authentication: `Authorization: Bearer KEY`, HTTP Basic `name:KEY`, or `X-API-Key: KEY`.

Read-only keys may only read (GET/HEAD), and POST only where nothing is written (the rules' dry run);
anything else answers 403.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.errors import ApiError
from mailtickets.api.keys import Caller, verify_api_key

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# One header line per scheme: browsers read a combined `Bearer, Basic realm=…` as Bearer alone and never
# offer the Basic login that the docs page relies on.
CHALLENGE = (
    ("WWW-Authenticate", 'Basic realm="mailtickets", charset="UTF-8"'),
    ("WWW-Authenticate", 'Bearer realm="mailtickets"'),
)


def presented_credentials(request: Request) -> tuple[str | None, str] | None:
    """(name or None, key) from the request headers, or None when no key was presented."""
    header_key = request.headers.get("x-api-key")
    if header_key:
        return None, header_key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic" and value.strip():
        return _basic(value.strip())
    return None


def _basic(value: str) -> tuple[str | None, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(401, "unauthorized", "malformed Basic credentials", CHALLENGE) from exc
    name, colon, key = decoded.partition(":")
    if not colon:
        raise ApiError(401, "unauthorized", "Basic credentials must be name:key", CHALLENGE)
    return name or None, key


async def authenticate(request: Request, sessions: async_sessionmaker[AsyncSession]) -> Caller:
    """The caller owning the presented key; 401 when none or a wrong one was presented."""
    credentials = presented_credentials(request)
    if credentials is None:
        raise ApiError(401, "unauthorized", "an API key is required", CHALLENGE)
    name, key = credentials
    async with sessions() as session:
        caller = await verify_api_key(session, key, name=name)
    if caller is None:
        raise ApiError(401, "unauthorized", "invalid API key", CHALLENGE)
    return caller


def require_write_access(request: Request, caller: Caller) -> Caller:
    """403 when a read-only key asks for anything but a read."""
    if caller.read_only and request.method not in READ_METHODS:
        raise ApiError(403, "forbidden", f"API key {caller.name!r} is read-only")
    return caller

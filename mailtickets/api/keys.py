"""API keys: high-entropy random tokens, shown once, stored as their SHA-256.

A fast hash is right here: the token carries 256 random bits, so there is nothing to brute-force
that a slow password hash would protect.  Verification compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.directory.validation import FieldConflict, require_name
from mailtickets.errors import InvalidInput
from mailtickets.models import ApiKey

TOKEN_BYTES = 32
TOKEN_PREFIX = "mtk_"
NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the API, as far as authorisation cares."""

    key_id: int
    name: str
    read_only: bool


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_api_key(session: AsyncSession, name: str, *, read_only: bool = False) -> tuple[ApiKey, str]:
    """A new key; returns the row and the token, which is never stored or shown again."""
    name = require_name(name, max_length=NAME_MAX)
    if ":" in name:  # RFC 7617: the Basic user name ends at the first colon
        raise InvalidInput("name is not valid", {"name": "may not contain ':' (it is the HTTP Basic user name)"})
    if await session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise FieldConflict(f"an API key named {name!r} already exists", {"name": "taken"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiKey(name=name, key_hash=hash_key(token), read_only=read_only)
    session.add(row)
    await session.flush()
    return row, token


async def verify_api_key(session: AsyncSession, token: str, *, name: str | None = None) -> Caller | None:
    """The caller owning `token` (and `name`, when given as with HTTP Basic), or None."""
    digest = hash_key(token)
    query = select(ApiKey).where(ApiKey.revoked.is_(False))
    query = query.where(ApiKey.name == name) if name is not None else query.where(ApiKey.key_hash == digest)
    for row in await session.scalars(query):
        if hmac.compare_digest(row.key_hash, digest):
            return Caller(key_id=row.id, name=row.name, read_only=row.read_only)
    return None


async def list_api_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key (revoked ones too), oldest first; only names and flags: the keys themselves are not kept."""
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.id)))


async def revoke_api_key(session: AsyncSession, name: str) -> bool:
    row = await session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        return False
    row.revoked = True
    await session.flush()
    return True

"""Leases on SQLite and PostgreSQL: one holder at a time, takeover after expiry, release."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from conftest import Store

from mailtickets.ingest.leases import LeaseLost, Leases


def leases(store: Store, owner: str) -> Leases:
    return Leases(store.sessions, store.clock, owner, seconds=30)


async def test_one_holder_until_it_expires(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    assert await a.try_acquire("imap:x")
    assert await a.try_acquire("imap:x")  # ours already: renewed
    assert not await b.try_acquire("imap:x")
    store.clock.advance(timedelta(seconds=16))  # past the 15 s life of a 30 s lease: the holder died
    assert await b.try_acquire("imap:x")
    with pytest.raises(LeaseLost):
        await a.renew("imap:x")


async def test_renewal_keeps_it(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    assert await a.try_acquire("imap:x")
    for _ in range(3):
        store.clock.advance(timedelta(seconds=10))
        await a.renew("imap:x")
        assert not await b.try_acquire("imap:x")


async def test_release_hands_over_at_once(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    assert await a.try_acquire("imap:x")
    await a.release("imap:x")
    assert await b.try_acquire("imap:x")


async def test_names_are_independent(store: Store) -> None:
    assert await leases(store, "a").try_acquire("imap:x")
    assert await leases(store, "b").try_acquire("imap:y")


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    contenders = [leases(store, f"o{i}") for i in range(5)]
    won = await asyncio.gather(*(c.try_acquire("imap:x") for c in contenders))
    assert won.count(True) == 1


async def test_wait_acquire_returns_false_when_stopped(store: Store) -> None:
    assert await leases(store, "a").try_acquire("imap:x")
    stop = asyncio.Event()
    stop.set()
    assert not await leases(store, "b").wait_acquire("imap:x", stop)

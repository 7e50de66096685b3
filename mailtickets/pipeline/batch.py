"""Group commit: the messages that are ready share one transaction, each in its own SAVEPOINT.

A caller submits one item and waits for its result. Whoever finds the writer free takes the items that
are waiting (up to the batch size; it never waits for more than are there), runs each inside a SAVEPOINT
of one transaction and commits once, so a durable commit (an fsync on SQLite) is paid once per batch.
A result is handed back only after the commit that holds it: nothing is acknowledged before. An item
that fails rolls back to its savepoint only (its ticket number is not burnt: the counter's bump is undone
with it) and is run again alone, in a transaction of its own, after the batch; its failure, if it
repeats, goes to its own caller. If the batch's transaction itself fails, every item is run alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.db import item_savepoint, transaction
from mailtickets.errors import TemporaryError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]


@dataclass(slots=True)
class _Batch(Generic[Item, Result]):
    waiting: list[_Waiting[Item, Result]]
    results: dict[int, Result] = field(default_factory=dict)  # index in `waiting` → result
    alone: list[int] = field(default_factory=list)  # indexes to run again on their own


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent submissions into one transaction with a savepoint each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        in_batch: Callable[[AsyncSession, Item], Awaitable[Result]],
        alone: Callable[[Item], Awaitable[Result]],
        batch_size: int,
    ) -> None:
        self._sessions = sessions
        self._in_batch = in_batch
        self._alone = alone
        self._batch_size = max(1, batch_size)
        self._waiting: deque[_Waiting[Item, Result]] = deque()
        self._writer = asyncio.Lock()

    async def submit(self, item: Item) -> Result:
        """The result once it is committed; raises what running the item alone raised."""
        waiting: _Waiting[Item, Result] = _Waiting(item, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        try:
            async with self._writer:
                if not waiting.future.done():
                    await asyncio.sleep(0)  # let the submissions that are ready join; never wait for more
                while not waiting.future.done():
                    await self._run_to_the_end(self._take())
        except asyncio.CancelledError:
            waiting.future.cancel()  # not taken yet: it will not be written (if it was, it dedupes later)
            raise
        return waiting.future.result()

    async def _run_to_the_end(self, taken: list[_Waiting[Item, Result]]) -> None:
        # A cancelled caller must neither abandon the others' batch half-way nor hand the writer on
        # while that batch still runs: it waits for the batch, then gives up.
        run = asyncio.ensure_future(self._run(taken))
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            await run
            raise

    def _take(self) -> list[_Waiting[Item, Result]]:
        taken: list[_Waiting[Item, Result]] = []
        while self._waiting and len(taken) < self._batch_size:
            waiting = self._waiting.popleft()
            if not waiting.future.cancelled():  # its caller is gone: never acknowledged, so not written
                taken.append(waiting)
        return taken

    async def _run(self, waiting: list[_Waiting[Item, Result]]) -> None:
        batch: _Batch[Item, Result] = _Batch(waiting)
        try:
            if len(waiting) == 1:
                batch.alone.append(0)  # a batch of one needs no savepoint: the usual single transaction
            else:
                await self._together(batch)
            for index, result in batch.results.items():
                _settle(waiting[index].future, result)
            for index in batch.alone:
                await self._run_alone(waiting[index])
        finally:
            for left in waiting:  # only if this was interrupted: their callers must not wait for ever
                if not left.future.done():
                    left.future.set_exception(TemporaryError("interrupted before the commit"))

    async def _together(self, batch: _Batch[Item, Result]) -> None:
        try:
            async with transaction(self._sessions) as session:
                for index, waiting in enumerate(batch.waiting):
                    if index:
                        # Inline SQLite never suspends: a turn of the loop between messages lets the parse
                        # workers hand in their answers and take the next messages while the batch is written.
                        await asyncio.sleep(0)
                    await self._in_savepoint(session, batch, index, waiting.item)
        except Exception as exc:  # the batch's own transaction failed (e.g. at commit): nothing of it holds
            log.warning("group commit of %d messages failed (%s); each is retried alone", len(batch.waiting), exc)
            batch.results.clear()
            batch.alone[:] = range(len(batch.waiting))

    async def _in_savepoint(self, session: AsyncSession, batch: _Batch[Item, Result], index: int, item: Item) -> None:
        try:
            async with item_savepoint(session):  # on a failure it expunges the session: see there
                batch.results[index] = await self._in_batch(session, item)
        except Exception:  # this item's own boundary: undone to its savepoint, re-run alone after the commit
            log.debug("message %d of a batch failed; it is retried alone", index, exc_info=True)
            batch.alone.append(index)

    async def _run_alone(self, waiting: _Waiting[Item, Result]) -> None:
        try:
            result = await self._alone(waiting.item)
        except BaseException as exc:  # handed to the one caller it belongs to, as if it had run alone
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        _settle(waiting.future, result)


def _settle(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)

"""Parsing in worker processes: one message can cost at most `parse_timeout_seconds` and
`parse_memory_limit_bytes`, and the event loop never waits on it.

`await parser.parse(raw)` gives a ParsedMessage or a ParseFailure (the reason, for the quarantine).
A worker is a separate process (forked from a forkserver that has the parsing libraries imported)
with RLIMIT_AS set to the memory limit; the bytes go to it and the parsed message comes back over a
pipe, read by a thread so that the loop stays free. A worker past the time limit is killed and
replaced; one that runs out of memory answers with a failure (or dies) and is replaced as well.
`InProcessParser` does the same work on the caller's thread, for tests and the dry run.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

from mailtickets.parse.limits import ParseLimits
from mailtickets.parse.message import ParsedMessage, PayloadStore
from mailtickets.parse.parser import UnparseableMessage, parse_message
from mailtickets.settings import Settings
from mailtickets.storage import FileStore

log = logging.getLogger(__name__)

_PRELOAD = ["mailtickets.parse.parser"]  # imported once in the forkserver, not in every worker
STOP_WAIT_SECONDS = 2.0
START_WAIT_SECONDS = 60.0  # a new worker says it is ready; the time limit counts from then
_READY = b"ready"


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """The message could not be parsed within the limits: it is quarantined whole, with this reason."""

    reason: str


ParseOutcome = ParsedMessage | ParseFailure
OUT_OF_MEMORY = ParseFailure("parsing needed more memory than parse_memory_limit_bytes")


class Parser(Protocol):
    async def parse(self, raw: bytes, *, write_files: bool = True) -> ParseOutcome: ...

    async def close(self) -> None: ...


def limits_from(settings: Settings) -> ParseLimits:
    return ParseLimits(
        max_mime_parts=settings.max_mime_parts,
        max_attachments=settings.max_attachments,
        max_attachment_bytes=settings.max_attachment_bytes,
        max_text_chars=settings.max_text_chars,
    )


def parse_outcome(raw: bytes, limits: ParseLimits, store: PayloadStore | None = None) -> ParseOutcome:
    """Parse one message; every failure becomes a reason (runs in the worker, or in-process)."""
    try:
        return parse_message(raw, limits, store)
    except UnparseableMessage as exc:
        return ParseFailure(str(exc))
    except MemoryError:
        return OUT_OF_MEMORY
    except Exception as exc:  # the worker's boundary: a parser bug must not lose the mail, it is quarantined
        log.exception("parser failure; the message is quarantined")
        return ParseFailure(f"parser failure: {type(exc).__name__}: {exc}")


class InProcessParser:
    """Parses on the caller's thread, without limits of time or memory: tests and the dry run."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or ParseLimits()

    async def parse(self, raw: bytes, *, write_files: bool = True) -> ParseOutcome:
        return parse_outcome(raw, self.limits)  # attachments' bytes in memory: nothing written

    async def close(self) -> None:
        return None


# Module-level, so that a worker can import it. The store is where big attachments are written.
ParseFunction = Callable[[bytes, ParseLimits, PayloadStore | None], ParseOutcome]
_WRITE_FILES, _WRITE_NO_FILES = b"w", b"-"  # sent before each message's bytes


def _serve(
    connection: Connection, limits: ParseLimits, memory_limit: int, parse: ParseFunction, files_dir: Path | None
) -> None:
    """A worker's main loop: bytes in, a ParsedMessage or ParseFailure out, until the pipe closes.

    With `files_dir` (the pipeline's attachments folder) a big attachment is decoded straight into the
    content-addressed store and comes back as its digest and size, not as bytes through the pipe. It is
    written before the service's transaction, as ARCHITECTURE asks; if that rolls back, the file is an
    orphan, which is harmless."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    stopping = _StopAfterTheMessageInHand()
    files = FileStore(files_dir) if files_dir is not None else None
    connection.send_bytes(_READY)
    while not stopping.asked:
        try:
            write_files = connection.recv_bytes() == _WRITE_FILES
            raw = connection.recv_bytes()
        except (EOFError, OSError):
            return
        stopping.busy = True
        outcome = parse(raw, limits, files if write_files else None)
        del raw  # before the answer is pickled: the worker's peak is the message, not the message twice
        try:
            connection.send(outcome)
        except MemoryError:
            outcome = OUT_OF_MEMORY
            connection.send(outcome)
        stopping.busy = False
        if outcome == OUT_OF_MEMORY:
            return  # after a MemoryError the process may be in any state: the pool starts a fresh one


class _StopAfterTheMessageInHand:
    """SIGTERM or SIGINT (systemd signals the whole group, Ctrl-C the terminal's): an idle worker exits
    at once; a busy one first answers for the message in hand, which the service is still waiting for."""

    def __init__(self) -> None:
        self.busy = False
        self.asked = False
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self.busy:
            os._exit(0)
        self.asked = True


class _Worker:
    """One worker process and our end of its pipe. Its methods block: they run on the pool's threads."""

    def __init__(
        self,
        context: BaseContext,
        limits: ParseLimits,
        memory_limit: int,
        parse: ParseFunction,
        files_dir: Path | None = None,
    ) -> None:
        ours, theirs = context.Pipe()
        self.connection = ours
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(theirs, limits, memory_limit, parse, files_dir),
            daemon=True,
            name="mailtickets-parse",
        )
        self.process.start()
        theirs.close()
        if not ours.poll(START_WAIT_SECONDS) or ours.recv_bytes() != _READY:
            self.stop(kill=True)
            raise OSError("a parse worker did not start")

    def exchange(self, raw: bytes, write_files: bool = True) -> ParseOutcome:
        self.connection.send_bytes(_WRITE_FILES if write_files else _WRITE_NO_FILES)
        self.connection.send_bytes(raw)
        outcome: ParseOutcome = self.connection.recv()
        return outcome

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, *, kill: bool) -> None:
        self.connection.close()
        if kill:
            self.process.kill()
        self.process.join(STOP_WAIT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop(kill=True)


class ParseWorkers:
    """A small pool of parse worker processes, each started when first needed."""

    def __init__(
        self,
        limits: ParseLimits,
        *,
        timeout: float,
        memory_limit: int,
        size: int = 2,
        parse: ParseFunction = parse_outcome,  # tests put a slow one here to exercise the time limit
        files_dir: Path | None = None,  # where workers write big attachments; None: all come back as bytes
    ) -> None:
        self.limits = limits
        self.files_dir = files_dir
        self._parse = parse
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.size = max(1, size)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        # One thread per worker blocked on its pipe, and as many again to start and stop workers.
        self._threads = ThreadPoolExecutor(max_workers=2 * self.size, thread_name_prefix="parse-pipe")
        self._workers: list[_Worker] = []
        self._idle: asyncio.Queue[_Worker] | None = None
        self._started = 0  # workers started so far (a replaced one counts once): at most `size`
        # A pool nobody closed (a test, a crash) still leaves no process behind.
        self._finalizer = weakref.finalize(self, _stop_all, self._workers)

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseWorkers:
        return cls(
            limits_from(settings),
            timeout=settings.parse_timeout_seconds,
            memory_limit=settings.parse_memory_limit_bytes,
            size=settings.parse_workers,
            files_dir=settings.attachments_dir,
        )

    async def parse(self, raw: bytes, *, write_files: bool = True) -> ParseOutcome:
        """`write_files=False` (the dry run, a quarantine preview): big attachments come back as bytes."""
        if self._idle is None:
            self._idle = asyncio.Queue()
        idle = self._idle
        worker = await self._take(idle)
        try:
            outcome, worker = await self._exchange(worker, raw, write_files)
        finally:
            idle.put_nowait(worker)
        return outcome

    async def _take(self, idle: asyncio.Queue[_Worker]) -> _Worker:
        """An idle worker, or a new one while fewer than `size` run (a pipe that parses one message starts one)."""
        if idle.empty() and self._started < self.size:
            self._started += 1
            try:
                return await self._new_worker()
            except BaseException:
                self._started -= 1
                raise
        return await idle.get()

    async def _new_worker(self) -> _Worker:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(
            self._threads, _Worker, self._context, self.limits, self.memory_limit, self._parse, self.files_dir
        )
        self._workers.append(worker)
        return worker

    async def _exchange(self, worker: _Worker, raw: bytes, write_files: bool) -> tuple[ParseOutcome, _Worker]:
        """The outcome, and the worker to give back to the pool (a fresh one if this one had to go)."""
        if not worker.alive():
            worker = await self._replace(worker)
        loop = asyncio.get_running_loop()
        reply = loop.run_in_executor(self._threads, worker.exchange, raw, write_files)
        done, _ = await asyncio.wait({reply}, timeout=self.timeout)
        if not done:
            worker.process.kill()  # a signal, from here: it also ends the thread's blocked read
            await asyncio.gather(reply, return_exceptions=True)
            fresh = await self._replace(worker)
            return ParseFailure(f"parsing took longer than parse_timeout_seconds ({self.timeout:g} s)"), fresh
        try:
            outcome = reply.result()
        except (EOFError, OSError):
            fresh = await self._replace(worker)
            code = worker.process.exitcode
            return ParseFailure(f"the parse worker died (exit code {code}): over parse_memory_limit_bytes?"), fresh
        return outcome, worker

    async def _replace(self, worker: _Worker) -> _Worker:
        log.warning("parse worker %s replaced", worker.process.pid)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._threads, lambda: worker.stop(kill=True))
        self._workers.remove(worker)
        return await self._new_worker()

    async def close(self) -> None:
        workers = list(self._workers)
        self._workers.clear()
        loop = asyncio.get_running_loop()
        for worker in workers:
            await loop.run_in_executor(self._threads, lambda w=worker: w.stop(kill=False))  # type: ignore[misc]
        self._threads.shutdown(wait=False)
        self._idle, self._started = None, 0

"""Parsing in worker processes: one message can cost at most `parse_timeout_seconds` and
`parse_memory_limit_bytes`, and the event loop never waits on it.

`await parser.parse(raw)` gives a ParsedMessage or a ParseFailure (the reason, for the quarantine).
A worker is a separate process (forked from a forkserver that has the parsing libraries imported)
with RLIMIT_AS set to the memory limit; the bytes go to it and the parsed message comes back over a
pipe, through a feeder thread per worker, so that the loop stays free and parsing goes on while it
writes. A worker past the time limit is killed and replaced; one that runs out of memory answers
with a failure (or dies) and is replaced as well.
`InProcessParser` does the same work on the caller's thread, for tests and the dry run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import queue
import resource
import signal
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

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
_WARM_UP = b"From: warm-up@localhost\r\nSubject: warm-up\r\nMessage-ID: <warm-up@localhost>\r\n\r\nwarm-up\r\n"
OUT_OF_MEMORY = ParseFailure("parsing needed more memory than parse_memory_limit_bytes")


class Parser(Protocol):
    async def parse(self, raw: bytes, *, write_files: bool = True) -> ParseOutcome: ...

    async def warm_up(self) -> None:
        """Be ready for the first message (a service calls it at start; a one-off command need not)."""

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

    async def warm_up(self) -> None:
        return None

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

    def exchange(self, raw: bytes, timeout: float, write_files: bool = True) -> ParseOutcome:
        """TimeoutError past `timeout`; EOFError or OSError if the worker died."""
        self.connection.send_bytes(_WRITE_FILES if write_files else _WRITE_NO_FILES)
        self.connection.send_bytes(raw)
        if not self.connection.poll(timeout):
            raise TimeoutError
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


class ParseWorkers:
    """A small pool of parse worker processes, each fed by a thread of its own.

    The messages wait in one queue; each feeder thread takes the next, hands it to its worker and posts the
    outcome back to the loop. The loop only queues and collects: while it is busy writing a batch, the workers
    go on parsing the next messages, so a backlog reaches the group commit in large batches.
    """

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
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.size = max(1, size)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        self._pool = _Feeders(context, limits, memory_limit, parse, timeout, files_dir)
        # A pool nobody closed (a test, a crash) still leaves no process or thread behind: the feeders hold
        # the state, not this object, so it can be collected.
        self._finalizer = weakref.finalize(self, self._pool.stop, kill=True)

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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ParseOutcome] = loop.create_future()
        self._pool.submit(_Job(raw, write_files, loop, future), self.size)
        return await future

    async def warm_up(self) -> None:
        """Start every worker now, each parsing one small message, so the first mail does not wait for a
        process to start (about a second here: it was the LMTP p99 in bench/imap_latency.py)."""
        await asyncio.gather(*(self.parse(_WARM_UP, write_files=False) for _ in range(self.size)))

    @property
    def workers(self) -> list[_Worker]:
        """The live worker processes (started as the load needs them)."""
        with self._pool.lock:
            return list(self._pool.workers)

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.stop, kill=False)


class _Feeders:
    """The pool's state, shared by its feeder threads: the queue of messages and the live workers."""

    def __init__(
        self,
        context: BaseContext,
        limits: ParseLimits,
        memory_limit: int,
        parse: ParseFunction,
        timeout: float,
        files_dir: Path | None,
    ) -> None:
        self.context, self.limits, self.memory_limit = context, limits, memory_limit
        self.parse, self.timeout, self.files_dir = parse, timeout, files_dir
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # guards the lists and counts below between threads
        self.waiting = 0  # jobs queued, not taken yet
        self.idle = 0  # feeders waiting for a job

    def submit(self, job: _Job, size: int) -> None:
        with self.lock:  # started when needed: one message at a time (a pipe) keeps one worker
            self.waiting += 1
            self.queue.put(job)
            if len(self.threads) < size and self.waiting > self.idle:
                feeder = threading.Thread(target=self._feed, name="parse-feeder", daemon=True)
                self.threads.append(feeder)
                self.idle += 1  # counted from now: it is about to wait for this job
                feeder.start()

    def stop(self, *, kill: bool) -> None:
        """Each feeder finishes the messages queued before, then stops its worker."""
        with self.lock:
            threads, self.threads = self.threads, []
        for _ in threads:
            self.queue.put(None)
        if not kill:
            for thread in threads:
                thread.join()
        with self.lock:
            left = list(self.workers)
        for worker in left:
            self._retire(worker, kill=True)

    def _feed(self) -> None:
        worker: _Worker | None = None
        while (job := self._next()) is not None:
            worker, answer = self._take(worker, job)
            # Idle again before the answer goes out: the caller's next message finds this feeder free
            # and starts no other (one message at a time, as through a pipe, keeps one worker).
            with self.lock:
                self.idle += 1
            answer()
        if worker is not None:
            self._retire(worker, kill=False)

    def _take(self, worker: _Worker | None, job: _Job) -> tuple[_Worker | None, Callable[[], None]]:
        """Parse one job: the worker to keep, and how to answer its caller."""
        if job.future.cancelled():
            return worker, lambda: None  # its caller is gone: not parsed at all
        try:
            if worker is None or not worker.alive():
                worker = self._start(worker)
            outcome, worker = self._exchange(worker, job.raw, job.write_files)
        except BaseException as exc:  # no worker could be started: the caller's (temporary) error
            return worker, functools.partial(job.post_error, exc)
        if worker is None:  # it had to go: its replacement starts now, ready for the next message
            with contextlib.suppress(OSError):
                worker = self._start(None)
        return worker, functools.partial(job.post, outcome)

    def _next(self) -> _Job | None:
        """The next job; the caller was counted idle before (at its start, or after its last answer)."""
        job = self.queue.get()
        with self.lock:
            self.idle -= 1
            self.waiting -= job is not None
        return job

    def _start(self, old: _Worker | None) -> _Worker:
        if old is not None:
            log.warning("parse worker %s replaced", old.process.pid)
            self._retire(old, kill=True)
        worker = _Worker(self.context, self.limits, self.memory_limit, self.parse, self.files_dir)
        with self.lock:
            self.workers.append(worker)
        return worker

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        with self.lock:
            if worker not in self.workers:
                return
            self.workers.remove(worker)
        worker.stop(kill=kill)

    def _exchange(self, worker: _Worker, raw: bytes, write_files: bool) -> tuple[ParseOutcome, _Worker | None]:
        """The outcome, and the worker to keep (None: it had to go; the next message starts a fresh one)."""
        try:
            outcome = worker.exchange(raw, self.timeout, write_files)
        except TimeoutError:
            self._retire(worker, kill=True)
            return ParseFailure(f"parsing took longer than parse_timeout_seconds ({self.timeout:g} s)"), None
        except (EOFError, OSError):
            code = worker.process.exitcode
            self._retire(worker, kill=True)
            return ParseFailure(f"the parse worker died (exit code {code}): over parse_memory_limit_bytes?"), None
        except Exception as exc:  # e.g. an answer that does not unpickle: the pipe's state is unknown, so it goes
            log.exception("parse worker answer unreadable; the message is quarantined")
            self._retire(worker, kill=True)
            return ParseFailure(f"parse worker failure: {type(exc).__name__}: {exc}"), None
        return outcome, worker


@dataclass(frozen=True, slots=True)
class _Job:
    raw: bytes
    write_files: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[ParseOutcome]

    def post(self, outcome: ParseOutcome) -> None:
        self._call(_settle, outcome)

    def post_error(self, error: BaseException) -> None:
        self._call(_fail, error)

    def _call(self, settle: Callable[[asyncio.Future[ParseOutcome], Any], None], value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(settle, self.future, value)


def _settle(future: asyncio.Future[ParseOutcome], outcome: ParseOutcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _fail(future: asyncio.Future[ParseOutcome], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)

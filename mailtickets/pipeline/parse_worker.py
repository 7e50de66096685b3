"""Parsing in worker processes: one message can cost at most `parse_timeout_seconds` and
`parse_memory_limit_bytes`, and the event loop never waits on it.

`await parser.parse(raw)` gives a ParsedMessage or a ParseFailure (the reason, for the quarantine).
A worker is a separate process (forked from a forkserver that has the parsing libraries imported)
with RLIMIT_AS set to the memory limit; the bytes go to it and the parsed message comes back over a
Unix socket that the event loop reads and writes itself (no feeder threads: their Python work would take
the GIL from the loop), so that the loop stays free and parsing goes on while it writes. A worker past
the time limit is killed and replaced; one that runs out of memory answers with a failure (or dies) and
is replaced as well.
`InProcessParser` does the same work on the caller's thread, for tests and the dry run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import socket
import struct
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

from mailtickets.parse.limits import ParseLimits
from mailtickets.parse.message import ParsedMessage, PayloadStore, StoredPayload
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
    """The message could not be parsed within the limits: it is quarantined whole, with this reason.
    `temporary`: the fault is the machine's, not the message's (the data folder could not be written:
    a full disk, say): the message is not quarantined but left to be tried again."""

    reason: str
    temporary: bool = False


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


class _StoreWriteFailed(Exception):
    """The file store could not write (a full disk, a folder in the way): the machine's fault."""


@dataclass(frozen=True, slots=True)
class _ReportingStore:
    """The store, with its write failures told apart from anything a message can make the parser raise:
    those are the message's (quarantined); a failed write is retried, so it must never be the message's."""

    store: PayloadStore

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredPayload:
        try:
            return self.store.put_chunks(chunks)
        except OSError as exc:
            raise _StoreWriteFailed(exc.strerror or str(exc)) from exc


def parse_outcome(raw: bytes, limits: ParseLimits, store: PayloadStore | None = None) -> ParseOutcome:
    """Parse one message; every failure becomes a reason (runs in the worker, or in-process)."""
    try:
        return parse_message(raw, limits, _ReportingStore(store) if store is not None else None)
    except UnparseableMessage as exc:
        return ParseFailure(str(exc))
    except MemoryError:
        return OUT_OF_MEMORY
    except _StoreWriteFailed as exc:
        return ParseFailure(f"the data folder cannot be written: {exc}", temporary=True)
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

# The wire between the service and a worker is a Unix socket pair. A request is a flag (write big
# attachments into the store, or send them back as bytes) and the message's length, then its bytes; an
# answer is its length, then the pickled outcome. A new worker's first answer is _READY.
_REQUEST = struct.Struct("!cQ")
_ANSWER = struct.Struct("!Q")
_WRITE_FILES, _WRITE_NO_FILES = b"w", b"-"
_CHUNK = 1024 * 1024
_READ_SIZE = 256 * 1024  # most answers arrive whole in one read


def _serve(
    sock: socket.socket, limits: ParseLimits, memory_limit: int, parse: ParseFunction, files_dir: Path | None
) -> None:
    """A worker's main loop: bytes in, a ParsedMessage or ParseFailure out, until the socket closes.

    With `files_dir` (the pipeline's attachments folder) a big attachment is decoded straight into the
    content-addressed store and comes back as its digest and size, not as bytes through the socket. It is
    written before the service's transaction, as ARCHITECTURE asks; if that rolls back, the file is an
    orphan, which is harmless."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    stopping = _StopAfterTheMessageInHand()
    files = FileStore(files_dir) if files_dir is not None else None
    sock.setblocking(True)
    _send_answer(sock, _READY)
    while not stopping.asked:
        try:
            flag, size = _REQUEST.unpack(_receive(sock, _REQUEST.size))
            raw = _receive(sock, size)
        except (EOFError, OSError):
            return
        stopping.busy = True
        outcome = parse(raw, limits, files if flag == _WRITE_FILES else None)
        del raw  # before the answer is pickled: the worker's peak is the message, not the message twice
        try:
            answer = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            outcome = OUT_OF_MEMORY
            answer = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        try:
            _send_answer(sock, answer)
        except OSError:
            return
        stopping.busy = False
        if outcome == OUT_OF_MEMORY:
            return  # after a MemoryError the process may be in any state: the pool starts a fresh one


def _receive(sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes (EOFError if the socket closes first). BytesIO hands its buffer over without
    a copy, so a big message is held once."""
    buffer = io.BytesIO()
    while (left := size - buffer.tell()) > 0:
        chunk = sock.recv(min(left, _CHUNK))
        if not chunk:
            raise EOFError
        buffer.write(chunk)
    return buffer.getvalue()


def _send_answer(sock: socket.socket, answer: bytes) -> None:
    # Header and answer in one call: sent apart, the loop would often wake for the header alone.
    header = _ANSWER.pack(len(answer))
    sent = sock.sendmsg((header, answer))
    if sent < len(header):
        sock.sendall(header[sent:])
        sent = len(header)
    if sent - len(header) < len(answer):
        sock.sendall(memoryview(answer)[sent - len(header) :])


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


# Starting a process (a round trip to the forkserver) and reaping one block: they run here, one at a
# time (multiprocessing's bookkeeping of children is not meant for concurrent starts), never on the loop.
_PROCESSES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-worker-processes")
_IN_HAND = 2  # messages sent to one worker at a time: the one it parses and the next
# A message in hand longer than this (most take a millisecond; a 25 MB one about a second) has the one
# sent behind it queued for the other workers too: a slow message holds up nobody but itself.
HEDGE_AFTER_SECONDS = 1.0


@dataclass(slots=True, eq=False)  # each job is itself: two of the same bytes are two jobs
class _Job:
    raw: bytes
    write_files: bool
    future: asyncio.Future[ParseOutcome]
    hedged: bool = False  # also queued for another worker: the first answer settles it, the other is dropped

    def settle(self, outcome: ParseOutcome) -> None:
        if not self.future.done():  # else its caller is gone (cancelled): the outcome is dropped
            self.future.set_result(outcome)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class _Worker:
    """One worker process and the service's end of its socket, read and written by the event loop's
    callbacks: nothing here blocks, and no thread takes the GIL from the loop to feed a worker."""

    def __init__(
        self,
        process: BaseProcess,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        on_answer: Callable[[_Worker, bytearray], None],
        on_lost: Callable[[_Worker], None],
    ) -> None:
        self.process = process
        self.loop = loop
        self.started: asyncio.Future[None] = loop.create_future()  # resolved by its _READY
        # The jobs sent, in order: the worker parses the first; the others wait in the socket for it, so
        # it never idles until the loop turns again. The time limit runs for the first only.
        self.jobs: deque[_Job] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.hedge_timer: asyncio.TimerHandle | None = None
        self.untouched = False  # the first job has not had a byte sent yet
        self.closed = False
        self._sock = sock
        self._fd = sock.fileno()
        self._on_answer, self._on_lost = on_answer, on_lost
        self._outgoing: deque[memoryview] = deque()
        self._writing = False
        self._inbox = bytearray()  # what was read of the answers, not handed on yet
        self._body: bytearray | None = None  # a big answer being read, `_got` bytes of it so far
        self._got = 0
        loop.add_reader(self._fd, self._on_readable)

    @property
    def ready(self) -> bool:
        started = self.started
        return started.done() and not started.cancelled() and started.exception() is None

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, job: _Job) -> None:
        if not self.jobs:
            self.untouched = True
        self.jobs.append(job)
        flag = _WRITE_FILES if job.write_files else _WRITE_NO_FILES
        self._outgoing.extend((memoryview(_REQUEST.pack(flag, len(job.raw))), memoryview(job.raw)))
        self._flush()

    def _flush(self) -> None:
        """As much as the socket takes now; the rest when it is writable again (the bytes are not copied)."""
        try:
            while self._outgoing:
                sent = self._sock.sendmsg(self._outgoing)  # header and bytes in one call
                self.untouched = False
                while sent:
                    view = self._outgoing[0]
                    if sent < len(view):
                        self._outgoing[0], sent = view[sent:], 0
                    else:
                        sent -= len(view)
                        self._outgoing.popleft()
        except BlockingIOError:
            if not self._writing:
                self.loop.add_writer(self._fd, self._flush)
                self._writing = True
            return
        except OSError:
            self._outgoing.clear()
            self._on_lost(self)
            return
        if self._writing:
            self.loop.remove_writer(self._fd)
            self._writing = False

    def _on_readable(self) -> None:
        """Reads what is there (a short read means the socket is drained: the loop calls again when more
        comes), and hands on each whole answer. An answer bigger than a read goes straight into a buffer
        of its size."""
        try:
            while not self.closed:
                if self._body is not None:
                    wanted = len(self._body) - self._got
                    got = self._sock.recv_into(memoryview(self._body)[self._got :])
                    if not got:
                        raise EOFError
                    self._got += got
                    if got < wanted:
                        return
                    body, self._body = self._body, None
                    self._on_answer(self, body)
                    continue
                chunk = self._sock.recv(_READ_SIZE)
                if not chunk:
                    raise EOFError
                self._inbox += chunk
                self._answers_in_inbox()
                if len(chunk) < _READ_SIZE:
                    return
        except BlockingIOError:
            return
        except (EOFError, OSError):
            self._on_lost(self)

    def _answers_in_inbox(self) -> None:
        while len(self._inbox) >= _ANSWER.size and not self.closed:
            (size,) = _ANSWER.unpack_from(self._inbox)
            end = _ANSWER.size + size
            if len(self._inbox) >= end:
                body = self._inbox[_ANSWER.size : end]
                del self._inbox[:end]
                self._on_answer(self, body)
            elif end > _READ_SIZE:  # a big one: the rest is read into a buffer of its size
                self._body, self._got = bytearray(size), len(self._inbox) - _ANSWER.size
                self._body[: self._got] = memoryview(self._inbox)[_ANSWER.size :]
                self._inbox.clear()
                return
            else:
                return

    def cancel_timers(self) -> None:
        """The first job's time limit and hedge: it was answered, or the worker goes."""
        for timer in (self.timer, self.hedge_timer):
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Our end of the socket: an idle worker reads the end of it and exits."""
        if self.closed:
            return
        self.closed = True
        self.cancel_timers()
        if not self.loop.is_closed():
            self.loop.remove_reader(self._fd)
            if self._writing:
                self.loop.remove_writer(self._fd)
        self._sock.close()


def _stop_process(process: BaseProcess, *, kill: bool) -> None:
    if kill:
        process.kill()
    process.join(STOP_WAIT_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in list(workers):
        with contextlib.suppress(OSError, ValueError):
            _stop_process(worker.process, kill=True)


class ParseWorkers:
    """A small pool of parse worker processes, driven by the event loop.

    The messages wait in one queue; when a worker answers, the callback that reads its answer hands it the
    next message at once, so the workers go on parsing whenever the loop turns, even while it writes a
    batch (the group commit lets it turn between messages), and a backlog reaches the commit in large
    batches. Workers start as the load needs them, up to `size`.
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
        self._parse = parse
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._workers: list[_Worker] = []  # started or starting; a worker leaves the list as it goes
        self._starting = 0  # processes being started, not in the list yet
        self._queue: deque[_Job] = deque()
        self._tasks: set[asyncio.Future[Any]] = set()  # replacements under way
        self._loop: asyncio.AbstractEventLoop | None = None
        # A pool nobody closed (a test, a crash) still leaves no process behind.
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

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
        job = _Job(raw, write_files, self._bind().create_future())
        self._queue.append(job)
        self._dispatch()
        return await job.future  # a cancelled caller's job is skipped, or its answer dropped

    async def warm_up(self) -> None:
        """Start every worker now, each parsing one small message, so the first mail does not wait for a
        process to start (about a second here: it was the LMTP p99 in bench/imap_latency.py)."""
        await asyncio.gather(*(self.parse(_WARM_UP, write_files=False) for _ in range(self.size)))

    @property
    def workers(self) -> list[_Worker]:
        """The live worker processes (started as the load needs them)."""
        return list(self._workers)

    async def close(self) -> None:
        """What is queued or in hand is parsed first (its callers still wait for it); then each worker stops."""
        await self.until_idle()
        workers, self._workers[:] = list(self._workers), []
        for worker in workers:
            worker.close()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(_PROCESSES, functools.partial(_stop_process, w.process, kill=False))
                for w in workers
            )
        )

    async def until_idle(self) -> None:
        """Until nothing is queued, in hand or being started."""
        while pending := self._pending():
            await asyncio.wait(pending)

    def _pending(self) -> list[asyncio.Future[Any]]:
        jobs = [job.future for job in self._queue] + [job.future for w in self._workers for job in w.jobs]
        return [*(future for future in jobs if not future.done()), *self._tasks]

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; workers started under another one (now gone: a test's) are put down first."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                for worker in self._workers:
                    worker.close()
                _kill_all(self._workers)
                self._workers.clear()
                self._queue.clear()
                self._starting = 0
            self._loop = loop
        return loop

    def _dispatch(self) -> None:
        """Hand queued messages to idle workers; start workers if messages still wait and there is room;
        then give each busy worker its next message too."""
        self._hand_out(1)
        waiting = sum(not job.future.done() for job in self._queue)
        for _ in range(min(waiting, self.size - len(self._workers) - self._starting)):
            self._starting += 1
            self._keep(self._start())
        self._hand_out(_IN_HAND)

    def _hand_out(self, in_hand: int) -> None:
        while self._queue:
            if self._queue[0].future.done():
                self._queue.popleft()  # its caller is gone: not parsed at all
                continue
            worker = min(
                (w for w in self._workers if w.ready and len(w.jobs) < in_hand), key=lambda w: len(w.jobs), default=None
            )
            if worker is None:
                return
            job = self._queue.popleft()
            if not worker.jobs:
                self._arm(worker)
            worker.send(job)

    def _arm(self, worker: _Worker) -> None:
        """The time limit of the worker's first job, counted from now (when it is sent, or when the answer
        before it was read: never less than the limit)."""
        assert self._loop is not None
        worker.timer = self._loop.call_later(self.timeout, self._timed_out, worker)
        worker.hedge_timer = self._loop.call_later(min(HEDGE_AFTER_SECONDS, self.timeout / 2), self._hedge, worker)

    def _hedge(self, worker: _Worker) -> None:
        """The worker's first message is taking long: the ones sent behind it (which it has not read yet)
        are queued again at the head, for whichever worker is free; the first answer for each is kept."""
        if worker.closed:
            return
        behind = [job for job in list(worker.jobs)[1:] if not job.hedged and not job.future.done()]
        for job in behind:
            job.hedged = True
        self._queue.extendleft(reversed([_Job(job.raw, job.write_files, job.future, hedged=True) for job in behind]))
        if behind:
            self._dispatch()

    def _keep(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> _Worker | None:
        """A new worker, ready for a message (the caller counted it in `_starting`); None if it failed to
        start, which the first waiting message is told (as the error it would have met itself)."""
        loop = self._bind()
        try:
            process, sock = await loop.run_in_executor(_PROCESSES, self._spawn)
            worker = _Worker(process, sock, loop, self._answered, self._lost)
        except BaseException as exc:
            self._starting -= 1
            if not isinstance(exc, Exception):  # cancelled (the loop stops): nobody waits for it
                raise
            self._no_worker(exc)
            return None
        self._starting -= 1
        self._workers.append(worker)
        try:
            async with asyncio.timeout(START_WAIT_SECONDS):
                await worker.started
        except (TimeoutError, OSError):
            self._retire(worker)
            self._no_worker(OSError("a parse worker did not start"))
            return None
        self._dispatch()
        return worker

    def _spawn(self) -> tuple[BaseProcess, socket.socket]:
        ours, theirs = socket.socketpair()
        try:
            process: BaseProcess = self._context.Process(
                target=_serve,
                args=(theirs, self.limits, self.memory_limit, self._parse, self.files_dir),
                daemon=True,
                name="mailtickets-parse",
            )
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return process, ours

    def _no_worker(self, error: BaseException) -> None:
        # Each failed start fails one waiting message (as if it had tried itself), unless a worker is up to
        # take them: waiting for other starts instead could wait for ever if every start fails.
        if not any(worker.ready for worker in self._workers):
            waiting = next((job for job in self._queue if not job.future.done()), None)
            if waiting is not None:
                self._queue.remove(waiting)
                waiting.fail(error)
        self._dispatch()

    def _answered(self, worker: _Worker, body: bytearray) -> None:
        if not worker.started.done():
            if body == _READY:
                worker.started.set_result(None)
            else:
                worker.started.set_exception(OSError("a parse worker did not start"))
            return
        worker.cancel_timers()
        if not worker.jobs:  # an answer nobody asked for: the wire's state is unknown
            self._retire(worker)
            return
        job = worker.jobs.popleft()
        if worker.jobs:
            self._arm(worker)
        try:
            outcome: ParseOutcome = pickle.loads(body)
        except Exception as exc:  # e.g. an answer that does not unpickle: that worker goes
            log.exception("parse worker answer unreadable; the message is quarantined")
            failure = ParseFailure(f"parse worker failure: {type(exc).__name__}: {exc}")
            self._replace(worker, job, lambda exit_code: failure)
            return
        if outcome == OUT_OF_MEMORY:  # the worker leaves after that answer
            self._replace(worker, job, lambda exit_code: OUT_OF_MEMORY)
            return
        job.settle(outcome)
        self._dispatch()

    def _timed_out(self, worker: _Worker) -> None:
        if worker.jobs and not worker.closed:
            job = worker.jobs[0]
            failure = ParseFailure(f"parsing took longer than parse_timeout_seconds ({self.timeout:g} s)")
            self._replace(worker, job, lambda exit_code: failure)

    def _lost(self, worker: _Worker) -> None:
        """Its socket closed or failed: the process died (or is dying)."""
        if worker.closed:
            return
        if not worker.started.done():
            worker.started.set_exception(OSError("a parse worker did not start"))
            return
        if not worker.jobs or worker.untouched:  # it died idle: no message it was sent reached it
            self._queue.extendleft(reversed(worker.jobs))
            worker.jobs.clear()
            self._retire(worker)
            self._dispatch()
            return
        self._replace(
            worker,
            worker.jobs[0],
            lambda code: ParseFailure(f"the parse worker died (exit code {code}): over parse_memory_limit_bytes?"),
        )

    def _retire(self, worker: _Worker) -> None:
        """Gone from the pool now; its process is killed and reaped off the loop."""
        if worker in self._workers:
            self._workers.remove(worker)
        worker.close()
        assert self._loop is not None
        self._keep(self._loop.run_in_executor(_PROCESSES, functools.partial(_stop_process, worker.process, kill=True)))

    def _replace(self, worker: _Worker, job: _Job, failure: Callable[[int | None], ParseFailure]) -> None:
        """The job fails with the worker, which goes; its replacement is ready before the job's caller hears.
        The messages sent after it were not read yet: they go back to the head of the queue."""
        with contextlib.suppress(ValueError):  # an answered job was taken off already
            worker.jobs.remove(job)
        self._queue.extendleft(reversed(worker.jobs))
        worker.jobs.clear()
        if worker in self._workers:
            self._workers.remove(worker)
        worker.close()
        self._starting += 1  # counted now, so that _dispatch does not start another meanwhile
        self._keep(self._fail_and_replace(worker, job, failure))

    async def _fail_and_replace(
        self, worker: _Worker, job: _Job, failure: Callable[[int | None], ParseFailure]
    ) -> None:
        loop = self._bind()
        await loop.run_in_executor(_PROCESSES, functools.partial(_stop_process, worker.process, kill=True))
        log.warning("parse worker %s replaced", worker.process.pid)
        await self._start()
        job.settle(failure(worker.process.exitcode))

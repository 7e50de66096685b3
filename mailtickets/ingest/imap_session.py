"""One IMAP connection, as the listener needs it: every command bounded in time, failures as two errors.

aioimaplib never fails pending commands when the connection drops, and its own timeout only covers
silence between lines; so each command here races the connection-lost signal and an overall deadline.
It has no STARTTLS either: `_StartTlsIMAP4` negotiates it on a plain stream, upgrades the socket and
hands it to aioimaplib's protocol as if the connection had just opened. That stream's `StreamWriter`
must live as long as the connection: later CPython 3.11 releases (3.11.7 here; not Debian's 3.11.2) added
a `StreamWriter.__del__` that closes its transport, which after `start_tls` is the TLS one aioimaplib reads.
Dropped, the writer sat in a reference cycle with its `StreamReaderProtocol`, and the next garbage
collection cut the connection (every few seconds under load: "connection lost; reconnecting").
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import ssl
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

import aioimaplib

from mailtickets.redact import guard_imap_logger
from mailtickets.settings import MailboxSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMAND_TIMEOUT_SECONDS = 30.0
TOKEN_COMMAND_TIMEOUT_SECONDS = 30.0
_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
_UID_ITEM = re.compile(rb"UID (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE_ITEM = re.compile(rb"RFC822\.SIZE (\d+)")
_STARTTLS_TAG = b"S0"
_EXISTS = re.compile(rb"^\* \d+ EXISTS")


class ImapError(Exception):
    """The connection or a command failed: reconnect with back-off."""


class ImapAuthError(ImapError):
    """The server refused the credentials: report clearly, retry slowly."""


def uid_set(uids: Iterable[int]) -> str:
    """Sorted UIDs → compact IMAP sequence set: [1, 2, 3, 7] → '1:3,7'."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """`UID FETCH (UID BODY.PEEK[])` reply → [(uid, raw)]; the UID may come before or after the body."""
    messages: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if _FETCH_LINE.match(line):
            if uid is not None and body is not None:
                messages.append((uid, body))
            uid, body = None, None
        found = _UID_ITEM.search(line)
        if found:
            uid = int(found.group(1))
    if uid is not None and body is not None:
        messages.append((uid, body))
    return messages


def parse_sizes(lines: Sequence[bytes | bytearray]) -> dict[int, int]:
    """`UID FETCH (UID RFC822.SIZE)` reply → {uid: size in bytes}."""
    sizes: dict[int, int] = {}
    for line in map(bytes, lines):
        uid, size = _UID_ITEM.search(line), _SIZE_ITEM.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def size_batches(uids: Sequence[int], sizes: dict[int, int], max_count: int, max_bytes: int) -> list[list[int]]:
    """UIDs in order, grouped so that each FETCH brings at most `max_count` mails and `max_bytes` bytes.

    A mail larger than `max_bytes` comes alone; one whose size the server did not say counts as 0.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and (len(current) >= max_count or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    return [*batches, current] if current else batches


def parse_uidvalidity(lines: Sequence[bytes | bytearray]) -> int:
    for line in lines:
        found = _UIDVALIDITY.search(bytes(line))
        if found:
            return int(found.group(1))
    raise ImapError("SELECT reply carries no UIDVALIDITY")


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, answering the challenge of a failed AUTHENTICATE, and noting every
    untagged EXISTS whatever command it comes with.

    A server refusing an XOAUTH2 token sends `+ <error>` and waits for an empty line before its NO;
    aioimaplib would wait forever, so a bad token looked like a timeout instead of a refused login.
    A server tells of new mail once: an EXISTS that comes outside IDLE (with a MOVE's answer, or between
    commands, where aioimaplib drops it) must still end the next IDLE at once, or that mail would wait
    for the IDLE renewal (25 minutes by default).
    """

    exists_seen = False

    def _untagged_response(self, line: bytes) -> Any:
        if _EXISTS.match(line):
            self.exists_seen = True
        return super()._untagged_response(line)

    def _continuation(self, line: bytes) -> None:
        pending = self.pending_sync_command
        if pending is not None and pending.name == "AUTHENTICATE":
            log.debug("AUTHENTICATE challenge (a refusal): %s", line[:200])
            self.transport.write(b"\r\n")
            return
        super()._continuation(line)


class _IMAP4(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib's client on `_Protocol`; implicit TLS when given an SSL context."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task: asyncio.Task[Any] = local_loop.create_task(self._connect(host, port, ssl_context))

    async def _connect(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self.protocol, host, port, ssl=context)


class _StartTlsIMAP4(_IMAP4):
    """aioimaplib's client over a connection upgraded with STARTTLS before the protocol sees it."""

    # The negotiation's streams, held for the connection's lifetime (see the module docstring).
    _plain_streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _connect(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        context = context or ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        reader, writer = await asyncio.open_connection(host, port)
        self._plain_streams = (reader, writer)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            writer.close()
            raise ImapError(f"unexpected greeting before STARTTLS: {greeting[:80]!r}")
        writer.write(_STARTTLS_TAG + b" STARTTLS\r\n")
        line = await reader.readline()
        while line and not line.startswith(_STARTTLS_TAG + b" "):
            line = await reader.readline()
        if not line.startswith(_STARTTLS_TAG + b" OK"):
            writer.close()
            raise ImapError(f"server refused STARTTLS: {line[:80]!r}")
        await writer.start_tls(context, server_hostname=host)
        transport = writer.transport
        transport.set_protocol(self.protocol)
        self.protocol.connection_made(transport)
        # No second greeting comes after STARTTLS; this one makes aioimaplib ask CAPABILITY afresh.
        self.protocol.data_received(b"* OK TLS negotiated\r\n")


def tls_context(mailbox: MailboxSettings) -> ssl.SSLContext:
    """Verifies the server's certificate and name: against `tls_ca_file` alone if set, else the system's CAs."""
    cafile = str(mailbox.tls_ca_file) if mailbox.tls_ca_file else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if not mailbox.tls_verify:  # explicitly asked for, per mailbox, and logged at start
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def oauth2_token(command: str) -> str:
    """Run the configured command; its first output line is the access token."""
    process = await asyncio.create_subprocess_exec(
        *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TOKEN_COMMAND_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        process.kill()
        raise ImapAuthError("oauth2_token_command timed out") from exc
    token = out.decode().strip().splitlines()[0] if out.strip() else ""
    if process.returncode != 0 or not token:
        detail = err.decode(errors="replace").strip()[:200]
        raise ImapAuthError(f"oauth2_token_command failed (exit {process.returncode}): {detail}")
    return token


class ImapSession:
    """A logged-in connection to one mailbox."""

    def __init__(self, mailbox: MailboxSettings, timeout: float = COMMAND_TIMEOUT_SECONDS) -> None:
        self.mailbox = mailbox
        self.timeout = timeout
        self._lost = asyncio.Event()
        guard_imap_logger()  # aioimaplib logs LOGIN/AUTHENTICATE at DEBUG with the secret readable
        self.client = self._make_client()

    def _make_client(self) -> aioimaplib.IMAP4:
        m = self.mailbox
        if m.security == "plain":
            return _IMAP4(m.host, m.port, timeout=self.timeout, conn_lost_cb=self._on_lost)
        cls = _StartTlsIMAP4 if m.security == "starttls" else _IMAP4  # "tls": TLS from the first byte
        return cls(m.host, m.port, timeout=self.timeout, conn_lost_cb=self._on_lost, ssl_context=tls_context(m))

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await one command, failing fast on connection loss and on an overall deadline."""
        command = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {command, lost}, timeout=timeout or self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
        if command not in done:
            command.cancel()
            raise ImapError("connection lost" if lost in done else "command timed out")
        try:
            return command.result()
        except (aioimaplib.AioImapException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise ImapError(f"{type(exc).__name__}: {exc}") from exc

    async def ok(self, awaitable: Awaitable[aioimaplib.Response], what: str) -> aioimaplib.Response:
        response = await self.call(awaitable)
        if response.result != "OK":
            raise ImapError(f"{what} failed: {response.result} {_text(response.lines)}")
        return response

    async def open(self, *, read_only: bool = False) -> int:
        """Connect, authenticate, create the target folders, select the watched one; → UIDVALIDITY.

        `read_only` (backfill) creates nothing and opens the folder with EXAMINE, which leaves every flag
        alone, \\Recent included; SELECT would take \\Recent from the mail client that should see it.
        """
        m = self.mailbox
        await self.call(self.client.wait_hello_from_server())
        if m.oauth2_token_command:
            token = await oauth2_token(m.oauth2_token_command)
            response = await self.call(self.client.xoauth2(m.username, token))
        else:
            response = await self.call(self.client.login(m.username, m.login_password()))
        if response.result != "OK":
            raise ImapAuthError(f"authentication refused for {m.username}: {_text(response.lines)}")
        await self.call(self.client.protocol.capability())
        if read_only:
            return await self._examine(m.folder)
        for folder in {m.processed_folder, m.quarantine_folder} - {m.folder}:
            await self.ensure_folder(folder)
        selected = await self.ok(self.client.select(_q(m.folder)), "SELECT")
        return parse_uidvalidity(selected.lines)

    async def _examine(self, folder: str) -> int:
        examined = await self.ok(self.client.examine(_q(folder)), "EXAMINE")
        # aioimaplib only tracks SELECT; without this it refuses UID SEARCH/FETCH after EXAMINE.
        self.client.protocol.state = aioimaplib.SELECTED
        return parse_uidvalidity(examined.lines)

    async def ensure_folder(self, folder: str) -> None:
        response = await self.call(self.client.create(_q(folder)))
        if response.result != "OK" and b"ALREADYEXISTS" not in b" ".join(map(bytes, response.lines)):
            listed = await self.ok(self.client.list('""', _q(folder)), "LIST")
            if not any(line.rstrip().endswith(folder.encode()) for line in map(bytes, listed.lines[:-1])):
                raise ImapError(f"cannot create folder {folder!r}: {_text(response.lines)}")

    def has(self, capability: str) -> bool:
        return bool(self.client.has_capability(capability))

    async def uids_after(self, last_uid: int) -> list[int]:
        self.client.protocol.exists_seen = False  # what comes from now on is found by this search or the next
        response = await self.ok(self.client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH")
        words = b" ".join(bytes(line) for line in response.lines[:-1]).split()
        # `n:*` always matches the highest UID, even one below n: filter.
        return sorted(uid for uid in (int(w) for w in words if w.isdigit()) if uid > last_uid)

    async def batches(self, uids: Sequence[int], max_count: int, max_bytes: int) -> list[list[int]]:
        """The UIDs grouped for fetching, bounded in count and in bytes (sizes asked first, in one command)."""
        return [batch for batch, _ in await self.sized_batches(uids, max_count, max_bytes)]

    async def sized_batches(self, uids: Sequence[int], max_count: int, max_bytes: int) -> list[tuple[list[int], int]]:
        """As `batches`, each with its size in bytes as the server gives it."""
        if not uids:
            return []
        response = await self.ok(self.client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)"), "UID FETCH")
        sizes = parse_sizes(response.lines)
        batches = size_batches(uids, sizes, max_count, max_bytes)
        return [(batch, sum(sizes.get(uid, 0) for uid in batch)) for batch in batches]

    async def fetch(self, uids: Sequence[int]) -> list[tuple[int, bytes]]:
        response = await self.ok(self.client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])"), "UID FETCH")
        return parse_fetch(response.lines)

    async def move(self, uids: Sequence[int], folder: str) -> None:
        """Move messages out of the selected folder: MOVE if offered, else COPY + \\Deleted + expunge."""
        which = uid_set(uids)
        if self.has("MOVE"):
            await self.ok(self.client.uid("move", which, _q(folder)), "UID MOVE")
            return
        await self.ok(self.client.uid("copy", which, _q(folder)), "UID COPY")
        await self.ok(self.client.uid("store", which, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        if self.has("UIDPLUS"):
            await self.ok(self.client.uid("expunge", which), "UID EXPUNGE")
        else:  # expunges every \Deleted message in the folder: the best a server without UIDPLUS allows
            await self.ok(self.client.expunge(), "EXPUNGE")

    async def flag_seen(self, uids: Sequence[int]) -> None:
        await self.ok(self.client.uid("store", uid_set(uids), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")

    async def noop(self) -> None:
        await self.ok(self.client.noop(), "NOOP")

    async def idle(self, seconds: float, stop: asyncio.Event) -> None:
        """IDLE until the server reports new mail, `seconds` pass (renewal) or `stop` is set.

        Returns at once, without IDLE, if new mail was reported since the last search."""
        if self.client.protocol.exists_seen:
            return
        idle_task = await self.call(self.client.idle_start(timeout=seconds))
        try:
            await self._wait_for_exists(seconds, stop)
        finally:
            if self.client.has_pending_idle() and not self._lost.is_set():
                self.client.idle_done()
                await self.call(idle_task)

    async def _wait_for_exists(self, seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            limit = seconds + self.timeout
            lines = await self.call(_push_or_stop(self.client, limit, stop), limit)
            if lines is None or lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return
            if any(b"EXISTS" in bytes(x) for x in lines):
                return

    async def logout(self) -> None:
        """Best effort: the connection may already be gone."""
        if self._lost.is_set():
            return
        try:
            await self.call(self.client.logout(), timeout=5.0)
        except ImapError as exc:
            log.debug("logout from %s failed: %s", self.mailbox.name, exc)


async def _push_or_stop(client: aioimaplib.IMAP4, timeout: float, stop: asyncio.Event) -> Any:
    """The next untagged push during IDLE, or None once `stop` is set."""
    push = asyncio.ensure_future(client.wait_server_push(timeout=timeout))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({push, stopping}, return_when=asyncio.FIRST_COMPLETED)
        return push.result() if push.done() else None
    finally:
        push.cancel()
        stopping.cancel()


def _q(name: str) -> str:
    return str(aioimaplib.quoted(name))


def _text(lines: Sequence[bytes | bytearray]) -> str:
    return b" ".join(bytes(x) for x in lines).decode(errors="replace")[:200]

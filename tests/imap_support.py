"""Helpers for the IMAP tests: pymap as a subprocess (restartable) and Dovecot if running.

Dovecot is started by `.ci/dovecot/start.sh`, which prints MAILTICKETS_TEST_DOVECOT=host:port:user:password.
Each test works in its own folders (`t<random>`, `t<random>-done`, ...) so tests share one server safely.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.errors import TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.models import Client, ClientDomain, Outcome
from mailtickets.settings import MailboxSettings

PYMAP_USER, PYMAP_PASSWORD = "u", "p"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class PymapProcess:
    """`pymap ... dict` on a fixed loopback port; `restart()` drops every mailbox (it is in memory)."""

    def __init__(self, port: int, tls: tuple[Path, Path] | None = None, password: str = PYMAP_PASSWORD) -> None:
        self.port = port
        self.password = password
        self.tls = ["--cert", str(tls[0]), "--key", str(tls[1])] if tls else ["--no-tls"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # pymap's entry point run by this interpreter: a venv may lack the `pymap` script beside it.
        pymap = [sys.executable, "-c", "from pymap.main import main; main()"]
        self.process = subprocess.Popen(
            [*pymap, "--host", "127.0.0.1", "--port", str(self.port), *self.tls, "dict",
             "--demo-user", PYMAP_USER, "--demo-password", self.password],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class ImapServer:
    """A running server and one user; `restart` is None where the test cannot restart it."""

    kind: str
    host: str
    port: int
    user: str
    password: str
    pymap: PymapProcess | None = None
    prefix: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:8])

    def mailbox(self, **overrides: object) -> MailboxSettings:
        values: dict[str, object] = {
            "name": self.prefix, "host": self.host, "port": self.port, "security": "plain",
            "username": self.user, "password": self.password, "folder": self.prefix,
            "processed_folder": f"{self.prefix}-done", "quarantine_folder": f"{self.prefix}-quarantine",
            "poll_interval_seconds": 0.2,
        }  # fmt: skip
        values.update(overrides)
        return MailboxSettings.model_validate(values)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        # Without TCP_NODELAY each APPEND waits ~40 ms on Nagle + delayed ACK.
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.login(self.user, self.password)
        return client

    def create(self, folder: str) -> None:
        with self.client() as c:
            c.create(f'"{folder}"')

    def delete(self, folder: str) -> None:
        with self.client() as c:
            c.delete(f'"{folder}"')

    def append(self, folder: str, *messages: bytes) -> None:
        with self.client() as c:
            for raw in messages:
                status, detail = c.append(f'"{folder}"', None, None, raw)
                if status != "OK":
                    raise RuntimeError(f"APPEND failed: {detail}")

    def uids(self, folder: str) -> list[int]:
        with self.client() as c:
            c.select(f'"{folder}"')
            _status, data = c.uid("SEARCH", "ALL")
            return [int(x) for x in (data[0] or b"").split()]

    def flags(self, folder: str) -> list[bytes]:
        with self.client() as c:
            c.select(f'"{folder}"')
            _status, data = c.fetch("1:*", "(FLAGS)")
            return [x for x in data if isinstance(x, bytes)]

    def recent(self, folder: str) -> int:
        """How many messages a new SELECT sees as \\Recent (and so takes: call it last)."""
        with self.client() as c:
            c.select(f'"{folder}"')
            return int((c.untagged_responses.get("RECENT") or [b"0"])[-1])

    async def a_append(self, folder: str, *messages: bytes) -> None:
        await asyncio.to_thread(self.append, folder, *messages)

    async def a_uids(self, folder: str) -> list[int]:
        return await asyncio.to_thread(self.uids, folder)


@dataclass(frozen=True)
class TlsPymap:
    """pymap offering STARTTLS with a certificate for 127.0.0.1 signed by a throwaway CA (`ca_file`)."""

    server: ImapServer
    ca_file: Path


@asynccontextmanager
async def tls_relay(upstream_port: int, cert: Path, key: Path) -> AsyncIterator[int]:
    """Implicit TLS in front of a plain server on loopback (pymap has none); yields the relay's port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    relay = await asyncio.start_server(partial(_relay, upstream_port), "127.0.0.1", 0, ssl=context)
    async with relay:
        yield relay.sockets[0].getsockname()[1]


async def _relay(upstream_port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        sink.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


def make_message(n: int, sender: str = "alice@example.com", extra_headers: str = "") -> bytes:
    """One small test message with a stable Message-ID per n."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@helpdesk.test"
    msg["Subject"] = f"Printer {n} is on fire"
    msg["Message-ID"] = f"<m{n}.{uuid.uuid4().hex[:6]}@example.com>"
    for line in filter(None, extra_headers.splitlines()):
        key, _, value = line.partition(":")
        msg[key.strip()] = value.strip()
    msg.set_content(f"Message number {n}.\n")
    return msg.as_bytes(policy=SMTP)


class FakeIngestor:
    """Records what the listener delivers; dedupes by raw bytes like the real pipeline does by key.

    `fail_times` makes the next N calls raise TemporaryError (store unavailable).  Messages with an
    `X-Test-Quarantine` header come back quarantined.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[bytes] = []
        self.seen: set[bytes] = set()
        self.fail_times = 0
        self.delay = delay
        self.changed = asyncio.Event()
        self.started = asyncio.Event()  # set when the first message comes in (before the delay)

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        self.started.set()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TemporaryError("fake store unavailable")
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.append(raw)
        self.changed.set()
        if raw in self.seen:
            return IngestResult(Outcome.DUPLICATE, None, None, None)
        self.seen.add(raw)
        outcome = Outcome.QUARANTINED if b"X-Test-Quarantine" in raw else Outcome.CREATED
        return IngestResult(outcome, None, None, None)

    async def wait_for(self, count: int, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.seen) < count:
                self.changed.clear()
                await self.changed.wait()


def restart_dovecot(port: int) -> None:
    """Stop the test Dovecot (its clients get BYE) and start it again from the same config; mail is kept."""
    config = os.environ.get("MAILTICKETS_TEST_DOVECOT_CONFIG")
    if not config:
        raise RuntimeError("MAILTICKETS_TEST_DOVECOT_CONFIG is not set (see .ci/dovecot/start.sh)")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # the daemon would hold a pipe open
    subprocess.run(["dovecot", "-c", config, "stop"], check=True, **quiet)
    deadline = time.monotonic() + 10
    while subprocess.run(["dovecot", "-c", config], check=False, **quiet).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("Dovecot did not start again")
        time.sleep(0.1)  # the old master is still shutting down
    wait_for_port(port)


def dovecot_from_env() -> ImapServer | None:
    spec = os.environ.get("MAILTICKETS_TEST_DOVECOT")
    if not spec:
        return None
    host, port, user, password = spec.split(":", 3)
    return ImapServer("dovecot", host, int(port), user, password)


async def add_example_client(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A client owning example.com, so that mail from *@example.com becomes tickets."""
    async with sessions() as session, session.begin():
        session.add(Client(name="Example Ltd", domains=[ClientDomain(domain="example.com")]))

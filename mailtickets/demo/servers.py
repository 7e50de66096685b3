"""The demo's embedded servers: pymap's in-memory IMAP server in this event loop and an aiosmtpd sink.

Both listen on 127.0.0.1 only, on free ports, and hold everything in memory.
"""

from __future__ import annotations

import imaplib
import socket
import threading
from argparse import ArgumentParser
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymap.backend.dict import DictBackend
from pymap.imap import IMAPService

LOOPBACK = "127.0.0.1"
IMAP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ImapAccount:
    port: int
    user: str
    password: str


async def start_pymap(stack: AsyncExitStack, account: ImapAccount) -> None:
    """pymap's dict backend with one user, served on this loop until `stack` closes."""
    parser = ArgumentParser(add_help=False)
    IMAPService.add_arguments(parser)
    backends = parser.add_subparsers(dest="backend")
    DictBackend.add_subparser("dict", backends)
    parser.set_defaults(debug=False, skip_services=[], passlib_cfg=None)
    args = parser.parse_args(
        ["--host", LOOPBACK, "--port", str(account.port), "--no-tls", "dict",
         f"--demo-user={account.user}", f"--demo-password={account.password}"]  # "=": a value may start with "-"
    )  # fmt: skip
    backend, config = await DictBackend.init(args)
    config.apply_context()
    await backend.start(stack)
    await IMAPService(backend, config).start(stack)


class ImapClient:
    """Blocking helper for what a mail client would do (create folders, deliver mail); run it in a thread."""

    def __init__(self, account: ImapAccount) -> None:
        self.account = account

    def _connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(LOOPBACK, self.account.port, timeout=IMAP_TIMEOUT_SECONDS)
        client.login(self.account.user, self.account.password)
        return client

    def create(self, *folders: str) -> None:
        with self._connect() as client:
            for folder in folders:
                client.create(f'"{folder}"')

    def append(self, folder: str, raw: bytes) -> None:
        with self._connect() as client:
            status, detail = client.append(f'"{folder}"', None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND to {folder} refused: {detail!r}")


@dataclass
class SinkHandler:
    """Records every mail that reaches the SMTP sink, in order of arrival."""

    received: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.received.append((recipient, content))
        return "250 OK"

    def messages(self) -> list[tuple[str, EmailMessage]]:
        with self.lock:
            items = list(self.received)
        return [(rcpt, _parse(raw)) for rcpt, raw in items]


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    if not isinstance(message, EmailMessage):
        raise TypeError("policy.default yields EmailMessage")
    return message


class SmtpSink:
    """aiosmtpd on 127.0.0.1 (its own thread); `url` is what the outbox sender is told."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname=LOOPBACK, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

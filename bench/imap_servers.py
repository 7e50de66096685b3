"""Shared by the IMAP benchmarks: a pymap subprocess or the Dovecot of MAILTICKETS_TEST_DOVECOT, a migrated
SQLite store with a client owning example.com, message generation and bulk APPEND."""

from __future__ import annotations

import imaplib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Client, ClientDomain
from mailtickets.settings import MailboxSettings, Settings


@dataclass
class Server:
    kind: str
    host: str
    port: int
    user: str
    password: str

    def mailbox(self, folder: str) -> MailboxSettings:
        return MailboxSettings(
            name=folder, host=self.host, port=self.port, security="plain", username=self.user,
            password=self.password, folder=folder, processed_folder=f"{folder}-done",
            quarantine_folder=f"{folder}-quarantine",
        )  # fmt: skip

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port)
        # Without TCP_NODELAY each APPEND waits ~40 ms on Nagle + delayed ACK.
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.login(self.user, self.password)
        return client

    def append(self, folder: str, messages: list[bytes]) -> None:
        with self.client() as c:
            c.create(f'"{folder}"')
            for raw in messages:
                c.append(f'"{folder}"', None, None, raw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def imap_server(kind: str) -> Iterator[Server]:
    if kind == "dovecot":
        spec = os.environ.get("MAILTICKETS_TEST_DOVECOT")
        if not spec:
            sys.exit('dovecot: set MAILTICKETS_TEST_DOVECOT (eval "$(.ci/dovecot/start.sh)")')
        host, port, user, password = spec.split(":", 3)
        yield Server("dovecot", host, int(port), user, password)
        return
    port = _free_port()
    pymap = str(Path(sys.executable).with_name("pymap"))
    args = [pymap, "--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict", "--demo-user", "u",
            "--demo-password", "p"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Server("pymap", "127.0.0.1", port, "u", "p")
    finally:
        process.kill()
        process.wait()


def message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"user{n % 50}@example.com"
    msg["To"] = "support@helpdesk.example"
    msg["Subject"] = f"Benchmark message {n}"
    msg["Message-ID"] = f"<bench{n}.{uuid.uuid4().hex[:8]}@example.com>"
    msg.set_content(f"Hello,\n\nthis is message {n}.\n\nRegards\n" + "Some text. " * 40)
    return msg.as_bytes(policy=SMTP)


async def store(directory: Path) -> tuple[Settings, AsyncEngine]:
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url, data_dir=directory / "data", support_address="support@helpdesk.example",
        smtp_url="smtp://127.0.0.1:1",
    )  # fmt: skip
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        session.add(Client(name="Example", domains=[ClientDomain(domain="example.com")]))
    return settings, engine

"""Soak: every security mode (plain, STARTTLS, implicit TLS) on pymap and Dovecot, all at once, for over a
minute with garbage collections forced, through the real pipeline.

The STARTTLS connection used to die at the first collection after connecting (a dropped StreamWriter
closed the TLS transport): each reconnect then fetched the unmoved mail again. Here every listener must
stay on its first connection, every mail appended during the minute must become exactly one ticket, and
every watched folder must end empty. The six listeners run concurrently to keep CI time to one minute.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from conftest import Store
from imap_support import (
    PYMAP_PASSWORD,
    PYMAP_USER,
    ImapServer,
    PymapProcess,
    add_example_client,
    free_port,
    make_message,
    tls_relay,
)
from sqlalchemy import func, select

from mailtickets.clock import SystemClock
from mailtickets.ingest.imap import CONNECTED, MailboxListener
from mailtickets.ingest.leases import Leases
from mailtickets.models import InboundMail, Outcome, Ticket
from mailtickets.settings import MailboxSettings

pytest_plugins = ["imap_fixtures"]

SOAK_SECONDS = float(os.environ.get("MAILTICKETS_SOAK_SECONDS", "62"))
APPEND_EVERY_SECONDS = 4.0
COLLECT_EVERY_SECONDS = 1.5
ROOT = Path(__file__).parent.parent


@dataclass(frozen=True)
class Ca:
    cert: Path
    key: Path
    ca_file: Path


@dataclass
class Mode:
    """One listener under soak: a server, how it connects, and what was appended to its folder."""

    label: str
    server: ImapServer
    mailbox: MailboxSettings
    appended: list[str] = field(default_factory=list)  # Message-IDs, without <>
    appended_at: list[float] = field(default_factory=list)  # seconds into the soak
    left_connected: int = 0  # samples taken while connected in which it was not


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    directory = tmp_path_factory.mktemp("ca")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    found = Ca(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(found.cert))
    issued.private_key_pem.write_to_path(str(found.key))
    authority.cert_pem.write_to_path(str(found.ca_file))
    return found


@pytest.fixture(scope="module")
def tls_dovecot(ca: Ca) -> Iterator[tuple[ImapServer, int]]:
    """A private Dovecot offering STARTTLS and implicit TLS (.ci/dovecot/start.sh with a certificate)."""
    if subprocess.run(["sh", "-c", "command -v dovecot"], capture_output=True, check=False).returncode != 0:
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("starting a private Dovecot needs root (its maildir is chowned to the dovecot user)")
    env = {**os.environ, "DOVECOT_TLS_CERT": str(ca.cert), "DOVECOT_TLS_KEY": str(ca.key)}
    started = subprocess.run(
        ["bash", str(ROOT / ".ci" / "dovecot" / "start.sh")], env=env, capture_output=True, text=True, check=True
    )
    exported = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
    host, port, user, password = exported["MAILTICKETS_TEST_DOVECOT"].split(":", 3)
    yield ImapServer("dovecot", host, int(port), user, password), int(exported["MAILTICKETS_TEST_DOVECOT_IMAPS_PORT"])
    subprocess.run(["dovecot", "-c", exported["MAILTICKETS_TEST_DOVECOT_CONFIG"], "stop"], check=False)


@pytest.fixture
def starttls_pymap_process(ca: Ca) -> Iterator[PymapProcess]:
    process = PymapProcess(free_port(), tls=(ca.cert, ca.key))
    process.start()
    yield process
    process.stop()


def _pymap(port: int) -> ImapServer:
    return ImapServer("pymap", "127.0.0.1", port, PYMAP_USER, PYMAP_PASSWORD)


def _dovecot(like: ImapServer) -> ImapServer:
    return ImapServer("dovecot", like.host, like.port, like.user, like.password)  # a fresh folder prefix


@asynccontextmanager
async def _modes(
    stack: AsyncExitStack, ca: Ca, pymap: PymapProcess, starttls_pymap: PymapProcess, dovecot: tuple[ImapServer, int]
) -> AsyncIterator[list[Mode]]:
    """pymap has no implicit TLS: a loopback TLS relay with the same certificate stands in front of it."""
    relay_port = await stack.enter_async_context(tls_relay(pymap.port, ca.cert, ca.key))
    dovecot_server, imaps_port = dovecot
    plain, starttls, tls = _pymap(pymap.port), _pymap(starttls_pymap.port), _pymap(pymap.port)
    d_plain, d_starttls, d_tls = _dovecot(dovecot_server), _dovecot(dovecot_server), _dovecot(dovecot_server)
    yield [
        Mode("pymap plain", plain, plain.mailbox()),
        Mode("pymap starttls", starttls, starttls.mailbox(security="starttls", tls_ca_file=ca.ca_file)),
        Mode("pymap tls", tls, tls.mailbox(security="tls", port=relay_port, tls_ca_file=ca.ca_file)),
        Mode("dovecot plain", d_plain, d_plain.mailbox()),
        Mode("dovecot starttls", d_starttls, d_starttls.mailbox(security="starttls", tls_ca_file=ca.ca_file)),
        Mode("dovecot tls", d_tls, d_tls.mailbox(security="tls", port=imaps_port, tls_ca_file=ca.ca_file)),
    ]


@pytest.mark.slow
async def test_every_security_mode_stays_connected_through_garbage_collections(
    ca: Ca,
    pymap_process: PymapProcess,
    starttls_pymap_process: PymapProcess,
    tls_dovecot: tuple[ImapServer, int],
    sqlite_store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mailtickets.ingest.imap")
    await add_example_client(sqlite_store.sessions)
    stop = asyncio.Event()
    pipeline = sqlite_store.pipeline()
    leases = Leases(sqlite_store.sessions, SystemClock(), owner="soak", seconds=30)
    async with AsyncExitStack() as stack:
        modes = await stack.enter_async_context(_modes(stack, ca, pymap_process, starttls_pymap_process, tls_dovecot))
        for mode in modes:
            await asyncio.to_thread(mode.server.create, mode.mailbox.folder)
        listeners = [
            MailboxListener(mode.mailbox, pipeline, sqlite_store.sessions, leases, idle_renew_seconds=600, stop=stop)
            for mode in modes
        ]
        tasks = [asyncio.create_task(listener.run()) for listener in listeners]
        try:
            async with asyncio.timeout(20):
                await asyncio.gather(*(listener.connected.wait() for listener in listeners))
            soaked = await _soak(modes, listeners)
            await _wait_until_all_empty(modes)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

    assert soaked >= SOAK_SECONDS
    for mode, listener in zip(modes, listeners, strict=True):
        assert mode.left_connected == 0, f"{mode.label}: disconnected during the soak ({listener.status})"
        # Mail came throughout (fewer rounds on a loaded machine: each APPEND is a new login).
        assert len(mode.appended) >= 3 and mode.appended_at[-1] >= SOAK_SECONDS / 2, (mode.label, mode.appended_at)
        assert await mode.server.a_uids(mode.mailbox.folder) == [], f"{mode.label}: mail left in the folder"
        done = await mode.server.a_uids(mode.mailbox.processed_folder)
        assert len(done) == len(mode.appended), f"{mode.label}: {len(done)} moved of {len(mode.appended)}"
    await _assert_one_ticket_per_mail(sqlite_store, modes)
    reconnects = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert reconnects == []
    connects = [r for r in caplog.records if ": connected, catching up" in r.getMessage()]
    assert len(connects) == len(modes), [r.getMessage() for r in connects]


async def _soak(modes: list[Mode], listeners: list[MailboxListener]) -> float:
    """Append to every folder every few seconds and collect garbage often, for SOAK_SECONDS; → seconds."""
    started = time.monotonic()
    next_append = started
    n = 0
    while (now := time.monotonic()) - started < SOAK_SECONDS:
        if now >= next_append:
            n += 1
            await asyncio.gather(*(_append(mode, n, now - started) for mode in modes))
            next_append += APPEND_EVERY_SECONDS
        gc.collect()  # the collection that used to close the STARTTLS transport
        await asyncio.sleep(COLLECT_EVERY_SECONDS)
        for mode, listener in zip(modes, listeners, strict=True):
            mode.left_connected += listener.status != CONNECTED
    return time.monotonic() - started


async def _append(mode: Mode, n: int, at: float) -> None:
    raw = make_message(n, sender=f"soak{n}@example.com")
    message_id = raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()  # stored without <>
    await mode.server.a_append(mode.mailbox.folder, raw)
    mode.appended.append(message_id)
    mode.appended_at.append(round(at, 1))


async def _wait_until_all_empty(modes: list[Mode], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        for mode in modes:
            while await mode.server.a_uids(mode.mailbox.folder):
                await asyncio.sleep(0.1)


async def _assert_one_ticket_per_mail(store: Store, modes: list[Mode]) -> None:
    appended = [message_id for mode in modes for message_id in mode.appended]
    async with store.sessions() as session:
        rows = (await session.execute(select(InboundMail.message_id, InboundMail.outcome))).all()
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
    assert sorted(message_id for message_id, _ in rows) == sorted(appended)  # each once: no duplicate record
    assert {outcome for _, outcome in rows} == {Outcome.CREATED}
    assert tickets == len(appended)

"""The IMAP listener against real servers (pymap always, Dovecot when running), with a FakeIngestor."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from conftest import Store
from imap_support import (
    FakeIngestor,
    ImapServer,
    TlsPymap,
    dovecot_from_env,
    make_message,
    restart_dovecot,
    tls_relay,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.clock import SystemClock
from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.ingest.imap import AUTH_RETRY_SECONDS, CONNECTED, STANDBY, Backoff, MailboxListener
from mailtickets.ingest.imap_session import ImapAuthError, ImapSession
from mailtickets.ingest.leases import Leases
from mailtickets.ingest.result import IngestResult
from mailtickets.settings import MailboxSettings

pytest_plugins = ["imap_fixtures"]

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


class NoIdleSession(ImapSession):
    """A real session that pretends the server offers neither IDLE nor MOVE (NOOP polling, COPY path)."""

    def has(self, capability: str) -> bool:
        return capability not in {"IDLE", "MOVE"} and super().has(capability)


class Run:
    def __init__(self, mailbox: MailboxSettings, ingestor: FakeIngestor, sessions: Sessions,
                 **kwargs: object) -> None:  # fmt: skip
        self.stop = asyncio.Event()
        self.ingestor = ingestor
        owner = str(kwargs.pop("owner", "test"))
        renew = float(kwargs.pop("idle_renew_seconds", 60))  # type: ignore[arg-type]
        leases = Leases(sessions, SystemClock(), owner=owner, seconds=3)
        self.listener = MailboxListener(
            mailbox, ingestor, sessions, leases, idle_renew_seconds=renew, stop=self.stop,
            backoff=Backoff(base=0.05, cap=0.5), **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
        self.task: asyncio.Task[None] | None = None


@asynccontextmanager
async def running(
    mailbox: MailboxSettings, ingestor: FakeIngestor, sessions: Sessions, **kwargs: object
) -> AsyncIterator[Run]:
    run = Run(mailbox, ingestor, sessions, **kwargs)
    run.task = asyncio.create_task(run.listener.run())
    try:
        yield run
    finally:
        run.stop.set()
        if not run.task.done():
            await asyncio.wait_for(run.task, 10)


async def wait_until_empty(server: ImapServer, folder: str, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while await server.a_uids(folder):
            await asyncio.sleep(0.05)


async def test_catch_up_then_move_after_commit(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, *(make_message(n) for n in range(5)))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(5)
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(ingestor.received) == 5
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 5


async def test_mail_already_read_in_another_client_is_still_processed(
    imap_server: ImapServer, sessions: Sessions
) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    with imap_server.client() as client:
        client.append(f'"{mailbox.folder}"', r"(\Seen)", None, make_message(1))
    assert b"\\Seen" in (await asyncio.to_thread(imap_server.flags, mailbox.folder))[0]
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(1)
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(ingestor.received) == 1


async def test_idle_push_is_picked_up(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await asyncio.sleep(0.2)  # let IDLE start
        raw = make_message(1)
        await imap_server.a_append(mailbox.folder, raw)
        await ingestor.wait_for(1, seconds=5)
        await wait_until_empty(imap_server, mailbox.folder)
    assert ingestor.received == [raw]


class CountingSession(ImapSession):
    """A real session that counts its connections and IDLE commands."""

    opened = 0
    idles = 0

    async def open(self, *, read_only: bool = False) -> int:
        CountingSession.opened += 1
        return await super().open(read_only=read_only)

    async def idle(self, seconds: float, stop: asyncio.Event) -> None:
        CountingSession.idles += 1
        await super().idle(seconds, stop)


async def test_idle_is_renewed_on_the_same_connection(
    imap_server: ImapServer, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CountingSession, "opened", 0)
    monkeypatch.setattr(CountingSession, "idles", 0)
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions, connect=CountingSession, idle_renew_seconds=0.3) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await asyncio.sleep(1.6)
        await imap_server.a_append(mailbox.folder, make_message(1))
        await ingestor.wait_for(1, seconds=5)
    assert CountingSession.idles >= 4 and CountingSession.opened == 1


async def test_quarantined_mail_goes_to_quarantine_folder(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, make_message(1, extra_headers="X-Test-Quarantine: yes"), make_message(2))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(2)
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(await imap_server.a_uids(mailbox.quarantine_folder)) == 1
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 1


async def test_flag_mode_keeps_mail_and_never_reprocesses(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox(after_processing="flag")
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, make_message(1), make_message(2))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions) as run:
        await ingestor.wait_for(2)
        await asyncio.wait_for(run.listener.connected.wait(), 10)
    async with running(mailbox, ingestor, sessions) as run:  # a restart reads last_uid from the database
        await asyncio.wait_for(run.listener.connected.wait(), 10)
    assert len(ingestor.received) == 2
    flags = await asyncio.to_thread(imap_server.flags, mailbox.folder)
    assert len(flags) == 2 and all(b"\\Seen" in f for f in flags)


async def test_uidvalidity_change_rereads_folder(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox(after_processing="flag")
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    first = make_message(1)
    await imap_server.a_append(mailbox.folder, first)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(1)
    await asyncio.to_thread(imap_server.delete, mailbox.folder)
    await asyncio.to_thread(imap_server.create, mailbox.folder)  # new UIDVALIDITY, UIDs restart at 1
    second = make_message(2)
    await imap_server.a_append(mailbox.folder, first, second)
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(2)
    # The old message came again (the pipeline answers "duplicate"); the new one was not missed.
    assert ingestor.received == [first, first, second]


async def test_temporary_error_leaves_message_and_retries(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, make_message(1))
    ingestor = FakeIngestor()
    ingestor.fail_times = 2
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(1)
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(ingestor.received) == 1
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 1


async def test_without_idle_and_move_polls_and_copies(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions, connect=NoIdleSession) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await imap_server.a_append(mailbox.folder, make_message(1), make_message(2))
        await ingestor.wait_for(2)
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 2


async def test_server_restart_mid_idle_is_survived(restartable_imap_server: ImapServer, sessions: Sessions) -> None:
    server = restartable_imap_server
    mailbox = server.mailbox()
    await asyncio.to_thread(server.create, mailbox.folder)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await asyncio.sleep(0.2)
        await asyncio.to_thread(restart_imap_server, server)
        await asyncio.to_thread(server.create, mailbox.folder)  # pymap's dict backend forgets everything
        await server.a_append(mailbox.folder, make_message(1))
        await ingestor.wait_for(1, seconds=15)
        await wait_until_empty(server, mailbox.folder)


def restart_imap_server(server: ImapServer) -> None:
    if server.pymap is not None:
        server.pymap.restart()
    else:
        restart_dovecot(server.port)


async def test_stop_leaves_idle_promptly_and_releases_lease(imap_server: ImapServer, sessions: Sessions) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await asyncio.sleep(0.2)
        run.stop.set()
        await asyncio.wait_for(asyncio.shield(run.task), 3)  # type: ignore[arg-type]
    other = Leases(sessions, SystemClock(), owner="other", seconds=6)
    assert await other.try_acquire(run.listener.lease_name)


async def test_stop_finishes_the_batch_in_hand_of_a_slow_faked_pipeline_and_leaves_the_rest(
    imap_server: ImapServer, sessions: Sessions
) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    ingestor = FakeIngestor(delay=1.0)
    async with running(mailbox, ingestor, sessions) as run:
        await asyncio.wait_for(run.listener.connected.wait(), 10)
        await asyncio.sleep(0.2)  # in IDLE
        await imap_server.a_append(mailbox.folder, make_message(0))
        await asyncio.wait_for(ingestor.started.wait(), 5)  # the first message is in the (slow) pipeline now
        await imap_server.a_append(mailbox.folder, *(make_message(n) for n in range(1, 3)))
        run.stop.set()
        await asyncio.wait_for(asyncio.shield(run.task), 5)  # type: ignore[arg-type]
    assert len(ingestor.received) == 1
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 1  # settled before logging out
    assert len(await imap_server.a_uids(mailbox.folder)) == 2  # the rest waits for the next start


async def test_wrong_password_is_reported_without_the_password(
    imap_server: ImapServer, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox = imap_server.mailbox(password="wrong-secret-pw")
    caplog.set_level(logging.DEBUG)
    async with running(mailbox, FakeIngestor(), sessions) as run:
        async with asyncio.timeout(10):
            while "login refused" not in caplog.text:
                await asyncio.sleep(0.05)
        status = run.listener.status
    assert "wrong-secret-pw" not in caplog.text
    assert status.startswith("login refused") and "wrong-secret-pw" not in status
    assert f"retry in {AUTH_RETRY_SECONDS:.0f} s" in caplog.text  # slowly, not in a tight loop


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(3))
    delays = [backoff.next() for _ in range(6)]
    for delay, step in zip(delays, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0], strict=True):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # jittered: no two reconnects in lockstep
    backoff.reset()
    assert backoff.next() <= 1.0


async def test_second_instance_takes_over_when_the_holder_dies(imap_server: ImapServer, store: Store) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    async with (
        running(mailbox, FakeIngestor(), store.sessions, owner="a") as a,
        running(mailbox, FakeIngestor(), store.sessions, owner="b") as b,
    ):
        # Either may win the lease (on PostgreSQL the two race through real round trips): the winner holds.
        async with asyncio.timeout(10):
            while not (a.listener.connected.is_set() or b.listener.connected.is_set()):
                await asyncio.sleep(0.02)
        holder, standby = (a, b) if a.listener.connected.is_set() else (b, a)
        await asyncio.sleep(1.0)
        assert not standby.listener.connected.is_set()  # only the lease holder consumes
        assert (holder.listener.status, standby.listener.status) == (CONNECTED, STANDBY)
        assert holder.task is not None
        holder.task.cancel()  # dies without releasing its lease
        await asyncio.gather(holder.task, return_exceptions=True)
        await asyncio.wait_for(standby.listener.connected.wait(), 10)
        await imap_server.a_append(mailbox.folder, make_message(1))
        await standby.ingestor.wait_for(1)
    assert holder.ingestor.received == []


async def test_starttls_with_a_trusted_certificate_consumes_mail(
    starttls_pymap: TlsPymap, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(starttls_pymap.ca_file))  # read by ssl.create_default_context()
    mailbox = starttls_pymap.server.mailbox(security="starttls")
    assert await _consume_one_message(starttls_pymap.server, mailbox, sessions) == 1


async def test_starttls_trusts_the_mailboxs_tls_ca_file(starttls_pymap: TlsPymap, sessions: Sessions) -> None:
    mailbox = starttls_pymap.server.mailbox(security="starttls", tls_ca_file=starttls_pymap.ca_file)
    assert await _consume_one_message(starttls_pymap.server, mailbox, sessions) == 1


async def _consume_one_message(server: ImapServer, mailbox: MailboxSettings, sessions: Sessions) -> int:
    """Append one message, let the listener consume it; how many messages reached the processed folder."""
    await asyncio.to_thread(server.create, mailbox.folder)
    await server.a_append(mailbox.folder, make_message(1))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(1)
        await wait_until_empty(server, mailbox.folder)
    return len(await server.a_uids(mailbox.processed_folder))


async def test_starttls_refuses_an_untrusted_certificate(starttls_pymap: TlsPymap, sessions: Sessions) -> None:
    server = starttls_pymap.server
    mailbox = server.mailbox(security="starttls")
    await asyncio.to_thread(server.create, mailbox.folder)
    await server.a_append(mailbox.folder, make_message(1))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions) as run:
        async with asyncio.timeout(10):
            while "CERTIFICATE_VERIFY_FAILED" not in run.listener.status:
                await asyncio.sleep(0.05)
    assert ingestor.received == []
    assert len(await server.a_uids(mailbox.folder)) == 1


async def test_implicit_tls_via_a_tls_relay_in_front_of_pymap(
    own_pymap: ImapServer, sessions: Sessions, tmp_path: Path
) -> None:
    """pymap has no implicit TLS: a loopback TLS relay (trustme certificate) stands in front of it."""
    imap_server = own_pymap
    ca, ca_file, cert, key = trustme.CA(), tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    await asyncio.to_thread(imap_server.create, imap_server.prefix)
    await imap_server.a_append(imap_server.prefix, make_message(1))
    ingestor = FakeIngestor()
    async with tls_relay(imap_server.port, cert, key) as port:
        mailbox = imap_server.mailbox(security="tls", port=port, tls_ca_file=ca_file)
        async with running(mailbox, ingestor, sessions):
            await ingestor.wait_for(1)
            await wait_until_empty(imap_server, mailbox.folder)


@pytest.fixture
def xoauth2_dovecot() -> ImapServer:
    server = dovecot_from_env()
    if server is None:
        pytest.skip('Dovecot not running (pymap has no XOAUTH2): eval "$(.ci/dovecot/start.sh)"')
    with server.client() as client:
        if "AUTH=XOAUTH2" not in client.capabilities:
            pytest.skip("this Dovecot was started without xoauth2: restart it with .ci/dovecot/start.sh")
    return server


def token_command(token: str) -> str:
    return f"{sys.executable} -c 'print(\"{token}\")'"


async def test_xoauth2_login_with_the_token_command(xoauth2_dovecot: ImapServer, sessions: Sessions) -> None:
    server = xoauth2_dovecot
    mailbox = server.mailbox(password="", oauth2_token_command=token_command(server.password))
    await asyncio.to_thread(server.create, mailbox.folder)
    await server.a_append(mailbox.folder, make_message(1))
    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions):
        await ingestor.wait_for(1)


async def test_a_refused_xoauth2_token_is_a_refused_login_not_a_timeout(
    xoauth2_dovecot: ImapServer, sessions: Sessions
) -> None:
    mailbox = xoauth2_dovecot.mailbox(password="", oauth2_token_command=token_command("expired-token"))
    session = ImapSession(mailbox, timeout=5)
    try:
        async with asyncio.timeout(4):  # before the command timeout: the server's NO must come through
            with pytest.raises(ImapAuthError, match="authentication refused"):
                await session.open()
    finally:
        await session.logout()


class OverlapIngestor(FakeIngestor):
    """A slow faked pipeline that records how many messages it holds at once."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.holding = 0
        self.most_held = 0

    async def ingest(self, raw: bytes, source: str) -> IngestResult:
        self.holding += 1
        self.most_held = max(self.most_held, self.holding)
        try:
            return await super().ingest(raw, source)
        finally:
            self.holding -= 1


async def test_the_next_batch_is_in_a_slow_faked_pipeline_before_the_previous_is_settled_but_never_more(
    imap_server: ImapServer, sessions: Sessions
) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, *(make_message(n) for n in range(6)))
    ingestor = OverlapIngestor(delay=0.2)
    # A byte bound of 4.5 mails: each FETCH brings two (half the bound), the next two are in hand too.
    size = len(make_message(0))
    async with running(mailbox, ingestor, sessions, fetch_batch_bytes=size * 9 // 2) as run:
        await ingestor.wait_for(6)
        await wait_until_empty(imap_server, mailbox.folder)
        await asyncio.wait_for(run.listener.connected.wait(), 10)
    assert ingestor.most_held == 4  # the next batch overlapped the previous one's commit; never a third
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 6


async def test_bytes_in_hand_stay_within_the_bound_so_big_batches_do_not_overlap(
    imap_server: ImapServer, sessions: Sessions
) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, *(make_message(n) for n in range(4)))
    ingestor = OverlapIngestor(delay=0.1)
    size = len(make_message(0))
    async with running(mailbox, ingestor, sessions, fetch_batch_bytes=size * 3 // 2):  # one mail in hand at most
        await ingestor.wait_for(4)
        await wait_until_empty(imap_server, mailbox.folder)
    assert ingestor.most_held == 1
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 4


async def test_mail_told_of_with_a_moves_answer_is_fetched_without_waiting_for_the_idle_renewal(
    imap_server: ImapServer, sessions: Sessions
) -> None:
    mailbox = imap_server.mailbox()
    await asyncio.to_thread(imap_server.create, mailbox.folder)
    await imap_server.a_append(mailbox.folder, make_message(0))

    class ArrivesDuringTheMove(ImapSession):
        """A real session; a second mail arrives while the first is being moved, so the server tells of it
        in the MOVE's answer (or just after), never again in the IDLE that follows."""

        appended = False

        async def move(self, uids: Sequence[int], folder: str) -> None:
            if not ArrivesDuringTheMove.appended:
                ArrivesDuringTheMove.appended = True
                await imap_server.a_append(mailbox.folder, make_message(1))
            await super().move(uids, folder)

    ingestor = FakeIngestor()
    async with running(mailbox, ingestor, sessions, connect=ArrivesDuringTheMove, idle_renew_seconds=600):
        await ingestor.wait_for(2, seconds=10)  # without the note of that EXISTS: after the renewal, 600 s
        await wait_until_empty(imap_server, mailbox.folder)
    assert len(await imap_server.a_uids(mailbox.processed_folder)) == 2

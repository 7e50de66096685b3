"""The documented Postfix set-ups, pipe (deploy/postfix/) and LMTP (the README), with a REAL Postfix on loopback.

The test writes its own Postfix config folder from the documented lines (only the paths, the port and the
user change: `nobody` stands in for the `mailtickets` user, which this machine does not have), starts it
with `postfix -c DIR start`, and sends mail over SMTP. Checked: a delivery becomes a ticket; a store the
pipe's user cannot write exits 75, and a stopped LMTP service refuses the connection, so Postfix DEFERS
(never bounces) and delivers once when it is fixed. Skips with the reason when Postfix is missing or the
test is not root; the pipe test also when the interpreter lives where an unprivileged user cannot run it
(pyenv under /root): CI's second virtualenv (Debian's python3) runs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from imap_support import add_example_client, free_port, wait_for_port
from sqlalchemy import select

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import InboundMail, Outcome

ROOT = Path(__file__).parent.parent
DOCUMENTED = ROOT / "deploy" / "postfix"
PIPE_USER = "nobody"
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = helpdesk.example
mydomain = helpdesk.example
myorigin = helpdesk.example
mydestination = helpdesk.example
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = error:this test sends no mail out
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
"""
# Postfix's own services, none chrooted; smtpd on a loopback port of the test's choosing.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    dir: Path
    port: int
    store: Path

    def send(self, subject: str, sender: str = "alice@example.com") -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, "support@helpdesk.example", subject
        message["Message-ID"] = f"<{subject.replace(' ', '-')}.{time.time_ns()}@example.com>"
        message.set_content("The printer is on fire.\n")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.send_message(message)
        return str(message["Message-ID"]).strip("<>")

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, text: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the Postfix log:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.dir), "-f"], check=True, capture_output=True)


def _skip_unless_postfix_can_run_the_pipe(mailtickets: Path) -> None:
    if not mailtickets.exists():
        pytest.skip(f"no mailtickets script beside {sys.executable}")
    try:
        subprocess.run([str(mailtickets), "--help"], user=PIPE_USER, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"{PIPE_USER} cannot run {mailtickets} (its interpreter is in a private folder, e.g. /root)")


def _documented(name: str, **paths: str) -> str:
    """A documented snippet with the test's paths, user and port in place of the documented ones."""
    text = (DOCUMENTED / name).read_text()
    for documented, ours in paths.items():
        text = text.replace(documented, ours)
    return text


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A temporary folder that Postfix's users can reach (pytest's own are under a private folder)."""
    path = Path(tempfile.mkdtemp(prefix="mailtickets-postfix-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postfix(reachable_tmp: Path) -> Iterator[Postfix]:
    """Postfix with the documented pipe transport, the store owned by the pipe's user."""
    mailtickets = Path(sys.executable).with_name("mailtickets")
    _skip_unless_postfix_can_run_the_pipe(mailtickets)
    store, config_dir = reachable_tmp / "store", reachable_tmp / "postfix"
    config = _write_store(store)
    replacements = {
        "/usr/local/bin/mailtickets": str(mailtickets),
        "/etc/mailtickets/mailtickets.toml": str(config),
        "user=mailtickets": f"user={PIPE_USER}",
        "/etc/postfix/transport": str(config_dir / "transport"),
    }
    yield from _running_postfix(
        config_dir, store, _documented("main.cf", **replacements), _documented("master.cf", **replacements),
        _documented("transport"),
    )  # fmt: skip


def _running_postfix(config_dir: Path, store: Path, main: str, master: str, transport: str) -> Iterator[Postfix]:
    """Postfix from its own config folder: the test's base settings plus the documented lines."""
    if shutil.which("postfix") is None:
        pytest.skip("Postfix is not installed (apt-get install postfix; .ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("Postfix's master must be started as root")
    config_dir.mkdir()
    found = Postfix(config_dir, free_port(), store)
    (config_dir / "main.cf").write_text(MAIN_CF.format(dir=config_dir) + main)
    (config_dir / "master.cf").write_text(MASTER_CF.format(port=found.port) + master)
    (config_dir / "transport").write_text(transport)
    subprocess.run(["postmap", "-c", str(config_dir), str(config_dir / "transport")], check=True)
    (config_dir / "queue").mkdir()
    (config_dir / "data").mkdir()
    _chown(config_dir / "data", "postfix")
    _postfix(config_dir, "start")
    try:
        wait_for_port(found.port, 30)
        yield found
    finally:
        _postfix(config_dir, "stop")


def _postfix(config_dir: Path, action: str) -> None:
    done = subprocess.run(["postfix", "-c", str(config_dir), action], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _write_store(store: Path) -> Path:
    """The store as the documented set-up has it: migrated, owned by the pipe's user, absolute config."""
    (store / "data").mkdir(parents=True)
    url = f"sqlite+aiosqlite:///{store / 'mailtickets.db'}"
    upgrade(url)
    asyncio.run(_add_client(url))
    config = store / "mailtickets.toml"
    config.write_text(
        _documented(
            "mailtickets.toml",
            **{
                "/var/lib/mailtickets/mailtickets.db": str(store / "mailtickets.db"),
                "/var/lib/mailtickets": str(store),
            },
        )
    )
    config.chmod(0o644)
    _chown(store, PIPE_USER)
    return config


async def _add_client(url: str) -> None:
    engine = create_engine(url)
    try:
        await add_example_client(session_factory(engine))
    finally:
        await engine.dispose()


def _chown(path: Path, user: str) -> None:
    subprocess.run(["chown", "-R", user, str(path)], check=True)


def _outcomes(store: Path) -> dict[str, Outcome]:
    async def read() -> dict[str, Outcome]:
        engine = create_engine(f"sqlite+aiosqlite:///{store / 'mailtickets.db'}")
        try:
            async with session_factory(engine)() as session:
                rows = (await session.execute(select(InboundMail.message_id, InboundMail.outcome))).all()
        finally:
            await engine.dispose()
        return {str(message_id): outcome for message_id, outcome in rows}

    return asyncio.run(read())


def _wait_for_outcome(postfix: Postfix, message_id: str, seconds: float = 60.0) -> Outcome:
    deadline = time.monotonic() + seconds
    while (outcome := _outcomes(postfix.store).get(message_id)) is None:
        assert time.monotonic() < deadline, f"{message_id} never arrived; Postfix's log:\n{postfix.log()[-3000:]}"
        time.sleep(0.3)
    return outcome


def test_the_documented_pipe_transport_delivers_and_defers_on_a_store_error(postfix: Postfix) -> None:
    first = postfix.send("printer on fire")
    assert _wait_for_outcome(postfix, first) == Outcome.CREATED
    postfix.wait_for_log("status=sent (delivered via mailtickets service")

    # The store's folder taken from the pipe's user (a common mistake: SQLite needs it for its WAL files).
    _chown(postfix.store, "root")
    postfix.store.chmod(0o755)
    second = postfix.send("second printer")
    postfix.wait_for_log("status=deferred")
    assert "status=bounced" not in postfix.log() and second not in _outcomes(postfix.store)
    assert "try again later" in postfix.log()  # the pipe's one-line cause reaches Postfix's log

    _chown(postfix.store, PIPE_USER)
    postfix.flush()
    assert _wait_for_outcome(postfix, second) == Outcome.CREATED
    assert list(_outcomes(postfix.store)).count(second) == 1


@dataclass
class LmtpService:
    """`mailtickets run` serving LMTP only, as the README's LMTP set-up starts it; stoppable and restartable."""

    config: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "mailtickets.cli", "--config", str(self.config), "run"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


@pytest.fixture
def lmtp_postfix(reachable_tmp: Path) -> Iterator[tuple[Postfix, LmtpService]]:
    """The README's LMTP set-up: `lmtp_bind = 127.0.0.1:PORT` and a transport_maps entry for the address."""
    store = reachable_tmp / "store"
    config, port = _write_store(store), free_port()
    with config.open("a") as toml:
        toml.write(f'lmtp_bind = "127.0.0.1:{port}"\nhttp_bind = ""\n')
    service = LmtpService(config, port)
    service.start()
    main = f"transport_maps = hash:{reachable_tmp / 'postfix' / 'transport'}\n"
    try:
        for postfix in _running_postfix(
            reachable_tmp / "postfix", store, main, "", f"support@helpdesk.example lmtp:inet:127.0.0.1:{port}\n"
        ):
            yield postfix, service
    finally:
        service.stop()


def test_the_documented_lmtp_set_up_delivers_defers_while_stopped_and_delivers_once(
    lmtp_postfix: tuple[Postfix, LmtpService],
) -> None:
    postfix, service = lmtp_postfix
    first = postfix.send("printer on fire")
    assert _wait_for_outcome(postfix, first) == Outcome.CREATED
    postfix.wait_for_log("status=sent (250 2.0.0")

    service.stop()
    second = postfix.send("second printer")
    postfix.wait_for_log("status=deferred")
    assert "status=bounced" not in postfix.log() and second not in _outcomes(postfix.store)

    service.start()
    postfix.flush()
    assert _wait_for_outcome(postfix, second) == Outcome.CREATED
    assert list(_outcomes(postfix.store)).count(second) == 1

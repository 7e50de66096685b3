"""IMAP server fixtures (a pytest plugin: `pytest_plugins = ["imap_fixtures"]`).

pymap runs as a subprocess on a free loopback port; Dovecot is used when MAILTICKETS_TEST_DOVECOT is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from imap_support import (
    PYMAP_PASSWORD,
    PYMAP_USER,
    ImapServer,
    PymapProcess,
    TlsPymap,
    dovecot_from_env,
    free_port,
)


@pytest.fixture(scope="session")
def pymap_process() -> Iterator[PymapProcess]:
    process = PymapProcess(free_port())
    process.start()
    yield process
    process.stop()


@pytest.fixture(params=["pymap", "dovecot"])
def imap_server(request: pytest.FixtureRequest) -> ImapServer:
    """The same test against each server; Dovecot skips unless MAILTICKETS_TEST_DOVECOT is set."""
    if request.param == "dovecot":
        server = dovecot_from_env()
        if server is None:
            pytest.skip("Dovecot not running (start .ci/dovecot/start.sh, set MAILTICKETS_TEST_DOVECOT)")
        return server
    process: PymapProcess = request.getfixturevalue("pymap_process")
    return ImapServer("pymap", "127.0.0.1", process.port, PYMAP_USER, PYMAP_PASSWORD, pymap=process)


@pytest.fixture
def own_pymap() -> Iterator[ImapServer]:
    """A pymap of the test's own, which it may restart."""
    process = PymapProcess(free_port())
    process.start()
    yield ImapServer("pymap", "127.0.0.1", process.port, PYMAP_USER, PYMAP_PASSWORD, pymap=process)
    process.stop()


@pytest.fixture(params=["pymap", "dovecot"])
def restartable_imap_server(request: pytest.FixtureRequest) -> ImapServer:
    """A server the test may restart (`restart_imap_server`): its own pymap, or the CI's Dovecot."""
    if request.param == "dovecot":
        server = dovecot_from_env()
        if server is None or not os.environ.get("MAILTICKETS_TEST_DOVECOT_CONFIG"):
            pytest.skip('Dovecot not running (eval "$(.ci/dovecot/start.sh)" sets MAILTICKETS_TEST_DOVECOT_*)')
        return server
    own: ImapServer = request.getfixturevalue("own_pymap")
    return own


@pytest.fixture
def starttls_pymap(tmp_path: Path) -> Iterator[TlsPymap]:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    process = PymapProcess(free_port(), tls=(cert, key))
    process.start()
    yield TlsPymap(ImapServer("pymap", "127.0.0.1", process.port, PYMAP_USER, PYMAP_PASSWORD, pymap=process), ca_file)
    process.stop()

"""IMAP server fixtures (a pytest plugin: `pytest_plugins = ["imap_fixtures"]`).

pymap runs as a subprocess on a free loopback port; Dovecot is used when MAILTICKETS_TEST_DOVECOT is set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imap_support import PYMAP_PASSWORD, PYMAP_USER, ImapServer, PymapProcess, dovecot_from_env, free_port


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

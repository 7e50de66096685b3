"""`mailtickets demo` as a newcomer runs it: a subprocess, real embedded servers, tables on stdout, exit 0."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from mailtickets.cli.demo import table
from mailtickets.demo.servers import ImapAccount, ImapClient, free_port, start_pymap

DEMO_TIMEOUT_SECONDS = 120


def _script() -> Path:
    script = Path(sys.executable).with_name("mailtickets")
    if not script.exists():
        pytest.skip("the mailtickets script is not installed next to this Python (pip install .)")
    return script


@pytest.fixture(scope="module")
def demo_output() -> str:
    done = subprocess.run(
        [str(_script()), "demo"], capture_output=True, text=True, timeout=DEMO_TIMEOUT_SECONDS, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _row(output: str, *cells: str) -> bool:
    pattern = r"\s+".join(re.escape(c) for c in cells)
    return re.search(rf"^{pattern}(?!\w)", output, re.MULTILINE) is not None


def test_every_mail_reaches_its_outcome(demo_output: str) -> None:
    assert _row(demo_output, "new request", "alice@acme.example", "created", "TCK-1")
    assert _row(demo_output, "client's reply to the acknowledgement", "alice@acme.example", "replied", "TCK-1")
    assert _row(demo_output, "colleague at the same domain", "carol@acme.example", "created", "TCK-2")
    assert _row(demo_output, "stranger", "mallory@unknown-shop.example", "quarantined", "-")
    assert _row(demo_output, "out-of-office reply", "bob@acme.example", "dropped", "-")


def test_tickets_table_shows_assignment_and_auto_close(demo_output: str) -> None:
    assert _row(demo_output, "TCK-1", "open", "Acme Ltd", "ana@helpdesk.example", "VPN drops every few minutes")
    assert _row(demo_output, "TCK-2", "closed", "Acme Ltd", "-", "Printer on 3rd floor jams")


def test_notifications_went_out_over_smtp(demo_output: str) -> None:
    assert _row(demo_output, "alice@acme.example", "acknowledgement", "[TCK-1] VPN drops every few minutes")
    assert _row(demo_output, "ana@helpdesk.example", "assigned", "[TCK-1] Assigned to you")
    assert _row(demo_output, "carol@acme.example", "chaser", "Re: [TCK-2]")
    assert _row(demo_output, "carol@acme.example", "closed", "[TCK-2] Closed")
    assert "mallory@unknown-shop.example  " not in demo_output.split("Notifications sent")[1]
    assert "bob@acme.example" not in demo_output.split("Notifications sent")[1]


def test_table_aligns_and_cuts_long_cells() -> None:
    text = table(("a", "b"), [("x" * 60, "y")])
    header, rule, row = text.splitlines()
    assert rule == "-" * 48 + "  -"
    assert row.endswith("…  y")
    assert header.startswith("a ")


def test_keep_serves_the_api_until_sigterm() -> None:
    process = subprocess.Popen([str(_script()), "demo", "--keep"], stdout=subprocess.PIPE, text=True)
    try:
        lines = _lines_until(process, "Press Ctrl-C to stop.")
        base = next(re.search(r"(http://\S+)/api/v1/docs", line) for line in lines if "/api/v1/docs" in line)
        token = next(line.split(": ", 1)[1] for line in lines if line.startswith("API key (Bearer): "))
        assert base is not None
        with httpx.Client(base_url=base.group(1), timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz").json()
            tickets = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert ready["status"] == "ready" and ready["mailboxes"] == {"support": "connected"}
        assert tickets.status_code == 200 and "TCK-1" in tickets.text and "TCK-2" in tickets.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEMO_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _lines_until(process: subprocess.Popen[str], last: str) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        lines.append(process.stdout.readline().rstrip("\n"))
        if lines[-1] == last:
            return lines
    raise AssertionError("\n".join(lines))


async def test_the_embedded_imap_server_takes_a_password_that_starts_with_a_dash() -> None:
    # secrets.token_urlsafe() may start with "-", which argparse would read as an option.
    account = ImapAccount(free_port(), "support", "-Xy_secret")
    async with AsyncExitStack() as stack:
        await start_pymap(stack, account)
        await asyncio.to_thread(ImapClient(account).create, "Probe")  # logs in with the password

"""`mailtickets demo` as a newcomer runs it: a subprocess, real embedded servers, tables on stdout, exit 0."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mailtickets.cli.demo import table
from mailtickets.demo.servers import ImapAccount, ImapClient, free_port, start_pymap
from tests.builders import make_message

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


def test_it_says_first_what_it_set_up_and_last_what_to_do_next(demo_output: str) -> None:
    head = demo_output.split("delivering:")[0]
    assert "client   Acme Ltd, mail domain acme.example" in head
    assert "Alice Martin <alice@acme.example>" in head and "agent    Ana Agent <ana@helpdesk.example>" in head
    assert demo_output.rstrip().splitlines()[-4] == "Next steps:"
    assert "mailtickets demo --keep" in demo_output.split("Next steps:")[1]


def test_the_quarantine_reason_is_shown_in_full(demo_output: str) -> None:
    row = next(line for line in demo_output.splitlines() if line.startswith("stranger"))
    assert row.endswith("unknown sender mallory@unknown-shop.example and no ticket reference") and "…" not in row


def test_table_aligns_and_cuts_long_cells() -> None:
    text = table(("a", "b"), [("x" * 60, "y" * 60)])
    header, rule, row = text.splitlines()
    assert rule == "-" * 48 + "  " + "-" * 60
    assert row.endswith("…  " + "y" * 60)  # the last column is never cut
    assert header.startswith("a ")


def test_keep_serves_the_api_until_sigterm() -> None:
    process = subprocess.Popen([str(_script()), "demo", "--keep"], stdout=subprocess.PIPE, text=True)
    try:
        lines = _lines_until(process, "Press Ctrl-C to stop. Each mail that arrives is printed here:")
        base = next(re.search(r"(http://\S+)/api/v1/docs", line) for line in lines if "/api/v1/docs" in line)
        token = next(line.split(": ", 1)[1] for line in lines if line.startswith("API key (Bearer): "))
        assert base is not None
        with httpx.Client(base_url=base.group(1), timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz").json()
            tickets = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert ready["status"] == "ready" and ready["mailboxes"] == {"support": "connected"}
        assert tickets.status_code == 200 and "TCK-1" in tickets.text and "TCK-2" in tickets.text
        now = datetime.now(UTC) + timedelta(seconds=5)  # the fast clock ends at the real present
        assert all(datetime.fromisoformat(t["created_at"]) <= now for t in tickets.json()["data"])
        imap = next(
            re.search(r"127\.0\.0\.1:(\d+)\) user '([^']+)' password '([^']+)'", line)
            for line in lines
            if "IMAP (" in line
        )
        assert imap is not None
        account = ImapAccount(int(imap.group(1)), imap.group(2), imap.group(3))
        ImapClient(account).append("INBOX", make_message(sender="Ann <ann@acme.example>", subject="Keyboard dead"))
        arrived = _lines_until(process, None, starting="arrived:")[-1]
        assert "ann@acme.example" in arrived and '"Keyboard dead"' in arrived and "created" in arrived
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEMO_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _lines_until(process: subprocess.Popen[str], last: str | None, starting: str | None = None) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        lines.append(process.stdout.readline().rstrip("\n"))
        if lines[-1] == last or (starting is not None and lines[-1].startswith(starting)):
            return lines
    raise AssertionError("\n".join(lines))


async def test_the_embedded_imap_server_takes_a_password_that_starts_with_a_dash() -> None:
    # secrets.token_urlsafe() may start with "-", which argparse would read as an option.
    account = ImapAccount(free_port(), "support", "-Xy_secret")
    async with AsyncExitStack() as stack:
        await start_pymap(stack, account)
        await asyncio.to_thread(ImapClient(account).create, "Probe")  # logs in with the password

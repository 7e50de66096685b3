"""The console in a real browser: Debian's Chromium driven by Playwright against `mailtickets run` on
loopback, with mail coming in over LMTP and notifications caught by an aiosmtpd sink.

Skipped, with the reason, when Chromium or Playwright is missing. The run also makes the README's two
screenshots (docs/console-*.png).
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import _run_in_thread
from notify_support import SmtpSink, free_port
from world import build_world

from mailtickets.clock import SystemClock
from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.directory.accounts import set_password
from mailtickets.directory.agents import create_agent
from mailtickets.models import AgentRole

CHROMIUM = os.environ.get("MAILTICKETS_TEST_CHROMIUM", "/usr/bin/chromium")
FIXTURES = Path(__file__).parent / "fixtures" / "eml"
DOCS = Path(__file__).parent.parent / "docs"
PASSWORD = "correct horse battery"
SUPPORT = "support@helpdesk.example"

if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright not installed (pip install playwright)")


@dataclass
class Service:
    base: str
    lmtp_port: int
    sink: SmtpSink

    def deliver(self, raw: bytes, sender: str = "client@example.net") -> None:
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(sender, [SUPPORT], raw)


async def _seed(url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    await build_world(sessions, SystemClock())
    async with sessions() as session, session.begin():
        for name, email, role in (
            ("Ann Admin", "ann@helpdesk.example", AgentRole.ADMIN),
            ("Bo Agent", "bo@helpdesk.example", AgentRole.AGENT),
            ("Cy Locked", "cy@helpdesk.example", AgentRole.AGENT),
        ):
            await create_agent(session, name, email, role)
            await set_password(session, email, PASSWORD)
    await engine.dispose()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mailtickets run exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("mailtickets run did not answer on /healthz within 60 s")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("console-browser")
    url = f"sqlite+aiosqlite:///{root / 'mailtickets.db'}"
    upgrade(url)
    _run_in_thread(_seed(url))  # pytest-asyncio's loop may be running here
    sink = SmtpSink()
    sink.start()
    http_port, lmtp_port = free_port(), free_port()
    config = root / "mailtickets.toml"
    config.write_text(
        f'database_url = "{url}"\ndata_dir = "{root / "data"}"\nhttp_bind = "127.0.0.1:{http_port}"\n'
        f'lmtp_bind = "127.0.0.1:{lmtp_port}"\nsmtp_url = "{sink.url}"\nsupport_address = "{SUPPORT}"\n'
        'message_id_domain = "helpdesk.example"\nsecret_key = "browser-test-secret-0123456789abcdef"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKETS_")}
    log = (root / "run.log").open("wb")
    command = [sys.executable, "-m", "mailtickets.cli", "run", "--config", str(config)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"http://127.0.0.1:{http_port}/healthz", process)
        yield Service(f"http://127.0.0.1:{http_port}", lmtp_port, sink)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        sink.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _signed_in(browser: Any, service: Service, email: str) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 720}, base_url=service.base)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before deletes and discards
    page.goto("/admin/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/trace")
    return page


@pytest.fixture(scope="module")
def admin(browser: Any, service: Service) -> Iterator[Any]:
    page = _signed_in(browser, service, "ann@helpdesk.example")
    yield page
    page.context.close()


def test_log_in_opens_the_trace(admin: Any) -> None:
    assert admin.locator("h1").inner_text().startswith("Trace")
    assert admin.locator("header .who").inner_text().startswith("Ann Admin")


def test_create_a_rule_and_dry_run_a_fixture_against_it(admin: Any) -> None:
    admin.goto("/admin/rules/new")
    admin.fill("input[name=name]", "Shared drive outages")
    admin.fill("input[name=c0_field]", "subject")
    admin.select_option("select[name=c0_op]", "contains")
    admin.fill("input[name=c0_value]", "shared drive")
    admin.select_option("select[name=a0_action]", "set_priority")
    admin.fill("input[name=a0_value]", "high")
    admin.select_option("select[name=a1_action]", "add_tag")
    admin.fill("input[name=a1_value]", "storage")
    admin.click("text=Save rule")
    admin.wait_for_url("**/admin/rules")
    assert "Shared drive outages" in admin.locator("table.rules").inner_text()
    admin.goto("/admin/rules/dry-run")
    admin.set_input_files("input[name=file]", str(FIXTURES / "gmail-new-multipart-alternative.eml"))
    report = admin.locator("#dry-run-report")  # the live dry run fills it in without a page load
    playwright_api.expect(report.locator("[data-matched]")).to_have_text("Shared drive outages", timeout=15_000)
    assert "created" in report.inner_text() and "TCK-4" in report.inner_text()
    DOCS.mkdir(exist_ok=True)
    admin.screenshot(path=str(DOCS / "console-dry-run.png"))


def test_ingested_fixture_is_in_the_trace_with_its_rule(admin: Any, service: Service) -> None:
    service.deliver((FIXTURES / "gmail-new-multipart-alternative.eml").read_bytes(), "carol@globex.example")
    service.deliver(
        b"From: Mallory <mallory@unknown.example>\r\nTo: support@helpdesk.example\r\n"
        b"Subject: Your invoice is overdue\r\nMessage-ID: <m1@unknown.example>\r\n\r\nPay now.\r\n"
    )
    admin.goto("/admin/trace")
    row = admin.locator("tr", has_text="Shared drive not reachable")
    assert "created" in row.inner_text() and "TCK-4" in row.inner_text()
    assert "Shared drive outages" in row.inner_text()
    admin.screenshot(path=str(DOCS / "console-trace.png"))
    row.locator("a").first.click()
    assert "Message-ID" in admin.locator("pre.source").first.inner_text()


def test_release_a_quarantined_mail(admin: Any) -> None:
    admin.goto("/admin/quarantine")
    row = admin.locator("tr", has_text="Your invoice is overdue")
    assert "unknown sender" in row.inner_text()
    row.locator("button", has_text="Release").click()
    admin.wait_for_url("**/admin/quarantine")
    assert "released: created TCK-5" in admin.locator(".flash").inner_text()
    assert admin.locator("tr", has_text="Your invoice is overdue").count() == 0


def test_reply_to_a_ticket_reaches_the_smtp_sink(admin: Any, service: Service) -> None:
    admin.goto("/admin/tickets/TCK-4")
    admin.fill("textarea[name=body]", "We restarted the VPN gateway in Berlin; please try again.")
    admin.click("text=Send")
    admin.wait_for_url("**/admin/tickets/TCK-4")
    assert "We restarted the VPN gateway" in admin.locator("section.thread").inner_text()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replies = [m for m in service.sink.handler.messages() if "We restarted the VPN gateway" in str(m.get_body())]
        if replies:
            break
        time.sleep(0.5)
    assert replies, "the reply never reached the SMTP sink"
    assert replies[0]["To"] is not None and "carol@globex.example" in replies[0]["To"]


def test_a_form_without_its_csrf_token_is_refused(admin: Any) -> None:
    admin.goto("/admin/clients")
    admin.fill("input[name=name]", "Forged Ltd")
    admin.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    admin.click("text=Create client")
    assert "security token" in admin.locator("main").inner_text()
    admin.goto("/admin/clients")
    assert "Forged Ltd" not in admin.locator("table.list").inner_text()


def test_deactivate_and_reactivate_a_client(admin: Any) -> None:
    admin.goto("/admin/clients?state=active")
    admin.locator("a", has_text="Müller GmbH").click()
    admin.click("text=Deactivate client")  # after the confirm() the page's dialog handler accepts
    admin.wait_for_url("**/admin/clients/*")
    assert "deactivated" in admin.locator(".flash").inner_text()
    admin.goto("/admin/clients?state=inactive")
    listed = admin.locator("table.list").inner_text()
    assert "Müller GmbH" in listed and "Globex" not in listed
    admin.locator("a", has_text="Müller GmbH").click()
    admin.click("text=Reactivate client")
    admin.wait_for_url("**/admin/clients/*")
    assert "reactivated" in admin.locator(".flash").inner_text()
    assert admin.locator("text=Deactivate client").count() == 1


def test_an_agent_account_is_refused_the_rules_editor(browser: Any, service: Service) -> None:
    page = _signed_in(browser, service, "bo@helpdesk.example")
    page.goto("/admin/rules")
    assert page.locator("text=New rule").count() == 0
    response = page.goto("/admin/rules/new")
    assert response is not None and response.status == 403
    assert "Only an admin" in page.locator("main").inner_text()
    page.context.close()


def test_a_wrong_password_is_refused_and_rate_limited(browser: Any, service: Service) -> None:
    context = browser.new_context(base_url=service.base)
    page = context.new_page()
    for attempt in range(6):
        page.goto("/admin/login")
        page.fill("input[name=email]", "cy@helpdesk.example")
        page.fill("input[name=password]", PASSWORD if attempt == 5 else "not the password")
        page.click("button[type=submit]")
        shown = page.locator(".error").inner_text()
        assert ("Too many failed sign-ins" if attempt == 5 else "Wrong email address or password") in shown
    assert "/admin/login" in page.url, "the right password after five wrong ones is refused for now"
    context.close()


def test_screenshots_are_small_pngs() -> None:
    for name in ("console-dry-run.png", "console-trace.png"):
        data = (DOCS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 400_000

"""Console pages over a real store: each one renders, the forms act through the same services as the
API, and whatever a sender wrote is shown as text (escaped), never as markup."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from builders import make_message
from conftest import Store
from console_support import make_agent, page_csrf, sign_in
from sqlalchemy import func, select
from world import build_world

from mailtickets.api import create_app
from mailtickets.models import Agent, AgentRole, Contact, InboundMail, OutboxMail, OutboxState, QuarantineState

FIXTURES = Path(__file__).parent / "fixtures" / "eml"


@pytest.fixture
async def admin(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await build_world(store.sessions, store.clock)
    await make_agent(store, "ann@support.example", AgentRole.ADMIN)
    app = create_app(store.settings, store.sessions, store.clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        await sign_in(http, "ann@support.example")
        yield http


async def _ok(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    return response.text


async def test_every_page_renders(admin: httpx.AsyncClient, store: Store) -> None:
    pipeline = store.pipeline()
    await pipeline.ingest((FIXTURES / "gmail-new-multipart-alternative.eml").read_bytes(), "support")
    await pipeline.ingest(make_message(sender="eve@elsewhere.example", message_id="<q@x>"), "support")
    for path in (
        "/admin/trace",
        "/admin/trace/1",
        "/admin/trace/2",
        "/admin/quarantine",
        "/admin/quarantine/2",
        "/admin/rules",
        "/admin/rules/new",
        "/admin/rules/dry-run",
        "/admin/rules/dry-run?trace=2",
        "/admin/tickets",
        "/admin/tickets/TCK-1",
        "/admin/tickets?status=closed&q=vpn",
        "/admin/clients",
        "/admin/clients/1",
        "/admin/outbox",
        "/admin/outbox?state=failed",
        "/admin/agents",
        "/admin/trace?outcome=quarantined&q=eve&since=2020-01-01",
    ):
        await _ok(admin, path)
    assert (await admin.get("/admin/tickets/TCK-999")).status_code == 404


async def test_sender_text_is_escaped_everywhere(admin: httpx.AsyncClient, store: Store) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    await store.pipeline().ingest(make_message(sender="eve@elsewhere.example", subject=evil, body=evil), "x")
    for path in ("/admin/trace", "/admin/trace/1", "/admin/quarantine", "/admin/quarantine/1"):
        page = await _ok(admin, path)
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_trace_finds_by_filter_and_pages_by_key(admin: httpx.AsyncClient, store: Store) -> None:
    pipeline = store.pipeline()
    for n in range(55):
        await pipeline.ingest(make_message(subject=f"Printer {n}", message_id=f"<p{n}@acme.example>"), "support")
    first = await _ok(admin, "/admin/trace?q=printer")
    assert "Printer 54" in first and "Printer 4<" not in first and "before=6" in first, first[-3000:]
    older = await _ok(admin, "/admin/trace?q=printer&before=6")
    assert "Printer 4<" in older and "Printer 54" not in older
    assert "Printer 54" not in await _ok(admin, "/admin/trace?outcome=quarantined")


async def test_trace_finds_a_whole_sender_or_message_id_exactly_and_a_part_by_search(
    admin: httpx.AsyncClient, store: Store
) -> None:
    pipeline = store.pipeline()
    await pipeline.ingest(make_message(subject="From Alice", message_id="<A1.x@acme.example>"), "support")
    await pipeline.ingest(
        make_message(sender="malice@acme.example", subject="From Malice", message_id="<m1@acme.example>"), "support"
    )
    by_sender = await _ok(admin, "/admin/trace?q=ALICE@acme.example")
    assert "From Alice" in by_sender and "From Malice" not in by_sender  # the whole address, not a part of one
    by_id = await _ok(admin, "/admin/trace?q=%3CA1.x@acme.example%3E")  # pasted from the headers, brackets and all
    assert "From Alice" in by_id and "From Malice" not in by_id
    assert "From Alice" in await _ok(admin, "/admin/trace?q=A1.x@acme.example")
    by_part = await _ok(admin, "/admin/trace?q=lice@acme")
    assert "From Alice" in by_part and "From Malice" in by_part


async def test_create_a_rule_with_field_errors_then_dry_run_it(admin: httpx.AsyncClient) -> None:
    csrf = await page_csrf(admin, "/admin/rules/new")
    bad = {
        "csrf": csrf,
        "name": "Outage",
        "enabled": "on",
        "match": "all",
        "c0_field": "subject",
        "c0_op": "regex",
        "c0_value": "(?<=a)b",
        "a0_action": "set_priority",
        "a0_value": "urgent",
    }
    refused = await admin.post("/admin/rules/new", data=bad)
    assert refused.status_code == 422
    assert "regular expression refused" in refused.text and "must be one of low, medium, high" in refused.text
    good = {**bad, "c0_value": "outage|down", "a0_value": "high", "a1_action": "add_tag", "a1_value": "outage"}
    assert (await admin.post("/admin/rules/new", data=good)).status_code == 303
    assert "subject regex &#34;outage|down&#34;" in await _ok(admin, "/admin/rules")
    raw = (
        (FIXTURES / "gmail-new-multipart-alternative.eml").read_text("utf-8").replace("Subject:", "Subject: outage", 1)
    )
    report = await admin.post("/admin/rules/dry-run?fragment=1", data={"csrf": csrf, "eml": raw, "mailbox": "pipe"})
    assert report.status_code == 200 and "created" in report.text and "TCK-4" in report.text
    assert "<html" not in report.text, "the live dry run answers with a fragment"


async def test_a_trace_entry_is_dry_run_anew_or_the_page_says_why_it_cannot_be(
    admin: httpx.AsyncClient, store: Store
) -> None:
    pipeline = store.pipeline()
    assert (await pipeline.ingest(make_message(message_id="<made-1@acme.example>"), "support")).ticket == "TCK-4"
    raw = make_message(sender="eve@elsewhere.example", message_id="<held-2@elsewhere.example>")
    assert (await pipeline.ingest(raw, "support")).outcome.value == "quarantined"
    picked = await _ok(admin, "/admin/rules/dry-run?trace=2")
    assert "o-quarantined" in picked and "unknown sender eve@elsewhere.example" in picked
    assert "already processed" not in picked and 'name="mailbox" value="support"' in picked
    csrf = await page_csrf(admin, "/admin/clients")
    await admin.post("/admin/clients", data={"csrf": csrf, "name": "Elsewhere", "domains": "elsewhere.example"})
    shown = re.search(r"<textarea[^>]*>(.*?)</textarea>", picked, re.S)
    assert shown is not None
    eml = html.unescape(shown.group(1))
    again = await admin.post(
        "/admin/rules/dry-run?fragment=1", data={"csrf": csrf, "eml": eml, "mailbox": "support", "trace": "2"}
    )
    assert "o-created" in again.text and "TCK-5" in again.text  # the known sender now, as if it arrived now
    not_kept = await _ok(admin, "/admin/rules/dry-run?trace=1")
    assert "was not kept" in not_kept and "this message was created" in not_kept and "o-created" not in not_kept
    assert "was not kept" in await _ok(admin, "/admin/trace/1")
    assert "not kept" not in await _ok(admin, "/admin/trace/2")


async def test_release_and_add_contact_from_the_quarantine(admin: httpx.AsyncClient, store: Store) -> None:
    pipeline = store.pipeline()
    await pipeline.ingest(make_message(sender="eve@elsewhere.example", message_id="<e1@x>"), "support")
    await pipeline.ingest(make_message(sender="zed@elsewhere.example", message_id="<z1@x>"), "support")
    csrf = await page_csrf(admin, "/admin/quarantine")
    released = await admin.post("/admin/quarantine/1/release", data={"csrf": csrf, "client": "Globex"})
    assert released.status_code == 303
    added = await admin.post("/admin/quarantine/2/add-contact", data={"csrf": csrf, "client": "Acme Corp"})
    assert added.status_code == 303
    async with store.sessions() as session:
        states = list(await session.scalars(select(InboundMail.quarantine_state).where(InboundMail.id <= 2)))
        zed = await session.scalar(select(Contact).where(Contact.email == "zed@elsewhere.example"))
    assert states == [QuarantineState.RELEASED, QuarantineState.RELEASED] and zed is not None
    assert "released: created TCK-5" in (await admin.get("/admin/quarantine")).text


async def test_reply_note_and_status_from_a_ticket(admin: httpx.AsyncClient, store: Store) -> None:
    csrf = await page_csrf(admin, "/admin/tickets/TCK-1")
    assert (await admin.post("/admin/tickets/TCK-1/reply", data={"csrf": csrf, "body": "On my way"})).status_code == 303
    note = {"csrf": csrf, "body": "internal only", "private": "on"}
    assert (await admin.post("/admin/tickets/TCK-1/reply", data=note)).status_code == 303
    change = {"csrf": csrf, "status": "working", "priority": "high", "agent": ""}
    assert (await admin.post("/admin/tickets/TCK-1/update", data=change)).status_code == 303
    page = await _ok(admin, "/admin/tickets/TCK-1")
    assert "On my way" in page and "internal only" in page and "<option selected>working</option>" in page
    async with store.sessions() as session:
        queued = await session.scalar(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.kind == "agent_reply")
        )
    assert queued == 1, "the reply is mailed, the note is not"


async def test_outbox_retry_and_cancel(admin: httpx.AsyncClient, store: Store) -> None:
    csrf = await page_csrf(admin, "/admin/tickets/TCK-1")
    await admin.post("/admin/tickets/TCK-1/reply", data={"csrf": csrf, "body": "Hello"})
    async with store.sessions() as session, session.begin():
        mail = (await session.scalars(select(OutboxMail))).one()
        mail.state, mail.attempts, mail.last_error = OutboxState.FAILED, 12, "550 mailbox unavailable"
    assert "550 mailbox unavailable" in await _ok(admin, "/admin/outbox?state=failed")
    assert (await admin.post(f"/admin/outbox/{mail.id}/retry", data={"csrf": csrf})).status_code == 303
    assert (await admin.post(f"/admin/outbox/{mail.id}/cancel", data={"csrf": csrf})).status_code == 303
    async with store.sessions() as session:
        again = await session.get_one(OutboxMail, mail.id)
    assert again.state == OutboxState.FAILED and "cancelled in the console" in (again.last_error or "")


async def test_admin_edits_a_client_its_domains_and_contacts(admin: httpx.AsyncClient, store: Store) -> None:
    csrf = await page_csrf(admin, "/admin/clients/1")
    renamed = await admin.post("/admin/clients/1", data={"csrf": csrf, "name": "Acme Corporation", "notes": "VIP"})
    assert renamed.status_code == 303
    clash = await admin.post("/admin/clients/1", data={"csrf": csrf, "name": "Globex"})
    assert clash.status_code == 409
    assert (await admin.post("/admin/clients/1/domains", data={"csrf": csrf, "domain": "ACME.org"})).status_code == 303
    contact = {"csrf": csrf, "name": "Dora", "email": "dora@acme.org"}
    assert (await admin.post("/admin/clients/1/contacts", data=contact)).status_code == 303
    page = await _ok(admin, "/admin/clients/1")
    assert "Acme Corporation" in page and "acme.org" in page and "dora@acme.org" in page and "VIP" in page
    async with store.sessions() as session:
        dora = await session.scalar(select(Contact).where(Contact.email == "dora@acme.org"))
    assert dora is not None
    off = await admin.post(f"/admin/clients/1/contacts/{dora.id}/active", data={"csrf": csrf, "active": "false"})
    assert off.status_code == 303
    async with store.sessions() as session:
        assert (await session.get_one(Contact, dora.id)).active is False


async def test_admin_deactivates_and_reactivates_a_client(admin: httpx.AsyncClient, store: Store) -> None:
    csrf = await page_csrf(admin, "/admin/clients/1")
    assert "Deactivate client" in await _ok(admin, "/admin/clients/1")
    refused = await admin.post("/admin/clients/1/active", data={"active": "false"})
    assert refused.status_code == 403  # no CSRF token
    off = await admin.post("/admin/clients/1/active", data={"csrf": csrf, "active": "false"})
    assert off.status_code == 303
    page = await _ok(admin, "/admin/clients/1")
    assert "Reactivate client" in page and "deactivated" in page
    inactive = await _ok(admin, "/admin/clients?state=inactive")
    assert "Acme Corp" in inactive and "Globex" not in inactive
    active = await _ok(admin, "/admin/clients?state=active")
    assert "Acme Corp" not in active and "Globex" in active
    held = await store.pipeline().ingest(make_message(message_id="<off-1@acme.example>"), "pipe")
    assert held.outcome.value == "quarantined"
    assert "is deactivated" in await _ok(admin, "/admin/trace")
    assert "Printer on fire" in await _ok(admin, "/admin/tickets?client=1")  # its tickets stay readable
    on = await admin.post("/admin/clients/1/active", data={"csrf": csrf, "active": "true"})
    assert on.status_code == 303 and "Deactivate client" in await _ok(admin, "/admin/clients/1")
    assert (await store.pipeline().ingest(make_message(message_id="<on-1@acme.example>"), "pipe")).ticket == "TCK-4"


async def test_rules_move_toggle_delete_export_and_import(admin: httpx.AsyncClient) -> None:
    csrf = await page_csrf(admin, "/admin/rules/new")
    for name in ("first", "second"):
        rule = {"csrf": csrf, "name": name, "enabled": "on", "a0_action": "add_tag", "a0_value": name}
        assert (await admin.post("/admin/rules/new", data=rule)).status_code == 303
    await admin.post("/admin/rules/second/move", data={"csrf": csrf, "direction": "up"})
    await admin.post("/admin/rules/first/toggle", data={"csrf": csrf})
    exported = (await admin.get("/admin/rules/export")).text
    assert exported.index('name = "second"') < exported.index('name = "first"')
    assert "enabled = false" in exported
    assert (await admin.post("/admin/rules/second/delete", data={"csrf": csrf})).status_code == 303
    assert "second" not in (await admin.get("/admin/rules/export")).text
    files = {"file": ("rules.toml", exported.encode(), "application/toml")}
    assert (await admin.post("/admin/rules/import", data={"csrf": csrf}, files=files)).status_code == 303
    assert 'name = "second"' in (await admin.get("/admin/rules/export")).text
    broken = {"file": ("rules.toml", b'[[rules]]\nname = "x"\n', "application/toml")}
    refused = await admin.post("/admin/rules/import", data={"csrf": csrf}, files=broken)
    assert "Import refused" in (await admin.get(refused.headers["location"])).text


async def test_attachment_download_merge_and_close(admin: httpx.AsyncClient, store: Store) -> None:
    raw = (FIXTURES / "apple-mail-new-inline-pdf.eml").read_bytes()
    result = await store.pipeline().ingest(raw, "support")
    page = await _ok(admin, f"/admin/tickets/{result.ticket}")
    found = re.search(r'href="(/admin/tickets/[^"]+/attachments/\d+)"', page)
    assert found is not None, "the thread links its attachment"
    download = await admin.get(found.group(1))
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert (
        download.headers["content-type"] == "application/octet-stream"
        and "attachment;" in (download.headers["content-disposition"])
    )
    csrf = await page_csrf(admin, "/admin/tickets/TCK-1")
    merged = await admin.post(f"/admin/tickets/{result.ticket}/merge", data={"csrf": csrf, "into": "TCK-1"})
    assert merged.status_code == 303 and merged.headers["location"] == "/admin/tickets/TCK-1"
    assert "Rechnung" in await _ok(admin, "/admin/tickets/TCK-1"), "the merged messages moved"
    assert (await admin.post("/admin/tickets/TCK-1/close", data={"csrf": csrf})).status_code == 303
    assert "<option selected>closed</option>" in await _ok(admin, "/admin/tickets/TCK-1")
    again = await admin.post("/admin/tickets/TCK-1/close", data={"csrf": csrf})
    assert again.status_code == 409 and "already closed" in again.text


async def test_ticket_search_by_reference_or_words(admin: httpx.AsyncClient) -> None:
    assert "Printer on fire" in await _ok(admin, "/admin/tickets?q=tck-1")
    assert "Printer on fire" in await _ok(admin, "/admin/tickets?q=1")
    by_words = await _ok(admin, "/admin/tickets?q=printer+on")
    assert "Printer on fire" in by_words and "VPN down" not in by_words
    assert "No ticket matches" in await _ok(admin, "/admin/tickets?q=printer+42")


async def test_admin_manages_agents_but_cannot_demote_themselves(admin: httpx.AsyncClient, store: Store) -> None:
    csrf = await page_csrf(admin, "/admin/agents")
    added = await admin.post("/admin/agents", data={"csrf": csrf, "name": "Eve", "email": "eve@support.example"})
    assert added.status_code == 303
    async with store.sessions() as session:
        eve = await session.scalar(select(Agent).where(Agent.email == "eve@support.example"))
        ann = await session.scalar(select(Agent).where(Agent.email == "ann@support.example"))
    assert eve is not None and ann is not None and eve.role == AgentRole.AGENT
    promoted = await admin.post(f"/admin/agents/{eve.id}", data={"csrf": csrf, "role": "admin", "active": "on"})
    assert promoted.status_code == 303
    demoted = await admin.post(f"/admin/agents/{ann.id}", data={"csrf": csrf, "role": "agent", "active": "on"})
    assert demoted.status_code == 403
    async with store.sessions() as session:
        assert (await session.get_one(Agent, eve.id)).role == AgentRole.ADMIN
        assert (await session.get_one(Agent, ann.id)).role == AgentRole.ADMIN

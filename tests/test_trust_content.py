"""What is stored of a sender's content: no remote resources in HTML, no bidi tricks in file names;
`ingest --json` says whether the sender was authenticated."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from mailtickets.models import Attachment, TicketMessage
from mailtickets.parse.parser import parse_message
from tests.builders import make_message
from tests.conftest import Store
from tests.test_cli_core import cli, env  # noqa: F401  (the CLI fixture with Acme and Alice)
from tests.world import build_world

TRACKED = (
    '<p>Hi</p><img src="http://tracker.example/open.gif?id=42" width="1" height="1">'
    '<img src="cid:logo@acme.example" alt="logo"><table background="https://bg.example/x.png"><tr><td>t</td></tr></table>'
    '<a href="https://docs.acme.example/manual">manual</a>'
)


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    return store


async def _stored_html(store: Store, message_id: str) -> str:
    async with store.sessions() as session:
        message = (await session.scalars(select(TicketMessage).where(TicketMessage.message_id == message_id))).one()
    return message.body_html or ""


async def test_stored_html_drops_remote_resources_and_keeps_inline_images(world: Store) -> None:
    await world.pipeline().ingest(make_message(html=TRACKED, message_id="<h1@acme.example>"), "pipe")
    html = await _stored_html(world, "h1@acme.example")
    assert "tracker.example" not in html and "bg.example" not in html
    assert 'src="cid:logo@acme.example"' in html
    assert 'href="https://docs.acme.example/manual"' in html


async def test_remote_resources_are_kept_when_the_setting_says_so(world: Store) -> None:
    world.settings.keep_remote_resources = True
    await world.pipeline().ingest(make_message(html=TRACKED, message_id="<h2@acme.example>"), "pipe")
    html = await _stored_html(world, "h2@acme.example")
    assert "http://tracker.example/open.gif" in html and 'src="cid:logo@acme.example"' in html


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # shows as "invoiceexe.pdf"
        ("report\u2067\u2066.pdf", "report.pdf"),
        ("scan\u200f\u061c.pdf", "scan.pdf"),
        ("Müller.pdf", "Müller.pdf"),
    ],
)
def test_bidi_controls_are_removed_from_file_names(name: str, safe: str) -> None:
    parsed = parse_message(make_message(attachments=[(name, "application/octet-stream", b"MZ")]))
    assert [a.filename for a in parsed.attachments] == [safe]


async def test_stored_attachment_names_carry_no_bidi_controls(world: Store) -> None:
    raw = make_message(attachments=[("invoice\u202efdp.exe", "application/octet-stream", b"MZ")])
    await world.pipeline().ingest(raw, "pipe")
    async with world.sessions() as session:
        names = list(await session.scalars(select(Attachment.filename)))
    assert names == ["invoicefdp.exe"]


def _ingest_json(settings_env: dict[str, str], message_id: str, verdict: str) -> dict[str, object]:
    headers = {"Authentication-Results": f"mx.site.example; {verdict} header.from=acme.example"}
    return dict(
        json.loads(
            cli(settings_env, "ingest", "--json", stdin=make_message(message_id=message_id, headers=headers)).stdout
        )
    )


def test_ingest_json_says_whether_the_sender_was_authenticated(env: dict[str, str]) -> None:  # noqa: F811
    assert _ingest_json(env, "<j1@acme.example>", "dmarc=pass")["authenticated"] is None  # nothing trusted
    trusted = {**env, "MAILTICKETS_TRUSTED_AUTHSERV_IDS": "mx.site.example, *.prod.outlook.com"}
    passed = _ingest_json(trusted, "<j2@acme.example>", "dmarc=pass")
    assert (passed["outcome"], passed["authenticated"]) == ("created", True)
    failed = _ingest_json(trusted, "<j3@acme.example>", "dmarc=fail")
    assert (failed["outcome"], failed["authenticated"]) == ("quarantined", False)

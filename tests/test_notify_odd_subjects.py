"""Issue 10 item 3 end to end: a subject or display name no serialiser expected still becomes a ticket
with its acknowledgement queued, and the queued mail parses back."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailtickets.models import OutboxMail, Outcome
from tests.conftest import Store
from tests.world import build_world

HEAD = b"From: %s\r\nTo: support@helpdesk.example\r\nMessage-ID: <odd-%d@acme.example>\r\n"
RAW_CASES = [
    ("encoded subject decoding to an encoded-word lookalike", b"Alice <alice@acme.example>",
     b"Subject: =?utf-8?q?=C3=BC_=3D=3Futf-8=3FB=3F=2F=2F7D=3F=3D?=\r\n"),
    ("GB2312 declared, GBK bytes", b"Alice <alice@acme.example>", b"Subject: =?gb2312?b?tPLTocdruOM=?=\r\n"),
    ("raw 8-bit subject in an undeclared charset", b"Alice <alice@acme.example>",
     b"Subject: \xb4\xf2\xd3\xa1\x81\x40\r\n"),
    ("display name with an encoded-word lookalike", b'"=?utf-8?b?QQ==?= \xff" <alice@acme.example>',
     b"Subject: hello\r\n"),
    ("encoded newline in the subject", b"Alice <alice@acme.example>",
     b"Subject: =?utf-8?q?a=0D=0ABcc=3A_x=40y=2Eexample?=\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "sender", "subject"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
async def test_odd_subjects_and_names_become_tickets_with_a_parsable_acknowledgement(
    store: Store, case: str, sender: bytes, subject: bytes
) -> None:
    await build_world(store.sessions, store.clock)
    raw = HEAD % (sender, len(case)) + subject + b"\r\nThe printer is on fire.\r\n"
    result = await store.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.CREATED, case
    async with store.sessions() as session:
        queued = (await session.scalars(select(OutboxMail).where(OutboxMail.kind == "acknowledgement"))).one()
    assert queued.raw.isascii()
    parsed = message_from_bytes(queued.raw, policy=policy.default)
    assert parsed["Bcc"] is None and result.ticket is not None
    assert result.ticket in str(parsed["Subject"])
    assert parsed["To"].addresses[0].addr_spec == "alice@acme.example"

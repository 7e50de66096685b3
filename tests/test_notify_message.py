from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailtickets.notify.message import (
    MAX_LINE,
    MAX_REFERENCES,
    MailAttachment,
    OutgoingMail,
    thread_references,
    to_bytes,
)


def _mail(**overrides: object) -> OutgoingMail:
    values: dict[str, object] = {
        "sender": "support@helpdesk.example",
        "to_address": "kenji@client.example",
        "to_name": "山田 健二",
        "subject": "[TCK-3] プリンターが燃えています",
        "text": "こんにちは\n",
        "html": "<p>こんにちは</p>\n",
        "message_id": "TCK-3.abc.def@helpdesk.example",
        "date": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        "ticket_ref": "TCK-3",
    }
    values.update(overrides)
    return OutgoingMail(**values)  # type: ignore[arg-type]


def test_any_language_round_trips_and_the_wire_is_7bit() -> None:
    raw = to_bytes(_mail())
    assert raw.isascii() and b"\r\n" in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "[TCK-3] プリンターが燃えています"
    assert parsed["To"].addresses[0].display_name == "山田 健二"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == "こんにちは\n"
    assert html is not None and "こんにちは" in html.get_content()
    assert parsed["Auto-Submitted"] is None and parsed["In-Reply-To"] is None


def test_threading_headers() -> None:
    mail = _mail(auto_submitted="auto-replied", in_reply_to="c2@x", references=("c1@x", "c2@x"))
    parsed = message_from_bytes(to_bytes(mail), policy=policy.default)
    assert parsed["In-Reply-To"] == "<c2@x>"
    assert parsed["References"] == "<c1@x> <c2@x>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Message-ID"] == "<TCK-3.abc.def@helpdesk.example>"


def test_an_agents_reply_carries_the_display_name_and_the_attachments() -> None:
    files = (
        MailAttachment("Bericht\r\nBcc: x@evil.example.pdf", "application/pdf", b"%PDF-1.4\x00\xff"),
        MailAttachment("メモ.txt", "text/plain", "こんにちは\n".encode()),
        MailAttachment("original.eml", "message/rfc822", b"From: a@b\r\n\r\nhi\r\n"),  # may not be base64
    )
    raw = to_bytes(_mail(sender_name="Dan via Support", attachments=files))
    assert raw.isascii() and all(len(line) <= MAX_LINE for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed" and parsed["Bcc"] is None
    assert parsed["From"].addresses[0].display_name == "Dan via Support"
    assert parsed["From"].addresses[0].addr_spec == "support@helpdesk.example"
    assert parsed["Reply-To"].addresses[0].display_name == ""
    text = parsed.get_body(("plain",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == "こんにちは\n"
    got = [(a.get_filename(), a.get_content_type(), a.get_payload(decode=True)) for a in parsed.iter_attachments()]
    assert got == [
        ("Bericht Bcc: x@evil.example.pdf", "application/pdf", b"%PDF-1.4\x00\xff"),
        ("メモ.txt", "text/plain", "こんにちは\n".encode()),
        ("original.eml", "application/octet-stream", b"From: a@b\r\n\r\nhi\r\n"),
    ]


def test_without_attachments_the_mail_stays_alternative() -> None:
    parsed = message_from_bytes(to_bytes(_mail()), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["From"].addresses[0].display_name == ""


def test_references_end_with_the_parent_and_are_capped() -> None:
    assert thread_references(["a", "b", "c"], "b") == ("a", "c", "b")
    long = thread_references([f"m{i}" for i in range(50)], "m49")
    assert len(long) == MAX_REFERENCES and long[0] == "m0" and long[-1] == "m49"
    assert thread_references([], None) == ()


# Subjects and display names as the pipeline may hand them over: decoded from hostile or broken mail.
ODD_TEXTS = [
    ("plain ascii", "Printer on fire", "Printer on fire"),
    ("decodes to an encoded-word lookalike", "ü =?utf-8?B?//7D?=", "ü =?utf-8?B?//7D?="),
    ("ascii encoded-word lookalike", "=?utf-8?q?hello?=", "=?utf-8?q?hello?="),
    ("GBK bytes kept as lone surrogates", "\u6253\u5370\udcb4\udce2\u673a", "打印\ufffd\ufffd机"),
    ("CR LF injection (a run of spaces folds to one)", "Hi\r\nBcc: victim@evil.example", "Hi Bcc: victim@evil.example"),
    ("NUL and other controls", "a\x00b\x1bc\x7fd", "a b c d"),
    ("very long unbroken word", "x" * 300, "x" * 300),
    ("long CJK", "プリンター" * 80, "プリンター" * 80),
    ("emoji and combining marks", "Cafe\u0301 🔥🖨️", "Cafe\u0301 🔥🖨️"),
    ("right-to-left override", "\u202efdp.exe", "\u202efdp.exe"),
    ("leading and trailing spaces", "  spaced  ", "  spaced  "),
    ("empty", "", ""),
    ("line separator", "a\u2028b", "a b"),
]


@pytest.mark.parametrize(("case", "subject", "expected"), ODD_TEXTS, ids=[c[0] for c in ODD_TEXTS])
def test_any_subject_serialises_within_line_limits_and_decodes_back(case: str, subject: str, expected: str) -> None:
    assert _serialised(subject=subject)["Subject"] == expected, case


def _serialised(**overrides: object) -> EmailMessage:
    """The mail as bytes (7-bit, lines within the limit, no header smuggled in), parsed back."""
    raw = to_bytes(_mail(**overrides))
    assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= MAX_LINE for line in head.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage) and parsed["Bcc"] is None
    return parsed


NAMES = [
    ("plain", "Kenji Yamada", "Kenji Yamada"),
    ("specials quoted", 'Yamada, Kenji "KY" (IT)', 'Yamada, Kenji "KY" (IT)'),
    ("non-ascii", "山田 健二", "山田 健二"),
    ("lone surrogate", "Jos\udce9", "Jos\ufffd"),
    ("looks like an address", "boss@client.example <evil@x.example>", "boss@client.example <evil@x.example>"),
    ("encoded-word lookalike", "=?utf-8?b?QQ==?=", "=?utf-8?b?QQ==?="),
    ("newline", "Eve\r\nBcc: x@y.example", "Eve Bcc: x@y.example"),
    ("empty", "", ""),
]


@pytest.mark.parametrize(("case", "name", "expected"), NAMES, ids=[c[0] for c in NAMES])
def test_any_display_name_serialises_and_keeps_the_address(case: str, name: str, expected: str) -> None:
    (to,) = _serialised(to_name=name)["To"].addresses
    assert (to.addr_spec, to.display_name) == ("kenji@client.example", expected), case


def test_bodies_with_odd_text_survive_quoted_printable() -> None:
    text = "line one\r\n.\nFrom the start\n=?x?= trailing space \n\x00nul\ud800\n" + "long " * 100
    raw = to_bytes(_mail(text=text, html="<p>=3D</p>"))
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None
    content = body.get_content().replace("\r\n", "\n")
    assert content.startswith("line one\n.\nFrom the start\n=?x?= trailing space \n\x00nul\ufffd\n")
    html = parsed.get_body(("html",))
    assert html is not None and "<p>=3D</p>" in html.get_content()


def test_long_references_fold_and_keep_every_id() -> None:
    ids = tuple(f"id-{n}.{'x' * 30}@client.example" for n in range(MAX_REFERENCES))
    raw = to_bytes(_mail(references=ids, in_reply_to=ids[-1]))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["References"].split() == [f"<{i}>" for i in ids]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= MAX_LINE for line in head.split(b"\r\n"))

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from mailtickets.notify.message import MAX_REFERENCES, OutgoingMail, build_message, thread_references, to_bytes


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
    raw = to_bytes(build_message(_mail()))
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
    parsed = build_message(mail)
    assert parsed["In-Reply-To"] == "<c2@x>"
    assert parsed["References"] == "<c1@x> <c2@x>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Message-ID"] == "<TCK-3.abc.def@helpdesk.example>"


def test_references_end_with_the_parent_and_are_capped() -> None:
    assert thread_references(["a", "b", "c"], "b") == ("a", "c", "b")
    long = thread_references([f"m{i}" for i in range(50)], "m49")
    assert len(long) == MAX_REFERENCES and long[0] == "m0" and long[-1] == "m49"
    assert thread_references([], None) == ()

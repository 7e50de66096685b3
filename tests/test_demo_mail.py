"""The demo's own mail: the client's reply to the acknowledgement keeps only what she wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from mailtickets.demo.mail import reply_to_acknowledgement
from mailtickets.parse import parse_message
from mailtickets.parse.quotes import reply_text


def test_the_clients_reply_keeps_no_quoted_acknowledgement() -> None:
    ack = EmailMessage()  # a hand-made stand-in for the acknowledgement the demo quotes
    ack["Message-ID"] = "<TCK-1.ack@helpdesk.example>"
    ack.set_content("Hello Alice Martin,\n\nwe received your request and opened ticket TCK-1.\n\nYour helpdesk\n")
    mail = reply_to_acknowledgement(ack, datetime(2024, 3, 4, 9, 0, tzinfo=UTC))
    parsed = parse_message(mail.raw)
    assert "> Hello Alice Martin" in parsed.text
    assert reply_text(parsed.text, parsed.subject) == "It happened again at 10:42, and Bob sees it too."

"""One message builder for tests, instead of hand-written header boilerplate in every test."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime


def make_message(
    *,
    sender: str = "Alice Able <alice@acme.example>",
    to: str = "support@helpdesk.example",
    subject: str = "Printer on fire",
    body: str = "Hello, the printer is on fire.",
    message_id: str | None = "<msg-1@acme.example>",
    in_reply_to: str | None = None,
    references: str | None = None,
    cc: str | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content_type, payload in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=SMTP)


def make_raw_message(headers: list[tuple[str, str]], body: str = "Hello.") -> bytes:
    """A message whose header lines are written exactly as given (forged, unusual or hostile shapes)."""
    lines = [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join([*lines, "", body, ""])).encode("utf-8", "surrogateescape")

"""Building one outgoing mail: pure, stdlib EmailMessage, no I/O.

Headers follow RFC 5322/3834: From and Reply-To the support mailbox, a Date, our signed Message-ID,
In-Reply-To/References pointing at the client's message and the thread, ``Auto-Submitted`` on automatic
mail, and ``X-Loop`` naming the support mailbox so that our own mail coming back is recognised
(see `guard.is_own_mail`).  Text and HTML alternatives in UTF-8, transfer-encoded for 7-bit relays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# SMTP line endings; 7-bit transfer encodings (quoted-printable/base64) so that any relay accepts it.
POLICY = policy.SMTP.clone(cte_type="7bit")
LOOP_HEADER = "X-Loop"
TICKET_HEADER = "X-Mailtickets-Ticket"
MAX_REFERENCES = 20  # keep the first and the most recent ids; long threads otherwise grow without bound


@dataclass(frozen=True, slots=True)
class MailAttachment:
    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    sender: str  # the support address, used for From and Reply-To
    to_address: str
    to_name: str
    subject: str
    text: str
    html: str
    message_id: str  # without angle brackets
    date: datetime
    ticket_ref: str
    auto_submitted: str | None = None  # "auto-replied", "auto-generated" or None for a human's mail
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    sender_name: str = ""  # the From display name: "Dan via Support" on an agent's reply
    attachments: tuple[MailAttachment, ...] = ()


def _address(address: str, name: str = "") -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _angle(ids: tuple[str, ...]) -> str:
    return " ".join(f"<{i}>" for i in ids)


def thread_references(ids: list[str], in_reply_to: str | None) -> tuple[str, ...]:
    """The References list: the thread's ids in order, ending with the one we reply to, capped."""
    seen: dict[str, None] = {}
    for message_id in [*ids, *([in_reply_to] if in_reply_to else [])]:
        seen.pop(message_id, None)
        seen[message_id] = None
    ordered = list(seen)
    if len(ordered) > MAX_REFERENCES:
        ordered = [ordered[0], *ordered[-(MAX_REFERENCES - 1) :]]
    return tuple(ordered)


def build_message(mail: OutgoingMail) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(mail.sender, mail.sender_name)
    msg["Reply-To"] = _address(mail.sender)
    msg["To"] = _address(mail.to_address, mail.to_name)
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(mail.date)
    msg["Message-ID"] = f"<{mail.message_id}>"
    if mail.in_reply_to:
        msg["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        msg["References"] = _angle(mail.references)
    if mail.auto_submitted:
        msg["Auto-Submitted"] = mail.auto_submitted
        # Ask Exchange/Outlook not to answer automatic mail with out-of-office replies.
        msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = mail.sender
    msg[TICKET_HEADER] = mail.ticket_ref
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    for item in mail.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(item.payload, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=POLICY)

"""The demo's cast and its mail: who writes to the helpdesk, and what they write (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

SUPPORT = "support@helpdesk.example"
DISPATCH = "dispatch@helpdesk.example"
CLIENT_NAME = "Acme Ltd"
CLIENT_DOMAIN = "acme.example"
CONTACTS = (("Alice Martin", "alice@acme.example"), ("Bob Keller", "bob@acme.example"))
COLLEAGUE = ("Carol Diaz", "carol@acme.example")  # same domain, not a contact yet
STRANGER = ("Mallory Smith", "mallory@unknown-shop.example")
AGENT = ("Ana Agent", "ana@helpdesk.example")


@dataclass(frozen=True, slots=True)
class DemoMail:
    """One message to deliver and the outcome the pipeline should reach."""

    label: str
    raw: bytes
    message_id: str
    expected: str


def _mail(sender: tuple[str, str], subject: str, body: str, when: datetime, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{sender[0]} <{sender[1]}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def _quoted(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    text = part.get_content() if isinstance(part, EmailMessage) else ""
    return "\n".join(f"> {line}" for line in text.splitlines()[:6])


def _demo(label: str, message: EmailMessage, expected: str) -> DemoMail:
    return DemoMail(label, message.as_bytes(policy=SMTP), str(message["Message-ID"]), expected)


def new_request(when: datetime) -> DemoMail:
    body = (
        "Hello,\n\nsince this morning the VPN drops every few minutes for the whole accounts team.\n"
        "We are on the office network, Windows 11, the usual client.\n\nThanks,\nAlice\n"
    )
    return _demo("new request", _mail(CONTACTS[0], "VPN drops every few minutes", body, when), "created")


def reply_to_acknowledgement(ack: EmailMessage, when: datetime) -> DemoMail:
    """The client answers our acknowledgement; her mail client drops the [ticket] tag from the subject."""
    ack_id = str(ack["Message-ID"])
    body = f"It happened again at 10:42, and Bob sees it too.\n\n{_quoted(ack)}\n"
    message = _mail(CONTACTS[0], "Re: VPN drops every few minutes", body, when, In_Reply_To=ack_id, References=ack_id)
    return _demo("client's reply to the acknowledgement", message, "replied")


def colleague(when: datetime) -> DemoMail:
    body = "Hi,\n\nthe printer on the 3rd floor jams on every second page. Can someone look at it?\n\nCarol\n"
    return _demo("colleague at the same domain", _mail(COLLEAGUE, "Printer on 3rd floor jams", body, when), "created")


def stranger(when: datetime) -> DemoMail:
    body = "Dear Sir or Madam,\n\nwe would like to offer you our new range of toner cartridges.\n"
    return _demo("stranger", _mail(STRANGER, "Special offer: toner", body, when), "quarantined")


def out_of_office(when: datetime) -> DemoMail:
    body = "I am out of the office until Monday with limited access to e-mail.\n\nBob\n"
    message = _mail(
        CONTACTS[1], "Automatic reply: VPN drops every few minutes", body, when, Auto_Submitted="auto-replied"
    )
    return _demo("out-of-office reply", message, "dropped")

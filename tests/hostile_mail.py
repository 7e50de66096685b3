"""Hostile mail as an attacker would write it: small, unauthenticated, each shape costly somewhere.

Every builder returns raw bytes from alice@acme.example (a known contact in tests/world.py) unless
told otherwise, so that the message goes as deep into the pipeline as any real mail would.
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from email.policy import SMTP

from mailtickets.parse.limits import ParseLimits
from mailtickets.parse.message import PayloadStore
from mailtickets.pipeline.parse_worker import ParseOutcome, parse_outcome

FROM = "Alice Able <alice@acme.example>"
HEAD = f"From: {FROM}\r\nTo: support@helpdesk.example\r\nDate: Mon, 5 Jan 2026 09:00:00 +0000\r\n"


def html_only(html: str, message_id: str, sender: str = FROM) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@helpdesk.example"
    msg["Subject"] = "html only"
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(html, subtype="html")
    return msg.as_bytes(policy=SMTP)


def nested_lists(levels: int = 8000) -> bytes:
    return html_only("<ul><li>" * levels + "deep", "lists@acme.example")


def deep_tables(levels: int = 3000) -> bytes:
    return html_only("<table><tr><td>" * levels + "cell", "tables@acme.example")


def blank_line_reply(lines: int = 100_000) -> bytes:
    body = "Thanks, it works.\n" + "\n" * lines + "On Mon, 5 Jan 2026, Support wrote:\n> old\n"
    return (
        HEAD + "Subject: Re: [TCK-1] Printer on fire\r\nMessage-ID: <blank@acme.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + body.replace("\n", "\r\n").encode()


def many_parts(parts: int, message_id: str = "parts@acme.example", *, named: bool = True) -> bytes:
    """One text part, then attachments (named: mail-parser keeps them) or bare parts (as short as they come)."""
    head = (
        HEAD + f"Subject: parts\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    ).encode()
    first = b"--B\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
    disposition = b"Content-Disposition: attachment; filename=p.bin\r\n" if named else b""
    rest = (b"--B\r\nContent-Type: application/octet-stream\r\n" + disposition + b"\r\nx\r\n") * (parts - 1)
    return head + first + rest + b"--B--\r\n"


def deep_nesting(levels: int = 2000) -> bytes:
    head = (HEAD + "Subject: nested\r\nMessage-ID: <nested@acme.example>\r\nMIME-Version: 1.0\r\n").encode()
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level) for level in range(levels)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % level for level in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + closing


def huge_headers(total: int = 1024 * 1024) -> bytes:
    filler = "".join(f"X-Filler-{n}: {'y' * 990}\r\n" for n in range(total // 1000))
    return (
        HEAD + filler + "Subject: headers\r\nMessage-ID: <headers@acme.example>\r\n"
        "Content-Type: text/plain\r\n\r\nbody\r\n"
    ).encode()


# Subjects and display names the notification builder once could not serialise (issue 10, item 3).
ENCODED_WORD_LOOKALIKE = "=?utf-8?q?=C3=BC_=3D=3Futf-8=3FB=3F=2F=2F7D=3F=3D?="


def raw_header_mail(subject: bytes, from_header: bytes, message_id: str, charset: str = "utf-8") -> bytes:
    return (
        b"From: " + from_header + b"\r\nTo: support@helpdesk.example\r\nSubject: " + subject + b"\r\n"
        b"Message-ID: <" + message_id.encode() + b">\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n\r\nplease help\r\n"
    )


def unserialisable_shapes() -> dict[str, bytes]:
    """Several shapes, each a new ticket from a known sender (so notifications are built for it)."""
    gbk = "打印机坏了".encode("gbk") + b"\x80"  # GBK bytes (and a lone lead byte) under a GB2312 label
    return {
        "encoded-word lookalike subject": raw_header_mail(
            ENCODED_WORD_LOOKALIKE.encode(), b"alice@acme.example", "s1@acme.example"
        ),
        "gb2312-declared subject with gbk bytes": raw_header_mail(
            b"=?gb2312?b?" + base64.b64encode(gbk) + b"?=", b"alice@acme.example", "s2@acme.example"
        ),
        "raw 8-bit gbk subject": raw_header_mail(gbk, b"alice@acme.example", "s3@acme.example", "gb2312"),
        "lookalike display name": raw_header_mail(
            b"name", b'"' + ENCODED_WORD_LOOKALIKE.encode() + b'" <alice@acme.example>', "s4@acme.example"
        ),
        "control characters and a very long subject": raw_header_mail(
            ("\u202e\x07" + "ü" * 3000).encode(), b"alice@acme.example", "s5@acme.example"
        ),
    }


def over_long_values() -> bytes:
    """A 300-character display name, a 200-character address, a NUL in the body, a 1,200-character Content-ID."""
    name = "N" * 300
    address = "a" * 180 + "@acme.example"
    cid = "c" * 1200
    return (
        f'From: "{name}" <{address}>\r\nTo: support@helpdesk.example\r\nSubject: long\r\n'
        "Message-ID: <long@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=L\r\n\r\n"
        "--L\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNUL here:\x00 and after\r\n"
        f"--L\r\nContent-Type: image/png\r\nContent-ID: <{cid}>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "iVBORw0KGgo=\r\n--L--\r\n"
    ).encode()


def big_attachment(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = "support@helpdesk.example"
    msg["Subject"] = "big"
    msg["Message-ID"] = f"<big-{size}@acme.example>"
    msg.set_content("see attached")
    msg.add_attachment(b"\xa5" * size, maintype="application", subtype="octet-stream", filename="big.bin")
    return msg.as_bytes(policy=SMTP)


def attachment_of(content: bytes, name: str = "data.bin") -> bytes:
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = "support@helpdesk.example"
    msg["Subject"] = f"file {name}"
    msg["Message-ID"] = f"<file-{len(content)}@acme.example>"
    msg.set_content("see attached")
    msg.add_attachment(content, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes(policy=SMTP)


def big_joined_base64_attachment(size: int) -> bytes:
    """A big attachment of two base64 encodings joined ("==" inside the body): the spool leaves such a body
    to the stdlib's own decoder, so this shape still costs several times its size."""
    first = size - size % 3 - 2  # one byte over whole triplets: its base64 ends in "=="
    body = base64.encodebytes(b"\xa5" * first) + base64.encodebytes(b"\xa5" * (size - first))
    return (
        (
            f"From: {FROM}\r\nTo: support@helpdesk.example\r\nSubject: joined\r\n"
            f"Message-ID: <joined-{size}@acme.example>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
            '--b\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        ).encode()
        + body.replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )


SLOW_MARK = b"X-Test-Slow-Parse: yes"


def slow_poison(message_id: str = "slow@acme.example") -> bytes:
    """A mail the faked slow parser below never finishes: a stand-in for any shape too costly to parse."""
    return SLOW_MARK + b"\r\n" + raw_header_mail(b"slow", b"alice@acme.example", message_id)


def slow_parse_faked(raw: bytes, limits: ParseLimits, store: PayloadStore | None = None) -> ParseOutcome:
    """The real parse, except that a mail marked with SLOW_MARK hangs (runs in the worker process)."""
    if raw.startswith(SLOW_MARK):
        time.sleep(3600)
    return parse_outcome(raw, limits, store)


UNREADABLE_MARK = b"X-Faked-Unreadable-Answer: yes\r\n"


class _ReadsBackAsAnError:
    """Pickles in the worker, but unpickling it in the service raises (as a corrupt answer would)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse_to_unpickle, ())


def _refuse_to_unpickle() -> None:
    raise ValueError("the answer cannot be read back")


def unreadable_answer_parse_faked(raw: bytes, limits: ParseLimits, store: PayloadStore | None = None) -> ParseOutcome:
    """The real parse, except that a mail marked with UNREADABLE_MARK gets an answer that does not unpickle."""
    if raw.startswith(UNREADABLE_MARK):
        return _ReadsBackAsAnError()  # type: ignore[return-value]
    return parse_outcome(raw, limits, store)

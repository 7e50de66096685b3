"""Big bodies spooled out of the stdlib parser (`parse/spool.py`): the parse gives the same message as a
whole parse, the bytes are decoded the stdlib's way, and a message the scan misreads is parsed whole."""

from __future__ import annotations

import base64
import hashlib
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import mailparser.core
import pytest

from mailtickets.parse import spool as spool_module
from mailtickets.parse.message import ParsedMessage
from mailtickets.parse.parser import parse_message
from mailtickets.parse.spool import spool
from mailtickets.storage import FileStore
from tests import hostile_mail

FIXTURES = Path(__file__).parent / "fixtures" / "eml"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SAMPLES = sorted(FIXTURES.glob("*.eml")) + (
    sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.name != "README.md") if CORPUS.is_dir() else []
)


def _whole(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedMessage:
    with monkeypatch.context() as patch:
        patch.setattr(spool_module, "SPOOL_MIN_BYTES", 1 << 62)  # nothing is big: the parse before spooling
        patch.setattr(mailparser.core, "random_string", lambda *_: "unnamed")  # its names for nameless parts
        return parse_message(raw)


def _spooling_everything(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedMessage:
    with monkeypatch.context() as patch:
        patch.setattr(spool_module, "SPOOL_MIN_BYTES", 1)
        patch.setattr(mailparser.core, "random_string", lambda *_: "unnamed")
        return parse_message(raw)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_spooling_every_body_parses_every_sample_as_the_whole_parse_does(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = path.read_bytes()
    assert _spooling_everything(raw, monkeypatch) == _whole(raw, monkeypatch)


def _mail_with(payload: bytes, cte: str, **extra: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@acme.example>"
    mail["Subject"] = f"{cte} attachment"
    mail.set_content("see attached")
    mail.add_attachment(payload, maintype="application", subtype="octet-stream", filename="f.bin", cte=cte)
    return mail.as_bytes(policy=SMTP)


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_a_spooled_attachment_is_decoded_to_its_bytes(cte: str, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = bytes(range(256)) * 9000 + b"tail"  # 2.3 MB: over SPOOL_MIN_BYTES once encoded
    raw = _mail_with(payload, cte)
    assert spool(raw).bodies, "the attachment should be spooled"
    parsed = parse_message(raw)
    assert [a.payload for a in parsed.attachments] == [payload]
    assert parsed == _whole(raw, monkeypatch)


def test_a_spooled_attachment_goes_to_the_store_as_it_is_decoded(tmp_path: Path) -> None:
    payload = b"\x00\xffdata" * 500_000
    parsed = parse_message(_mail_with(payload, "base64"), store=FileStore(tmp_path))
    (attachment,) = parsed.attachments
    assert attachment.payload == b""
    assert attachment.stored is not None and attachment.size == len(payload)
    assert attachment.stored.sha256 == hashlib.sha256(payload).hexdigest()
    assert FileStore(tmp_path).get(attachment.stored.sha256) == payload


def test_a_big_attachment_over_the_limit_is_counted_not_written(tmp_path: Path) -> None:
    from mailtickets.parse.limits import ParseLimits

    raw = hostile_mail.big_attachment(3 * 1024 * 1024)
    parsed = parse_message(raw, ParseLimits(max_attachment_bytes=1_000_000), store=FileStore(tmp_path))
    assert parsed.attachments == ()
    assert parsed.left_out == (
        f"attachment big.bin ({3 * 1024 * 1024} bytes) left out: over max_attachment_bytes (1000000)",
    )
    assert not any(tmp_path.rglob("*")), "nothing written for an attachment left out"


def test_a_big_text_body_stays_with_the_stdlib_and_a_big_text_file_is_spooled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = "Zeile mit Umlauten: äöü, and the printer error E-42.\n"
    mail = EmailMessage()
    mail["From"] = "alice@acme.example"
    mail["Subject"] = "long"
    mail.set_content(line * 40_000, cte="quoted-printable")  # 2.6 MB of quoted-printable body text
    assert not spool(mail.as_bytes(policy=SMTP)).bodies  # mail-parser reads it as text: its checks count
    mail.add_attachment(line * 40_000, filename="log.txt", cte="quoted-printable")
    raw = mail.as_bytes(policy=SMTP)
    assert len(spool(raw).bodies) == 1
    parsed = parse_message(raw)
    assert parsed.text.startswith(line.strip("\n"))
    assert [a.payload for a in parsed.attachments] == [(line * 40_000).replace("\n", "\r\n").encode()]
    assert parsed == _whole(raw, monkeypatch)


def test_a_bare_cr_inside_a_big_body_is_left_to_the_stdlib() -> None:
    body = base64.encodebytes(b"x" * 1_200_000).replace(b"\n", b"\r\n")
    body = body[:1000] + b"\r--b\rContent-Type: text/plain\r\rhidden\r" + body[1000:]  # the stdlib splits on CR
    raw = (
        b"From: alice@acme.example\r\nSubject: cr\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n'
        b'--b\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + body
        + b"--b--\r\n"
    )
    assert not spool(raw).bodies


def test_a_boundary_the_scan_does_not_know_makes_the_message_parse_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    big = base64.encodebytes(b"y" * 1_200_000).replace(b"\n", b"\r\n")
    # RFC 2231 continuations: the stdlib finds the boundary "ab", the cheap scan finds none of it.
    raw = (
        b"From: alice@acme.example\r\nSubject: rfc2231\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary*0=a; boundary*1=b\r\n\r\n"
        b"--ab\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
        b'--ab\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + big
        + b"--ab--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "the body"
    assert [a.payload for a in parsed.attachments] == [b"y" * 1_200_000]
    assert parsed == _whole(raw, monkeypatch)

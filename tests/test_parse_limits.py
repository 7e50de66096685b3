"""The bounds on parsing, as pure functions: parts, nesting, attachments, text, quote-stripping input."""

from __future__ import annotations

import email
import logging

from mailtickets.parse.limits import (
    CUT_MARKER,
    MAX_NESTING,
    ParseLimits,
    bound_raw,
    counted_warnings,
    cut_text,
    limit_attachments,
    prune_parts,
)
from mailtickets.parse.message import ParsedAttachment
from mailtickets.parse.parser import parse_message
from tests import hostile_mail


def test_cut_text_marks_the_cut_and_keeps_the_limit() -> None:
    cut = cut_text("x" * 1000, 100)
    assert len(cut) == 100 and cut.endswith(CUT_MARKER.format(limit=100))
    assert cut_text("short", 100) == "short"


def test_bound_raw_stops_before_the_parser_sees_too_many_parts() -> None:
    raw = hostile_mail.many_parts(1000, named=False)
    bounded, cut = bound_raw(raw, max_parts=10)
    assert bounded.count(b"\r\n--B\r\n") == 20 and cut == 1000 + 1 - 20  # 1,000 openers and the closer
    assert bound_raw(raw, max_parts=1000) == (raw, 0)


def test_prune_parts_keeps_the_first_parts_breadth_first() -> None:
    message = email.message_from_bytes(hostile_mail.many_parts(30))
    notes = prune_parts(message, max_parts=5)
    assert len(message.get_payload()) == 5
    assert notes == ["25 MIME parts left out: over max_mime_parts (5)"]


def test_prune_parts_leaves_out_what_is_nested_too_deep() -> None:
    message = email.message_from_bytes(hostile_mail.deep_nesting(MAX_NESTING + 5))
    notes = prune_parts(message, max_parts=1000)
    assert notes == [f"1 MIME parts left out: nested deeper than {MAX_NESTING} levels"]


def test_attachments_over_either_limit_are_listed_with_the_reason() -> None:
    small = [ParsedAttachment(f"f{n}.txt", "text/plain", b"x") for n in range(4)]
    big = ParsedAttachment("big.bin", "application/octet-stream", b"x" * 11)
    kept, left_out = limit_attachments([big, *small], ParseLimits(max_attachments=3, max_attachment_bytes=10))
    assert [a.filename for a in kept] == ["f0.txt", "f1.txt", "f2.txt"]
    assert left_out == [
        "attachment big.bin (11 bytes) left out: over max_attachment_bytes (10)",
        "attachment f3.txt left out: over max_attachments (3)",
    ]


def test_library_warnings_become_one_counted_note() -> None:
    notes: list[str] = []
    with counted_warnings(("mailparser.core",), notes):
        for _ in range(3):
            logging.getLogger("mailparser.core").warning("part not handled")
    assert notes == ["3 parser warnings (first: part not handled)"]


def test_parse_message_lists_what_it_left_out() -> None:
    parsed = parse_message(hostile_mail.many_parts(50), ParseLimits(max_mime_parts=10, max_attachments=2))
    assert parsed.text == "the body"
    assert len(parsed.attachments) == 2
    assert parsed.left_out[:2] == (  # 51 delimiters, 20 read: 20 parts, 10 of them kept
        "31 MIME delimiters left out unread: over max_mime_parts (10)",
        "10 MIME parts left out: over max_mime_parts (10)",
    )
    assert sum("over max_attachments (2)" in note for note in parsed.left_out) == 7  # 10 parts: 1 text, 9 files


def test_body_text_is_cut_at_max_text_chars() -> None:
    raw = hostile_mail.html_only("<p>" + "word " * 10_000 + "</p>", "long@acme.example")
    parsed = parse_message(raw, ParseLimits(max_text_chars=1000))
    assert len(parsed.text) <= 1000 and parsed.text.endswith(CUT_MARKER.format(limit=1000).strip())
    assert "body cut at 1000 characters: over max_text_chars" in parsed.left_out

"""Big part bodies kept out of the stdlib parser, so that a 25 MB attachment costs about its own size.

The stdlib feed parser holds a body as a list of line strings and then as one joined string: several
times the message's size for one big base64 attachment. So before it reads the message, every leaf
body of at least `SPOOL_MIN_BYTES` is replaced in a copy of the raw bytes by a marker. The stdlib
still does all of the MIME work (structure, headers, parameters, transfer encodings); the cheap scan
only finds the delimiter lines of the boundaries the message declares (as `limits.bound_raw` does),
and the stdlib parses each big segment's headers. A part is spooled only when its headers say it is a
leaf (not multipart/*, message/*) that is only a file (never read as body text) with a transfer
encoding decoded here the stdlib's way. A big body text stays with the stdlib: it is cut at
`max_text_chars` anyway.

After the parse `claim` checks that every marker came back as the whole payload of one leaf and that
every boundary the stdlib found is one the scan knew; when not (a crafted or odd message), the
message is parsed whole, as before. A spooled body is decoded later in chunks straight from the raw
bytes (base64 with `binascii` on slices, quoted-printable line-aligned), into the file store or into
memory: the decoded payload exists once, or not at all in this process. Pure: no I/O.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailtickets.parse.limits import declared_boundaries, delimiter_lines

SPOOL_MIN_BYTES = 1024 * 1024  # smaller bodies go through the stdlib parser: their copies are cheap
CHUNK_BYTES = 1024 * 1024  # encoded bytes decoded at a time
_ENCODINGS = ("", "7bit", "8bit", "binary", "base64", "quoted-printable")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)  # "=" too: padding only at the end
_MARKER_PREFIX = "MailticketsSpooledBody"  # letters and digits: the same under every transfer encoding


@dataclass(frozen=True, slots=True)
class SpooledBody:
    """One leaf's body, still encoded, as a span of the raw bytes."""

    raw: bytes = field(repr=False)
    start: int
    end: int
    encoding: str  # the part's Content-Transfer-Encoding, lower-cased

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """The decoded bytes, a chunk at a time (at least `limit` of them when that many exist)."""
        decode = {"base64": _base64_chunks, "quoted-printable": _quoted_printable_chunks}.get(self.encoding)
        produced = 0
        for chunk in decode(self) if decode else _plain_chunks(self):
            if chunk:
                yield chunk
                produced += len(chunk)
                if limit is not None and produced >= limit:
                    return

    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks())


@dataclass(slots=True)
class SpooledMessage:
    """The bytes the stdlib parses (big bodies replaced by markers) and the bodies behind the markers."""

    skeleton: bytes
    bodies: dict[str, SpooledBody] = field(default_factory=dict)  # marker → body
    boundaries: tuple[bytes, ...] = ()
    _encoded_markers: dict[str, str] = field(default_factory=dict)  # base64 of a marker → marker

    def claim(self, message: Message) -> bool:
        """Whether the parsed skeleton has each marker as one leaf's whole payload (then usable)."""
        if not self.bodies:
            return True
        seen: dict[str, Message] = {}
        for part in message.walk():
            if part.is_multipart():
                if not self._known(part.get_boundary()):
                    return False  # a delimiter the scan did not look for may hide inside a spooled span
                continue
            payload = part.get_payload()
            if isinstance(payload, str) and payload in self.bodies:
                if payload in seen:
                    return False
                seen[payload] = part
        if len(seen) != len(self.bodies) or any(_MARKER_PREFIX in str(m.epilogue or "") for m in message.walk()):
            return False
        self._encoded_markers = {binascii.b2a_base64(m.encode(), newline=False).decode(): m for m in self.bodies}
        return True

    def _known(self, boundary: str | None) -> bool:
        try:
            encoded = boundary.encode("ascii", "surrogateescape") if boundary is not None else None
        except UnicodeEncodeError:  # decoded from RFC 2231 to characters the raw bytes spell some other way
            return False
        return encoded is not None and any(encoded.startswith(known) for known in self.boundaries if known)

    def body_for_payload(self, payload: object) -> SpooledBody | None:
        """The body behind a payload mail-parser copied from a spooled part (as is, or re-encoded base64)."""
        if not isinstance(payload, str) or not self.bodies:
            return None
        marker = payload if payload in self.bodies else self._encoded_markers.get(payload)
        return self.bodies.get(marker) if marker else None


def spool(raw: bytes, min_bytes: int | None = None) -> SpooledMessage:
    """`raw` with every big leaf body replaced by a marker (nothing replaced when nothing is big)."""
    min_bytes = SPOOL_MIN_BYTES if min_bytes is None else min_bytes
    if len(raw) < min_bytes:
        return SpooledMessage(raw)
    boundaries = tuple(declared_boundaries(raw))
    starts = [0]
    ends: list[int] = []
    if boundaries:
        for found in delimiter_lines(boundaries).finditer(raw):
            ends.append(_before_line_break(raw, found.start()))
            closing = raw.startswith(b"--", found.end())
            line_end = raw.find(b"\n", found.end())
            starts.append(-1 if closing or line_end < 0 else line_end + 1)  # -1: an epilogue, never spooled
    # After the last delimiter: an epilogue, or a part never closed (the stdlib drops its last line break).
    ends.append(len(raw) if len(starts) == 1 else -1)
    token = secrets.token_hex(8)
    pieces: list[bytes] = []
    bodies: dict[str, SpooledBody] = {}
    copied = 0
    for start, end in zip(starts, ends, strict=True):
        if start < 0 or end < 0 or end - start < min_bytes:
            continue
        body = _leaf_body(raw, start, end, min_bytes)
        if body is None:
            continue
        marker = _marker(token, len(bodies))
        bodies[marker] = body
        pieces += [raw[copied : body.start], marker.encode("ascii")]
        copied = body.end
    if not bodies:
        return SpooledMessage(raw, boundaries=boundaries)
    pieces.append(raw[copied:])
    return SpooledMessage(b"".join(pieces), bodies, boundaries)


def _marker(token: str, number: int) -> str:
    marker = f"{_MARKER_PREFIX}{token}{number:04d}"
    return marker + "A" * (-len(marker) % 4)  # whole base64 quads: decoding it registers no defect


def _before_line_break(raw: bytes, delimiter: int) -> int:
    """Where the body before a delimiter line ends: the line break before the delimiter is the delimiter's."""
    if raw.endswith(b"\r\n", 0, delimiter):
        return delimiter - 2
    if raw.endswith(b"\n", 0, delimiter):
        return delimiter - 1
    return delimiter


def _leaf_body(raw: bytes, start: int, end: int, min_bytes: int) -> SpooledBody | None:
    """The body of the segment raw[start:end] when its headers make it a leaf decoded here; else None."""
    if raw.startswith((b"\r\n", b"\n"), start):
        body_start = start + (2 if raw.startswith(b"\r\n", start) else 1)  # no headers at all
    else:
        ends = ((raw.find(b"\n\r\n", start, end), 3), (raw.find(b"\n\n", start, end), 2))
        found = [(index, length) for index, length in ends if index >= 0]
        if not found:
            return None
        index, length = min(found)
        body_start = index + length
    if end - body_start < min_bytes:
        return None
    if raw.count(b"\r", body_start, end) != raw.count(b"\r\n", body_start, end):
        return None  # a bare CR ends a line for the stdlib and not for the delimiter scan
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[start:body_start])
    if headers.defects or headers.get_content_maintype() in ("multipart", "message") or not _only_a_file(headers):
        return None
    encoding = str(headers.get("content-transfer-encoding", "")).strip().lower()
    if encoding not in _ENCODINGS:
        return None
    if encoding == "base64" and raw.find(b"=", body_start, max(body_start, end - 8)) >= 0:
        return None  # padding inside the body (joined encodings): left to the stdlib's own decoder
    if encoding == "base64" and not _whole_quads(raw, body_start, end):
        encoding = "unreadable-base64"  # kept as the text it is, as `attachments._payload` keeps it
    return SpooledBody(raw, body_start, end, encoding)


def _whole_quads(raw: bytes, start: int, end: int) -> bool:
    """Whether the base64 decodes without a padding error (stray characters are skipped, as the stdlib does)."""
    data = sum(
        len(raw[o : min(o + CHUNK_BYTES, end)].translate(None, _NOT_BASE64)) for o in range(start, end, CHUNK_BYTES)
    )
    padding = raw[max(start, end - 8) : end].count(b"=")
    return padding <= 2 and (data + padding) % 4 == 0 and (padding == 0 or data % 4 == 4 - padding)


def _only_a_file(headers: Message) -> bool:
    """Whether mail-parser takes the part for an attachment and never reads it as body text (it checks the
    text's charset, a defect the marker would hide): its own rules, from the part's headers."""
    disposition = headers.get_content_disposition()
    subtype = headers.get_content_subtype()
    if disposition == "inline" and headers.get_content_type() in ("text/plain", "text/html"):
        return False
    content_id = bool(str(headers.get("content-id") or "").strip())
    named = bool(headers.get_filename())
    return named or (content_id and subtype not in ("html", "plain")) or subtype == "rtf" or disposition == "attachment"


def _plain_chunks(body: SpooledBody) -> Iterator[bytes]:
    for offset in range(body.start, body.end, CHUNK_BYTES):
        yield body.raw[offset : min(offset + CHUNK_BYTES, body.end)]


def _line_aligned(body: SpooledBody) -> Iterator[bytes]:
    offset = body.start
    while offset < body.end:
        cut = body.raw.rfind(b"\n", offset, min(offset + CHUNK_BYTES, body.end)) + 1
        cut = cut if cut > offset else min(offset + CHUNK_BYTES, body.end)
        yield body.raw[offset:cut]
        offset = cut


def _quoted_printable_chunks(body: SpooledBody) -> Iterator[bytes]:
    for lines in _line_aligned(body):
        yield binascii.a2b_qp(lines)


def _base64_chunks(body: SpooledBody) -> Iterator[bytes]:
    """Whole quads decoded as they come (line breaks and padding dropped, as the stdlib skips them); what
    does not fill a quad at the end is padded, as the stdlib does."""
    pending = b""
    for encoded in _plain_chunks(body):
        pending += encoded.translate(None, _NOT_BASE64)
        whole = len(pending) - len(pending) % 4
        yield binascii.a2b_base64(pending[:whole])
        pending = pending[whole:]
    if len(pending) % 4 > 1:
        yield binascii.a2b_base64(pending + b"=" * (-len(pending) % 4))

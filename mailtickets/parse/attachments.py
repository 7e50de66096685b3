"""Attachments as mail-parser found them, made safe to store: clean names, decoded bytes, TNEF unpacked.

A big body spooled out of the parse (`spool.py`) is decoded only once the limits keep it, chunk by chunk.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tnefparse import TNEF

from mailtickets.parse.message import ParsedAttachment, PayloadStore
from mailtickets.parse.spool import SpooledBody, SpooledMessage

log = logging.getLogger(__name__)

MAX_FILENAME_CHARS = 180
# Control and reserved characters, and the bidirectional controls that make "invoice\u202efdp.exe" show
# as "invoiceexe.pdf" (U+061C, U+200E-F, U+202A-E, U+2066-9); C1 controls too.
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


@dataclass(frozen=True, slots=True)
class FoundAttachment:
    """An attachment before the limits decide on it; a spooled one is still encoded in the raw bytes."""

    attachment: ParsedAttachment
    size: int
    body: SpooledBody | None = None

    @property
    def filename(self) -> str:
        return self.attachment.filename


def collect_attachments(
    items: Iterable[Mapping[str, Any]], defects: list[str], spooled: SpooledMessage | None = None
) -> list[FoundAttachment]:
    found: list[FoundAttachment] = []
    for index, item in enumerate(items, start=1):
        body = spooled.body_for_payload(item.get("payload")) if spooled else None
        attachment = _from_mailparser(item, index, body is None)
        if _is_tnef(attachment) and body is not None:  # unpacked in memory: tnefparse reads bytes
            attachment, body = replace(attachment, payload=b"".join(body.chunks())), None
        found.append(FoundAttachment(attachment, body.size() if body else attachment.size, body))
        if _is_tnef(attachment):
            found.extend(FoundAttachment(a, a.size) for a in unpack_tnef(attachment, defects))
    return found


def materialise(found: FoundAttachment, store: PayloadStore | None) -> ParsedAttachment:
    """The attachment with its bytes: decoded chunk by chunk into `store` when given, else into memory.

    With a store, small attachments are written there too: the parse worker pays their fsync, not the
    event loop, and only the digest travels back. A forwarded message stays in memory: agent mail reads it."""
    if found.body is None:
        attachment = found.attachment
        if store is None or not attachment.payload or attachment.content_type == "message/rfc822":
            return attachment
        return replace(attachment, payload=b"", stored=store.put_chunks((attachment.payload,)))
    if store is None:
        return replace(found.attachment, payload=b"".join(found.body.chunks()))
    return replace(found.attachment, stored=store.put_chunks(found.body.chunks()))


def _from_mailparser(item: Mapping[str, Any], index: int, with_payload: bool = True) -> ParsedAttachment:
    content_type = str(item.get("mail_content_type") or "application/octet-stream").lower()
    content_id = str(item.get("content-id") or "").strip().strip("<>") or None
    disposition = str(item.get("content-disposition") or "").lower()
    raw_name = str(item.get("filename") or "")
    if content_id and raw_name.strip("<>") == content_id:
        raw_name = ""  # mail-parser names unnamed inline images after their Content-ID
    return ParsedAttachment(
        filename=safe_filename(raw_name, fallback=f"attachment-{index}{_extension_for(content_type)}"),
        content_type=content_type,
        payload=_payload(item) if with_payload else b"",
        content_id=content_id,
        inline=disposition.startswith("inline") or (content_id is not None and not disposition),
    )


def _payload(item: Mapping[str, Any]) -> bytes:
    payload = item.get("payload") or ""
    if item.get("binary"):
        try:
            return base64.b64decode(str(payload))
        except (binascii.Error, ValueError):
            pass
    return str(payload).encode("utf-8", "surrogateescape")


def safe_filename(name: str, fallback: str) -> str:
    """A file name with no path, no control or reserved characters, of bounded length; never empty."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_IN_NAME.sub("", name)
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        keep = MAX_FILENAME_CHARS - len(extension) - 1
        name = f"{stem[:keep]}.{extension}" if dot and 0 < len(extension) < 16 else name[:MAX_FILENAME_CHARS]
    return name or fallback


def _extension_for(content_type: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "application/pdf": ".pdf",
        "message/rfc822": ".eml",
        "text/plain": ".txt",
        "text/html": ".html",
        "text/calendar": ".ics",
    }.get(content_type, ".bin")


def _is_tnef(attachment: ParsedAttachment) -> bool:
    return attachment.content_type in TNEF_TYPES or attachment.filename.lower() == "winmail.dat"


def unpack_tnef(attachment: ParsedAttachment, defects: list[str]) -> list[ParsedAttachment]:
    """The real files inside an Outlook winmail.dat (the original is kept beside them)."""
    try:
        tnef = TNEF(attachment.payload)
    except Exception as exc:  # tnefparse raises bare ValueError/struct.error/IndexError on broken data
        defects.append(f"winmail.dat could not be unpacked: {type(exc).__name__}")
        return []
    unpacked = []
    for number, item in enumerate(tnef.attachments, start=1):
        name = item.long_filename() or item.name or ""
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        unpacked.append(
            ParsedAttachment(
                filename=safe_filename(str(name), fallback=f"winmail-{number}.bin"),
                content_type="application/octet-stream",
                payload=bytes(item.data or b""),
            )
        )
    return unpacked

"""Raw bytes to ParsedMessage, with mail-parser (stdlib `email` underneath) doing the MIME work.

Every input gives a ParsedMessage: what cannot be read is recorded in `defects`, never raised, so the
pipeline can always give a message an outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

import mailparser

from mailtickets.parse.attachments import collect_attachments, materialise
from mailtickets.parse.html_text import bounded_html
from mailtickets.parse.limits import ParseLimits, bound_raw, counted_warnings, cut_text, limit_attachments, prune_parts
from mailtickets.parse.message import ParsedAttachment, ParsedMessage, PayloadStore
from mailtickets.parse.quotes import reply_text
from mailtickets.parse.spool import SpooledMessage, spool
from mailtickets.parse.text import clean_header_text, decode_bytes, decode_encoded_words, html_to_text, sanitise_html
from mailtickets.trust.address import parse_from

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,900})>")
_BARE_MESSAGE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
FEED_BYTES = 64 * 1024  # raw bytes handed to the stdlib parser at a time
MAX_HEADER_VALUE = 4000  # characters kept per header value; longer ones are cut, never refused


class UnparseableMessage(ValueError):
    """Not even the headers could be read: the pipeline quarantines the raw bytes."""


def parse_message(raw: bytes, limits: ParseLimits | None = None, store: PayloadStore | None = None) -> ParsedMessage:
    """`store`: where big attachments are written as they are decoded (the parse worker's file store);
    without one every attachment's bytes are in `payload`."""
    limits = limits or ParseLimits()
    left_out: list[str] = []
    with counted_warnings(("mailparser.core", "mailparser.utils"), left_out):
        mail, spooled = _mail_parser(raw, limits, left_out)
        del raw  # what is still needed of it is in `spooled`
        message: Message = mail.message
        charset = _declared_charset(message)
        headers = _decoded_headers(message, charset)
        defects: list[str] = [_defect_text(d) for d in mail.defects]
        text, html, body_defects = _body(message, limits.max_text_chars, left_out)
        defects.extend(body_defects)
        found, skipped = limit_attachments(collect_attachments(mail.attachments, defects, spooled), limits)
        attachments = [materialise(item, store) for item in found]
        del found, spooled, mail
    left_out.extend(skipped)
    # The address list is parsed on the raw value; only then are display names decoded.
    raw_from = [str(value) for name, value in message.raw_items() if name.lower() == "from"]
    mailbox = parse_from(raw_from, lambda name: _decode_header_value(name, charset)[:MAX_HEADER_VALUE])
    if mailbox.ambiguity:
        defects.append(f"From: {mailbox.ambiguity}")
    subject = headers.get("subject", ("",))[0]
    return ParsedMessage(
        message_id=_message_id(headers.get("message-id", ())),
        sender=mailbox.address,
        sender_name=mailbox.name,
        sender_ambiguity=mailbox.ambiguity,
        subject=subject,
        to=_addresses(headers.get("to", ())),
        cc=_addresses(headers.get("cc", ())),
        delivered_to=_addresses(headers.get("delivered-to", ()) + headers.get("x-original-to", ())),
        reply_to=_addresses(headers.get("reply-to", ())),
        return_path=_return_path(headers.get("return-path", ())),
        in_reply_to=_message_ids(headers.get("in-reply-to", ())),
        references=_message_ids(headers.get("references", ())),
        date=_date(headers.get("date", ())),
        headers=headers,
        content_type=message.get_content_type(),
        text=text,
        html=html,
        attachments=tuple(attachments),
        defects=tuple(defects),
        new_text=reply_text(text, subject),
        left_out=tuple(left_out),
    )


def _mail_parser(raw: bytes, limits: ParseLimits, left_out: list[str]) -> tuple[mailparser.MailParser, SpooledMessage]:
    """mail-parser over the stdlib tree, bounded first: never more than `max_mime_parts` parts read.

    The stdlib parses the message once, with its big bodies spooled out (`spool.py`); only when the
    spooled form does not parse back to the same parts is the whole message parsed."""
    raw, cut = bound_raw(raw, limits.max_mime_parts)
    if cut:
        left_out.append(f"{cut} MIME delimiters left out unread: over max_mime_parts ({limits.max_mime_parts})")
    try:
        spooled = spool(raw)
        message = _stdlib_parse(spooled.skeleton)
        if not spooled.claim(message):
            spooled = SpooledMessage(raw)
            message = _stdlib_parse(raw)
        left_out.extend(prune_parts(message, limits.max_mime_parts))
        return mailparser.MailParser(message), spooled
    except MemoryError:
        raise  # over the worker's memory limit: not the same as unreadable
    except Exception as exc:  # mail-parser wraps stdlib failures in several types; all mean "unreadable"
        raise UnparseableMessage(f"cannot parse message: {type(exc).__name__}: {exc}") from exc


def _stdlib_parse(raw: bytes) -> Message:
    """`email.message_from_bytes`, fed a slice at a time: it would hold the whole message as a str and
    again in a StringIO buffer (four bytes a character) while it reads."""
    feeder = BytesFeedParser(policy=compat32)
    view = memoryview(raw)
    for offset in range(0, len(raw), FEED_BYTES):
        feeder.feed(bytes(view[offset : offset + FEED_BYTES]))
    message: Message = feeder.close()
    return message


def _declared_charset(message: Message) -> str | None:
    """The first charset the message declares for a text part, used for raw 8-bit header bytes."""
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and part.get_content_maintype() == "text":
            return charset
    return None


def _decoded_headers(message: Message, fallback_charset: str | None) -> dict[str, tuple[str, ...]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        text = _decode_header_value(value, fallback_charset)[:MAX_HEADER_VALUE]
        headers.setdefault(name.lower(), []).append(text)
    return {name: tuple(values) for name, values in headers.items()}


def _decode_header_value(value: object, fallback_charset: str | None) -> str:
    text = str(value)
    if not text.isascii():  # raw 8-bit (undeclared charset) or already Unicode: no encoded words to decode
        return clean_header_text(text, fallback_charset)
    return clean_header_text(decode_encoded_words(text))


def _defect_text(defect: object) -> str:
    if isinstance(defect, dict):
        return "; ".join(f"{key}: {', '.join(map(str, value))}" for key, value in defect.items())
    return str(defect)


def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for _name, address in getaddresses(list(values)):
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return tuple(found)


def _return_path(values: tuple[str, ...]) -> str | None:
    if not values:
        return None
    value = values[-1].strip()
    if value in ("<>", ""):
        return ""
    addresses = _addresses((value,))
    return addresses[0] if addresses else value.strip("<>").lower()


def _message_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        ids = _MESSAGE_ID.findall(value) or [t for t in value.split() if _BARE_MESSAGE_ID.match(t)]
        found.extend(i for i in ids if i not in found)
    return tuple(found)


def _message_id(values: tuple[str, ...]) -> str | None:
    ids = _message_ids(values[:1])
    return ids[0] if ids else None


def _date(values: tuple[str, ...]) -> datetime | None:
    if not values:
        return None
    try:
        parsed = parsedate_to_datetime(values[0])
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _body(message: Message, max_chars: int, left_out: list[str]) -> tuple[str, str | None, list[str]]:
    """Plain text preferred; from HTML-only mail the text is derived. HTML is returned sanitised.

    Each part's bytes, the HTML and the text are cut at `max_chars` (bytes: four per character).
    """
    plain: list[str] = []
    html: list[str] = []
    defects: list[str] = []
    for part in _text_parts(message):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text, note = decode_bytes(payload[: 4 * max_chars], part.get_param("charset"))  # type: ignore[arg-type]
        del payload
        if note:
            defects.append(f"{part.get_content_type()}: {note}")
        (html if part.get_content_subtype() == "html" else plain).append(text)
    joined = "\n".join(html)
    bounded = cut_text(joined, max_chars)
    sanitised = sanitise_html(bounded_html(bounded)) if html else None
    if plain:
        text = "\n\n".join(t.strip("\r\n") for t in plain).replace("\r\n", "\n")
    else:
        # Text comes from the HTML as sent (the renderer keeps no markup): Outlook's line classes count.
        text = html_to_text(bounded) if html else ""
    if len(text) > max_chars or len(joined) > max_chars:
        left_out.append(f"body cut at {max_chars} characters: over max_text_chars")
    return cut_text(text, max_chars), sanitised, defects


def _text_parts(part: Message) -> Iterator[Message]:
    """Body text parts, in order: not attachments, not inside an attached or forwarded message."""
    if part.get_content_maintype() == "message":
        return
    if part.is_multipart():
        payload = part.get_payload()
        children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        if part.get_content_subtype() == "alternative":
            children = _preferred_alternative(children)
        for child in children:
            yield from _text_parts(child)
        return
    if part.get_content_maintype() != "text" or part.get_content_subtype() not in ("plain", "html"):
        return
    if part.get_content_disposition() == "attachment" or part.get_filename():
        return
    yield part


def _preferred_alternative(children: list[Message]) -> list[Message]:
    # Prefer text/plain, but keep the HTML too: it is stored (sanitised) for display.
    plain = [c for c in children if c.get_content_type() == "text/plain"]
    rest = [c for c in children if c.get_content_type() != "text/plain"]
    return plain + rest


__all__ = ["ParsedAttachment", "UnparseableMessage", "parse_message"]

"""Text helpers for parsing: charset decoding, HTML sanitising and HTML to text, quote stripping."""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

import charset_normalizer
import html2text
import nh3
from mailparser_reply import EmailReplyParser

# Languages whose reply headers ("On … wrote:", "Am … schrieb …:") the quote stripper knows.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "nl", "it", "sv")

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def known_charset(name: str | None) -> str | None:
    """The codec name for a declared charset, or None when Python does not know it."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip('"').lower()).name
    except (LookupError, ValueError):  # ValueError: a NUL inside the name
        return None


def decode_bytes(payload: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode body bytes: the declared charset if it works, else UTF-8, else detection.

    Returns the text and, when the declared charset was missing or wrong, a note for the defects list.
    Never raises and never returns lone surrogates.
    """
    charset = known_charset(declared)
    if charset is not None:
        try:
            return payload.decode(charset), None
        except UnicodeDecodeError:
            pass
    if payload.isascii():
        return payload.decode("ascii"), None
    try:
        return payload.decode("utf-8"), _note(declared, "utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(payload).best()
    if best is not None and best.encoding:
        return str(best), _note(declared, best.encoding)
    return payload.decode("latin-1"), _note(declared, "latin-1")


def _note(declared: str | None, used: str) -> str:
    return f"charset {declared!r} unusable; decoded as {used}" if declared else f"no charset; decoded as {used}"


def sanitise_html(html: str) -> str:
    """HTML that is safe to show: scripts, event handlers, styles and remote tricks removed by nh3.

    `cid:` URLs (inline images, parts of the message) are kept; remote ones are dropped when stored.
    """
    return nh3.clean(html, url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"cid"})


@lru_cache(maxsize=1)
def _html_converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: keep the client's lines
    converter.ignore_images = True
    converter.ignore_emphasis = True
    return converter


def html_to_text(html: str) -> str:
    return _html_converter().handle(html).strip()


@lru_cache(maxsize=1)
def _reply_parser() -> EmailReplyParser:
    return EmailReplyParser(languages=list(REPLY_LANGUAGES))


def strip_quoted(text: str) -> str:
    """What the sender actually wrote, without the quoted history; the whole text if nothing is left."""
    try:
        reply = _reply_parser().parse_reply(text=text)
    except (ValueError, IndexError, RecursionError):  # the library trips over some odd inputs
        return text.strip()
    return (reply or "").strip() or text.strip()


def clean_header_text(value: str, fallback_charset: str | None = None) -> str:
    """A header value as one line: unfolded, control characters removed, raw 8-bit bytes decoded.

    Raw bytes in a header declare no charset: UTF-8 if they are valid UTF-8, else the charset the
    message declares for its body (old web forms write both in one), else detection.
    """
    if _has_surrogates(value):
        raw = value.encode("utf-8", "surrogateescape")
        value = decode_bytes(raw, "utf-8")[0] if _is_utf8(raw) else decode_bytes(raw, fallback_charset)[0]
    return " ".join(_CONTROL_CHARACTERS.sub("", value).split())


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _has_surrogates(value: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in value)

"""Text helpers for parsing: header text, HTML sanitising; charsets, HTML to text and quotes re-exported."""

from __future__ import annotations

import re

import nh3

from mailtickets.parse.charsets import decode_bytes, decode_encoded_words, known_charset
from mailtickets.parse.html_text import html_to_text
from mailtickets.parse.quotes import strip_quoted

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def sanitise_html(html: str) -> str:
    """HTML that is safe to show: scripts, event handlers, styles and remote tricks removed by nh3.

    `cid:` URLs (inline images, parts of the message) are kept; remote ones are dropped when stored.
    """
    return nh3.clean(html, url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"cid"})


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


__all__ = [
    "clean_header_text",
    "decode_bytes",
    "decode_encoded_words",
    "html_to_text",
    "known_charset",
    "sanitise_html",
    "strip_quoted",
]

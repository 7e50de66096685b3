"""Charsets: the declared one, its superset, UTF-8, then detection — for bodies and encoded words alike.

Mail declares charsets that its bytes overstep: GB2312 with GBK characters, ISO-8859-1 with Windows-1252
quotes, KS_C_5601 with CP949 syllables, Shift_JIS with CP932 symbols. Browsers (the WHATWG Encoding
Standard) read such labels as the superset; so do we, body and header alike.
"""

from __future__ import annotations

import binascii
import codecs
from email.errors import HeaderParseError
from email.header import decode_header

import charset_normalizer

# Labels Python does not know, as mail clients write them.
_ALIASES = {
    "x-gbk": "gbk",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "ansi_x3.4-1968": "ascii",
}
# Decoders tried, in order, for a declared charset (by Python codec name). ISO-8859-1 and its kin never
# fail to decode, so their Windows superset comes first (C1 control characters are never meant); the
# others are tried as declared first and by their superset when the bytes overstep them.
SUPERSETS: dict[str, tuple[str, ...]] = {
    "iso8859-1": ("cp1252", "iso8859-1"),
    "iso8859-9": ("cp1254", "iso8859-9"),
    "iso8859-11": ("cp874", "iso8859-11"),
    "tis-620": ("cp874", "tis-620"),
    "gb2312": ("gb2312", "gb18030"),
    "gbk": ("gbk", "gb18030"),
    "euc_kr": ("euc_kr", "cp949"),
    "shift_jis": ("shift_jis", "cp932"),
    "euc_jp": ("euc_jp", "euc_jis_2004"),
    "big5": ("big5", "big5hkscs"),
    "iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2"),
    "iso8859-8": ("iso8859-8", "cp1255"),
    "koi8-r": ("koi8-r", "koi8-u"),
}


def known_charset(name: str | None) -> str | None:
    """The codec name for a declared charset, or None when Python does not know it."""
    if not name:
        return None
    label = name.strip().strip('"').lower().split("*", 1)[0]  # RFC 2231 adds "*language"
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL inside the name
        return None


def candidates(declared: str | None) -> tuple[str, ...]:
    """The decoders to try for bytes declared in `declared`, before UTF-8 and detection."""
    charset = known_charset(declared)
    if charset is None:
        return ()
    return SUPERSETS.get(charset, (charset,))


def decode_bytes(payload: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode bytes: the declared charset or its superset if either works, else UTF-8, else detection.

    Returns the text and, when the declared charset was missing or wrong, a note for the defects list.
    Never raises and never returns lone surrogates.
    """
    for charset in candidates(declared):
        try:
            return payload.decode(charset), None
        except UnicodeDecodeError:
            continue
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


def decode_encoded_words(value: str) -> str:
    """An ASCII header value with RFC 2047 encoded words decoded, each by the chain above.

    Whitespace between two encoded words is dropped (RFC 2047); a word whose base64 or quoted-printable is
    broken beyond repair leaves the whole value as it came.
    """
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except (HeaderParseError, binascii.Error, ValueError):
        return value
    pieces: list[tuple[str, bool]] = []  # (text, came from an encoded word)
    for payload, charset in chunks:
        if isinstance(payload, str):  # no encoded word at all: decode_header hands the text back
            return value
        encoded = charset is not None
        pieces.append((decode_bytes(payload, charset)[0] if encoded else payload.decode("ascii", "replace"), encoded))
    return _joined(pieces)


def _joined(pieces: list[tuple[str, bool]]) -> str:
    """Decoded words and plain text in order, a space where a word meets text without one (as stdlib)."""
    out: list[str] = []
    previous_encoded: bool | None = None
    for text, encoded in pieces:
        if out and previous_encoded is not None and encoded != previous_encoded:
            boundary = out[-1][-1:] if encoded else text[:1]
            if boundary and not boundary.isspace():
                out.append(" ")
        out.append(text)
        previous_encoded = encoded
    return "".join(out)

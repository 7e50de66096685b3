"""A held message made safe to show on a terminal or a web page: its headers and a text rendering.

Whatever arrived (a PNG piped in by mistake, escape sequences in a subject) is shown as printable
text: control characters become U+FFFD, and content that is mostly not text is summarised instead.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import compat32

# C0 and C1 controls but tab and line feed; ESC among them, so nothing can drive a terminal.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
MAX_HEADERS = 50
MAX_HEADER_CHARS = 500
BINARY_SHARE = 0.1  # more than this share of unprintable characters: not text


def printable(text: str) -> str:
    return UNSAFE.sub("\ufffd", text.replace("\r\n", "\n"))


def looks_binary(raw: bytes) -> bool:
    sample = raw[:8192]
    if b"\x00" in sample:
        return True
    decoded = sample.decode("utf-8", errors="replace")
    unprintable = len(UNSAFE.findall(decoded)) + decoded.count("\ufffd")
    return unprintable > BINARY_SHARE * max(len(decoded), 1)


def header_lines(raw: bytes) -> list[tuple[str, str]]:
    """The top-level headers as (name, value), printable, at most MAX_HEADERS of them."""
    if looks_binary(raw):
        return []
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    shown = []
    for name, value in list(message.items())[:MAX_HEADERS]:
        one_line = " ".join(str(value).split())
        shown.append((printable(name), printable(one_line)[:MAX_HEADER_CHARS]))
    return shown


def safe_text(text: str, raw: bytes, limit: int) -> str:
    """The parsed text, printable and cut at `limit`; a placeholder when the bytes are not mail text."""
    if looks_binary(raw) or looks_binary(text.encode("utf-8", "surrogatepass")):
        return f"(binary content, {len(raw)} bytes: not shown; `mailtickets quarantine show ID --raw FILE` saves it)"
    return printable(text[:limit])

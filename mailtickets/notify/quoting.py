"""A sender's words quoted back in an automatic mail, made useless for phishing.

Anyone can open a ticket at a client's domain; the acknowledgement must not carry their link from
support@ to the inbox of the address they forged. The subject is cut short and every link or host name
is defanged (`http://evil.example/owa` → `hxxp://evil[.]example/owa`) so no mail client makes it clickable.
"""

from __future__ import annotations

import re

MAX_QUOTED_SUBJECT = 60  # characters of the sender's subject repeated in automatic mail

_SCHEME = re.compile(r"\b(h)tt(ps?)(?=:)|\b(f)t(p)(?=:)", re.IGNORECASE)
# A host name: labels joined by dots, ending in a letter label (so "v1.2" and "3.5" stay as they are).
_HOST = re.compile(r"\b((?:[\w-]+\.)+)([a-z][\w-]*)\b", re.IGNORECASE)
_AT = re.compile(r"@")


def defanged(text: str) -> str:
    text = _SCHEME.sub(lambda m: f"{m[1]}xx{m[2]}" if m[1] else f"{m[3]}x{m[4]}", text)
    text = _HOST.sub(lambda m: m[1].replace(".", "[.]") + m[2], text)
    return _AT.sub("[at]", text)


def quoted_subject(subject: str, limit: int = MAX_QUOTED_SUBJECT) -> str:
    """The subject as an automatic mail may repeat it: one line, cut to `limit`, links defanged."""
    line = " ".join(subject.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return defanged(line)

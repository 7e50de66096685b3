"""What the sender wrote in a reply, without the quoted history: top-, bottom- and inter-posted alike.

One pass over the lines, each looked at a bounded number of times with patterns matched against short
candidates only (see quote_patterns), so the cost is linear whatever the mail: 100,000 blank lines or a
quote 100,000 levels deep cost what their length costs.

- Quoted lines ("> …", any depth) are dropped wherever they are; the sender's lines above, between and
  below them stay (bottom-posting, interleaved answers, an answer under a leading quote header).
- A reply header ("On … wrote:", "Am … schrieb …:", "… napisał(a):", Yandex's "date, Name <a@b>:") goes
  with the quoted block that follows it. When unquoted text follows it instead, that text is the quoted
  history of a client that does not mark quotes, and everything from the header on is dropped.
- An Outlook header block ("From:/Sent:/To:/Subject:" in the client's language) or separator
  ("-----Original Message-----", a line of underscores) starts the history: dropped to the end, the
  separator included.
- GroupWise's ">>> Name <a@b> 04.03.24 9:15 >>>" starts unmarked history: dropped to the end.
- A forward marker ("---------- Forwarded message ---------") keeps everything after it as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailtickets.parse.quote_patterns import (
    ADDRESS_HEADER,
    COLONS,
    DASHED_TITLE,
    FORWARD,
    FORWARD_PREFIXES,
    GROUPWISE_HEADER,
    MAX_HEADER_CHARS,
    REPLY_HEADER,
    REPLY_HEADER_START,
    SEPARATOR,
    UNDERSCORE_LINE,
    field_role,
)

_HEADER_LINES = 3  # a reply header wrapped by the client spans at most this many lines
_BLOCK_WINDOW = 8  # an Outlook header block's fields lie within this many lines


def reply_text(text: str, subject: str) -> str:
    """The new text of a reply; in a forward (by its subject) a header block starts the forwarded mail."""
    return strip_quoted(text, forward=is_forward_subject(subject))


def is_forward_subject(subject: str) -> bool:
    """The subject's first prefix marks a forward ("Fwd:", "WG:", "TR:", …), not a reply to one."""
    prefix, colon, _rest = subject.lstrip().partition(":")
    if not colon:
        prefix, colon, _rest = subject.lstrip().partition("\uff1a")
    return bool(colon) and prefix.strip().lower() in FORWARD_PREFIXES


def strip_quoted(text: str, *, forward: bool = False) -> str:
    """What the sender actually wrote, without the quoted history; the whole text if nothing is left.

    With `forward`, an Outlook header block or separator starts a forwarded message, kept as written.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = _new_lines(lines, forward)
    new = _tidy(kept)
    return new or text.strip()


def _is_quoted(line: str) -> bool:
    return line.lstrip()[:1] == ">"


def _new_lines(lines: Sequence[str], forward: bool) -> list[str]:
    roles = [field_role(line) if line else None for line in lines]
    kept: list[str] = []
    kept_text = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_quoted(line):
            if GROUPWISE_HEADER.match(line):
                return kept if not forward else kept + list(lines[index:])
            index += 1
            continue
        if not line.strip():
            kept.append("")
            index += 1
            continue
        if _may_be_marker(line) and FORWARD.match(line):
            return kept + list(lines[index:])
        if kept_text and _history_starts(lines, roles, index):  # a header block on top is the text itself
            return kept + list(lines[index:]) if forward else _drop_trailing_separators(kept)
        header_end = _reply_header_end(lines, index)
        if header_end is None:
            kept.append(line)
            kept_text = True
            index += 1
            continue
        following = _next_text_line(lines, header_end)
        if following is not None and not _is_quoted(lines[following]):
            return kept  # unmarked history under a header
        index = header_end
    return kept


def _next_text_line(lines: Sequence[str], start: int) -> int | None:
    for index in range(start, min(len(lines), start + 50)):
        if lines[index].strip():
            return index
    return None


def _reply_header_end(lines: Sequence[str], index: int) -> int | None:
    """The index after a reply header beginning at `index`, or None when none begins there.

    A header the client wrapped spans up to three lines. When its last lines alone are a header, it begins
    there ("Hi," above "On … wrote:" is the sender's) unless only the whole begins like one ("On …" on
    the first line) or its first line is an unfinished date line ("02.04.2012 14:20 пользователь "Bob" <").
    """
    end = _header_end_from(lines, index, _HEADER_LINES)
    if end is None or end == index + 1 or _header_end_from(lines, index + 1, end - index - 1) != end:
        return end
    if _begins_like_a_header(lines[index + 1 : end]):
        return None
    if _begins_like_a_header(lines[index:end]) or _unfinished_date_line(lines[index]):
        return end
    return None


def _begins_like_a_header(lines: Sequence[str]) -> bool:
    return bool(REPLY_HEADER_START.search(" ".join(line.strip() for line in lines)))


def _unfinished_date_line(line: str) -> bool:
    """A line a client broke inside a header: it holds a date or time and ends inside an address ("<")."""
    line = line.strip()
    return line[-1:] in ("<", "(") and any(ch.isdigit() for ch in line)


def _header_end_from(lines: Sequence[str], index: int, most_lines: int) -> int | None:
    candidate = ""
    for end in range(index, min(len(lines), index + most_lines)):
        line = lines[end].strip()
        if not line or _is_quoted(lines[end]):
            return None
        candidate = f"{candidate} {line}".strip()
        if len(candidate) > MAX_HEADER_CHARS:
            return None
        if candidate[-1] in COLONS and _is_header(candidate, lines, end + 1):
            return end + 1
    return None


def _is_header(candidate: str, lines: Sequence[str], after: int) -> bool:
    if REPLY_HEADER.search(candidate) and _has_digit_or_address(candidate):
        return True
    if ADDRESS_HEADER.search(candidate):  # no verb: only above a quote
        following = _next_text_line(lines, after)
        return following is not None and _is_quoted(lines[following])
    return False


def _has_digit_or_address(text: str) -> bool:
    return "@" in text or any(ch.isdigit() for ch in text)


def _may_be_marker(line: str) -> bool:
    """A cheap test before the patterns: markers start with a dash or underscore or end with a colon."""
    return line.lstrip()[:1] in ("-", "_") or line.rstrip()[-1:] in COLONS


def _history_starts(lines: Sequence[str], roles: Sequence[str | None], index: int) -> bool:
    line = lines[index]
    if _may_be_marker(line):
        if SEPARATOR.match(line):
            return True
        if UNDERSCORE_LINE.match(line):
            following = _next_text_line(lines, index + 1)
            return following is None or _header_block(roles, following)
    return _header_block(roles, index)


def _header_block(roles: Sequence[str | None], index: int) -> bool:
    """An Outlook-style block: a From field, then at least two of date, to and subject."""
    if roles[index] != "from":
        return False
    following = set(roles[index + 1 : index + _BLOCK_WINDOW])
    return len(following & {"date", "to", "subject"}) >= 2


def _drop_trailing_separators(kept: list[str]) -> list[str]:
    while kept and (not kept[-1].strip() or UNDERSCORE_LINE.match(kept[-1]) or DASHED_TITLE.match(kept[-1])):
        kept.pop()
    return kept


def _tidy(lines: list[str]) -> str:
    """Trailing spaces off, runs of blank lines (left where quotes were) made one, ends trimmed."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")

"""The HTML renderer behind html_text: lines of plain text from lxml's start and end events, one pass.

Bounded: quote marks and list indentation are capped, a table is buffered only while it holds no other
table and stays small, and the caller stops feeding events once `full` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

_MAX_QUOTE_PREFIX = 8  # deeper quotes are written with 8 markers: the stripper needs only one
_MAX_LIST_INDENT = 6
_TABLE_BUFFER_CHARS = 20_000  # a table holding more is written a cell per line as it arrives
_TABLE_BUFFER_CELLS = 2_000
_ALIGNED_TABLE_WIDTH = 160

_SKIPPED = frozenset({"head", "title", "style", "script", "template", "noscript", "svg", "object", "iframe"})
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "dl", "figure"})
_BLOCKS = frozenset(
    {"div", "section", "article", "header", "footer", "main", "nav", "aside", "address", "center", "form",
     "fieldset", "figcaption", "dt", "dd", "caption", "details", "summary", "ul", "ol", "li", "blockquote"}
)
_LINK_SCHEMES = ("http://", "https://", "mailto:", "ftp://", "tel:")


class _Sink:
    """Lines of text being written: finished lines and the one in progress."""

    def __init__(self, blank: Callable[[], str] = str) -> None:
        self.blank = blank  # what an empty line is: ">" inside a quote
        self.lines: list[str] = []
        self.current: list[str] = []
        self.blank_wanted = False
        self.chars = 0

    @property
    def at_line_start(self) -> bool:
        return not self.current

    def write(self, text: str) -> None:
        if self.blank_wanted and not self.current and self.lines and self.lines[-1].strip("> "):
            self.lines.append(self.blank())
        self.blank_wanted = False
        if self.current and text.startswith(" ") and self.current[-1].endswith(" "):
            text = text[1:]
        self.current.append(text)
        self.chars += len(text)

    def end_line(self, *, keep_empty: bool = False) -> None:
        if self.current:
            self.lines.append("".join(self.current).rstrip())
            self.current = []
        elif keep_empty:
            self.lines.append(self.blank())
            self.chars += 1

    def paragraph(self) -> None:
        self.end_line()
        self.blank_wanted = bool(self.lines)

    def text(self) -> str:
        self.end_line()
        return "\n".join(self.lines).strip("\n")


@dataclass
class _Table:
    buffered: bool = True
    rows: list[list[str]] = field(default_factory=list)
    row: list[str] = field(default_factory=list)
    cell: _Sink | None = None
    chars: int = 0
    cells: int = 0


@dataclass
class _Link:
    href: str
    sink: _Sink
    line: int
    chunk: int


class Renderer:
    """Turns lxml's start and end events into lines of text; `doc.text()` is the result."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.doc = _Sink(lambda: (">" * min(self.quote_depth, _MAX_QUOTE_PREFIX)))
        self.sink = self.doc
        self.quote_depth = 0
        self.lists: list[list[int]] = []  # one entry per open list: [next number] for <ol>, [] for <ul>
        self.bullet = ""
        self.pre_depth = 0
        self.skip_depth = 0
        self.tables: list[_Table] = []
        self.links: list[_Link | None] = []
        self.full = False

    # text
    def data(self, text: str | None) -> None:
        if not text or self.skip_depth or self.full:
            return
        if self.pre_depth:
            self._pre_text(text)
            return
        collapsed = " ".join(text.replace("\xa0", " ").split())
        if not collapsed:
            if not self.sink.at_line_start and text[:1].isspace():
                self.sink.write(" ")
            return
        if text[:1].isspace() and not self.sink.at_line_start:
            collapsed = " " + collapsed
        if text[-1:].isspace():
            collapsed += " "
        self._write(collapsed)

    def _pre_text(self, text: str) -> None:
        for index, piece in enumerate(text.replace("\r\n", "\n").split("\n")):
            if index:
                self.sink.end_line(keep_empty=True)
            if piece:
                self._write(piece.replace("\xa0", " "))

    def _write(self, text: str) -> None:
        if self.sink.at_line_start:
            text = self._prefix() + (text.lstrip() if not self.pre_depth else text)
            self.bullet = ""
        self.sink.write(text)
        if self.doc.chars > self.max_chars:
            self.full = True

    def _prefix(self) -> str:
        quoted = self.sink is self.doc and self.quote_depth
        quotes = ">" * min(self.quote_depth, _MAX_QUOTE_PREFIX) + " " if quoted else ""
        indent = "  " * min(max(len(self.lists) - 1, 0), _MAX_LIST_INDENT)
        return quotes + indent + (self.bullet or ("  " if self.lists else ""))

    def doc_line(self, text: str) -> None:
        """One finished line into the text; an empty one asks for a blank line before the next."""
        self.doc.end_line()
        if not text:
            self.doc.paragraph()
            return
        self._write(text)
        self.doc.end_line()

    # elements
    def start(self, tag: str, element: etree._Element) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
        elif tag == "br":
            self.sink.end_line(keep_empty=True)
        elif tag in ("table", "tr", "td", "th"):
            self._table_start(tag)
        elif tag == "a":
            self._link_start(element)
        elif tag in _PARAGRAPHS:
            self._paragraph_start(tag, element)
        elif tag in _BLOCKS:
            self._block_start(tag, element)

    def end(self, tag: str, element: etree._Element) -> None:
        if tag in _SKIPPED:
            self.skip_depth -= 1
        elif tag in ("table", "tr", "td", "th"):
            self._table_end(tag)
        elif tag == "a":
            self._link_end()
        elif tag in _PARAGRAPHS:
            self.pre_depth -= tag == "pre"
            if _is_outlook_line(element):  # an empty one (&nbsp;) is Outlook's blank line
                self.sink.end_line(keep_empty=True)
            else:
                self.sink.paragraph()
        elif tag in _BLOCKS:
            self._block_end(tag)

    def _paragraph_start(self, tag: str, element: etree._Element) -> None:
        if _is_outlook_line(element):
            self.sink.end_line()
        else:
            self.sink.paragraph()
        self.pre_depth += tag == "pre"

    def _block_start(self, tag: str, element: etree._Element) -> None:
        self.sink.end_line()
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag in ("ul", "ol"):
            self.lists.append([_list_start(element)] if tag == "ol" else [])
        elif tag == "li":
            self.bullet = self._next_bullet()

    def _block_end(self, tag: str) -> None:
        self.sink.end_line()
        if tag == "blockquote":
            self.quote_depth = max(self.quote_depth - 1, 0)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            if not self.lists:
                self.sink.paragraph()
        elif tag == "li":
            self.bullet = ""

    def _next_bullet(self) -> str:
        if not self.lists or not self.lists[-1]:
            return "- "
        number = self.lists[-1][0]
        self.lists[-1][0] = number + 1
        return f"{number}. "

    def _link_start(self, element: etree._Element) -> None:
        href = (element.get("href") or "").strip()
        if not href.lower().startswith(_LINK_SCHEMES):
            self.links.append(None)
            return
        sink = self.sink
        self.links.append(_Link(href, sink, len(sink.lines), len(sink.current)))

    def _link_end(self) -> None:
        link = self.links.pop() if self.links else None
        if link is None or link.sink is not self.sink or len(link.sink.lines) != link.line:
            return
        text = "".join(link.sink.current[link.chunk :]).strip()
        shown = _shown_url(link.href)
        if text and not _same_target(text, shown):
            self._write(f" <{shown}>")

    # tables: only the innermost table is buffered; an outer one is written a cell per line
    def _table_start(self, tag: str) -> None:
        table = self.tables[-1] if self.tables else None
        if tag == "table":
            if table is not None and table.buffered:
                self._unbuffer(table)
            self.doc.end_line()
            self.tables.append(_Table())
        elif table is None or not table.buffered:
            self.sink.end_line()
        elif tag == "tr":
            self._close_row(table)
        else:
            table.cell = _Sink()
            self.sink = table.cell

    def _table_end(self, tag: str) -> None:
        table = self.tables[-1] if self.tables else None
        if table is None or not table.buffered:
            if tag == "table" and table is not None:
                self.tables.pop()
            self.sink.end_line()
            return
        if tag in ("td", "th") and table.cell is not None:
            text = table.cell.text()
            table.row.append(text)
            table.chars += len(text)
            table.cells += 1
            table.cell = None
            self.sink = self.doc
            if table.chars > _TABLE_BUFFER_CHARS or table.cells > _TABLE_BUFFER_CELLS:
                self._unbuffer(table)
        elif tag == "tr":
            self._close_row(table)
        elif tag == "table":
            self.tables.pop()
            self._close_row(table)
            for line in _render_table(table.rows):
                self.doc_line(line)
            self.doc.paragraph()

    def _close_row(self, table: _Table) -> None:
        if table.row:
            table.rows.append(table.row)
        table.row = []

    def _unbuffer(self, table: _Table) -> None:
        """Write what the table holds a cell per line and send the rest of it straight to the text."""
        self.sink = self.doc
        for row in [*table.rows, table.row]:
            for cell in row:
                for line in cell.split("\n"):
                    self.doc_line(line)
        if table.cell is not None:
            for line in table.cell.lines:
                self.doc_line(line)
            if table.cell.current:
                self._write("".join(table.cell.current).strip())
        table.buffered, table.rows, table.row, table.cell = False, [], [], None


def _is_outlook_line(element: etree._Element) -> bool:
    """Outlook writes every line as <p class=MsoNormal> with no margin: a line, not a paragraph."""
    return "MsoNormal" in (element.get("class") or "")


def _list_start(element: etree._Element) -> int:
    start = element.get("start") or "1"
    return int(start) if start.isdigit() and len(start) < 7 else 1


def _shown_url(href: str) -> str:
    if href.lower().startswith("mailto:"):
        return href[len("mailto:") :].split("?", 1)[0]
    return href


def _same_target(text: str, url: str) -> bool:
    def bare(value: str) -> str:
        value = value.strip().lower().rstrip("/")
        for scheme in ("https://", "http://", "mailto:"):
            value = value.removeprefix(scheme)
        return value

    return bare(text) == bare(url)


def _render_table(rows: list[list[str]]) -> list[str]:
    """Aligned columns for a small table of one-line cells; otherwise each cell on its own line(s)."""
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    used = [c for c in range(width) if any(c < len(row) and row[c].strip() for row in rows)]
    grid = [[row[c].strip() if c < len(row) else "" for c in used] for row in rows]
    single_line = all("\n" not in cell for row in grid for cell in row)
    widths = [max(len(row[c]) for row in grid) for c in range(len(used))]
    if len(used) > 1 and single_line and sum(widths) + 2 * len(widths) <= _ALIGNED_TABLE_WIDTH:
        return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in grid]
    lines: list[str] = []
    for row in grid:
        cells = [cell for cell in row if cell]
        if lines and len(cells) > 1:
            lines.append("")
        for cell in cells:
            lines.extend(cell.split("\n"))
    return lines

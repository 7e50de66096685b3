"""HTML-only mail turned into plain text: readable, no markup left, bounded whatever the HTML."""

from __future__ import annotations

import pytest

from mailtickets.parse import parse_message
from mailtickets.parse.html_text import MAX_TEXT_CHARS, TEXT_CUT_MARKER, bounded_html, html_to_text

CASES = [
    ("rule", "<p>above</p><hr><p>below</p>", "above\n\nbelow"),
    ("paragraphs", "<p>Hello <b>World</b>,</p><p>second   paragraph</p>", "Hello World,\n\nsecond paragraph"),
    ("gmail divs", "<div>one</div><div><br></div><div>two<br></div><div>three</div>", "one\n\ntwo\nthree"),
    ("outlook lines", '<p class="MsoNormal">Hi<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
     '<p class="MsoNormal">Works now.</p>', "Hi\n\nWorks now."),
    ("link text differs", '<a href="https://x.example/docs">the docs</a>', "the docs <https://x.example/docs>"),
    ("link text is the url", '<a href="https://x.example/">x.example</a>', "x.example"),
    ("mailto with a name", '<a href="mailto:bob@x.example?subject=hi">Bob</a>', "Bob <bob@x.example>"),
    ("mailto with the address", '<a href="mailto:bob@x.example">bob@x.example</a>', "bob@x.example"),
    ("javascript link", '<a href="javascript:alert(1)">Click</a>', "Click"),
    ("table aligned", "<table><tr><th>Name</th><th>Value</th></tr><tr><td>CPU</td><td>95 %</td></tr>"
     "<tr><td>Memory</td><td>3 GB</td></tr></table>", "Name    Value\nCPU     95 %\nMemory  3 GB"),
    ("table with paragraphs in cells", "<table><tr><td><p>a</p><p>b</p></td><td>c</td></tr></table>", "a\n\nb\nc"),
    ("nested layout table", "<table><tr><td><table><tr><td>in a</td><td>in b</td></tr></table></td>"
     "<td>outer</td></tr></table>", "in a  in b\n\nouter"),
    ("lists", "<ul><li>one</li><li>two<ul><li>two.a</li></ul></li></ul><ol start=3><li>three</li></ol>",
     "- one\n- two\n  - two.a\n\n3. three"),
    ("blockquote", "<div>answer</div><blockquote><div>question</div><div><br></div><blockquote>older</blockquote>"
     "</blockquote>", "answer\n> question\n>\n>> older"),
    ("pre", "<pre>  code\n    indented</pre>", "  code\n    indented"),
    ("head, style and script", "<html><head><title>T</title><style>p{}</style></head><body>body"
     "<script>evil()</script></body></html>", "body"),
    ("entities", "<p>5 &lt; 6 &amp;&nbsp;7</p>", "5 < 6 & 7"),
]


@pytest.mark.parametrize(("html", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_html_becomes_plain_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize("html", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_no_markdown_artefacts(html: str) -> None:
    text = html_to_text(html)
    for artefact in ("* * *", "](", "---|", "| ", "**", "# "):
        assert artefact not in text


HOSTILE = {
    "nested lists 8,000 deep": "<ul><li>x" * 8000,
    "nested lists 100,000 deep": "<ul><li>x" * 100_000,
    "nested tables 20,000 deep": "<table><tr><td>x" * 20_000,
    "nested quotes 100,000 deep": "<blockquote>x\n" * 100_000,
    "unclosed tags": "<a" * 200_000,
    "a wide table": "<table>" + "<tr><td>a<td>b" * 50_000 + "</table>",
}


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_html_gives_bounded_text(html: str) -> None:
    text = html_to_text(html, max_chars=50_000)
    assert len(text) <= 50_000 + len(TEXT_CUT_MARKER) + 1
    assert max((len(line) for line in text.splitlines()), default=0) < 100  # indentation and quote marks capped


def test_text_is_capped_with_a_marker() -> None:
    text = html_to_text("<p>word</p>" * 200_000, max_chars=1_000)
    assert text.endswith("\n" + TEXT_CUT_MARKER)
    assert len(text) <= 1_000 + len(TEXT_CUT_MARKER) + 1
    assert MAX_TEXT_CHARS >= 100_000


def test_empty_and_unparseable_html_give_empty_text() -> None:
    assert html_to_text("") == ""
    assert html_to_text("   ") == ""
    assert html_to_text("<html><body></body></html>") == ""


def test_shallow_html_goes_to_the_sanitiser_as_sent() -> None:
    html = '<div class="x"><p>Hello <b>there</b></p></div>'
    assert bounded_html(html) == html


def test_html_nested_beyond_the_parser_limit_is_cut_before_sanitising() -> None:
    deep = "<div>x" * 100_000
    bounded = bounded_html(deep)
    assert bounded.count("<div>") <= 256
    assert len(bounded) < 10_000


def test_an_html_only_mail_of_8000_nested_lists_is_small_once_parsed() -> None:
    raw = b"From: a@acme.example\nSubject: lists\nContent-Type: text/html; charset=utf-8\n\n" + b"<ul><li>x" * 8000
    parsed = parse_message(raw)
    assert 0 < len(parsed.text) < 5_000
    assert parsed.html is not None and parsed.html.count("<ul>") <= 256

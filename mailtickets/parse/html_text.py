"""HTML mail → plain, readable text, in one pass and bounded in time and size.

lxml (libxml2) parses; the renderer walks its events once. No markup survives: no `* * *` rules, no
markdown tables or `[text](url)` links. A table becomes aligned columns when it is small and simple, else
one cell per line; a link becomes "text <url>" only when its text differs from the URL; quoted parts
(`<blockquote>`) become "> " lines, as mail clients write them, so the quote stripper reads both kinds of
mail the same way. The work is linear in the input: libxml2 caps nesting depth (256), every text is copied
at most twice (a table is buffered only while it holds no other table), and the output is capped.
"""

from __future__ import annotations

from lxml import etree

from mailtickets.parse.html_render import Renderer

MAX_TEXT_CHARS = 1_000_000  # default cap on the text derived from one HTML body
TEXT_CUT_MARKER = "[…]"
_LIBXML2_MAX_DEPTH = 255  # libxml2 stops nesting at 256 levels (without its "huge" option)


def html_to_text(html: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Readable plain text of an HTML body; at most about `max_chars` characters, then TEXT_CUT_MARKER."""
    root = _parse(html)
    if root is None:
        return ""
    renderer = Renderer(max_chars)
    _walk(root, renderer)
    text = renderer.doc.text()
    if renderer.full:
        return text[:max_chars].rstrip() + "\n" + TEXT_CUT_MARKER
    return text


def bounded_html(html: str) -> str:
    """The HTML as sent, or lxml's rewrite of it when it nests deeper than libxml2 follows (256 levels).

    nh3 (the sanitiser) takes time quadratic in nesting depth: 8,000 nested lists cost it a second, 100,000
    nested divs minutes. What lies deeper than the limit is not in the text either.
    """
    root = _parse(html)
    if root is None or _depth(root) < _LIBXML2_MAX_DEPTH:
        return html
    return str(etree.tostring(root, encoding="unicode", method="html"))


def _parse(html: str) -> etree._Element | None:
    if not html.strip():
        return None
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    try:
        return etree.fromstring(html.encode("utf-8", "replace"), parser)
    except etree.LxmlError:
        return None


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def _walk(root: etree._Element, renderer: Renderer) -> None:
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if not isinstance(tag, str):  # an entity or comment node left by the parser
            if event == "end":
                renderer.data(element.tail)
            continue
        if event == "start":
            renderer.start(tag, element)
            renderer.data(element.text)
        else:
            renderer.end(tag, element)
            renderer.data(element.tail)
        if renderer.full:
            return

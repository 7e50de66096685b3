"""Cost of HTML→text and quote stripping on hostile shapes, at growing sizes: linear means the time per
KB stays flat as the input doubles.

    python bench/parse_text.py [--sizes 1,2,4]

Prints, per shape and size multiplier, the input size, the time and the output size. The shapes are the
ones that were superlinear before (html2text on nested lists, mail-parser-reply on blank lines).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from mailtickets.parse.html_text import html_to_text
from mailtickets.parse.quotes import strip_quoted

HTML_SHAPES: dict[str, Callable[[int], str]] = {
    "nested <ul><li> (8,000 per step)": lambda n: "<ul><li>x" * (8_000 * n),
    "nested tables (8,000 per step)": lambda n: "<table><tr><td>x" * (8_000 * n),
    "flat paragraphs (50,000 per step)": lambda n: "<p>word word</p>" * (50_000 * n),
    "one wide table (20,000 rows per step)": lambda n: "<table>" + "<tr><td>a</td><td>b</td></tr>" * (20_000 * n),
}
TEXT_SHAPES: dict[str, Callable[[int], str]] = {
    "blank lines (20,000 per step)": lambda n: "hi\n" + "\n" * (20_000 * n) + "> q\nbye",
    "quote depth (100,000 per step)": lambda n: ">" * (100_000 * n) + " old\nnew",
    "header look-alikes (20,000 per step)": lambda n: "From: x\nSent: y\n" * (20_000 * n),
    "lines ending in a colon (20,000 per step)": lambda n: ("On 1 Mar x" * 20 + ":\n") * (20_000 * n),
}


def run(name: str, make: Callable[[int], str], work: Callable[[str], str], sizes: list[int]) -> None:
    for n in sizes:
        data = make(n)
        start = time.perf_counter()
        out = work(data)
        seconds = time.perf_counter() - start
        kb = len(data.encode()) / 1024
        print(f"{name:45} x{n}: {kb:9.0f} KB in {seconds * 1000:8.1f} ms ({seconds * 1e6 / kb:6.1f} µs/KB), "
              f"{len(out):>9} chars out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,2,4")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    for name, make in HTML_SHAPES.items():
        run(f"html_to_text: {name}", make, html_to_text, sizes)
    for name, make in TEXT_SHAPES.items():
        run(f"strip_quoted: {name}", make, strip_quoted, sizes)


if __name__ == "__main__":
    main()

"""Table-driven: replies written for this project (tests/fixtures/eml/replies/) from each client and
language, plain and HTML-only, top-, bottom- and inter-posted, forwarded; the new text that quote
stripping keeps must be exactly what the sender wrote (after whitespace normalisation), and no line of it
may be lost."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from mailtickets.parse import parse_message
from mailtickets.parse.quotes import reply_text

REPLIES = Path(__file__).parent / "fixtures" / "eml" / "replies"
TABLE: dict[str, dict[str, Any]] = tomllib.loads((REPLIES / "expected.toml").read_text("utf-8"))
TARGET = 0.95
MIN_REPLIES = 60


def _new_text(name: str) -> str:
    parsed = parse_message((REPLIES / name).read_bytes())
    return reply_text(parsed.text, parsed.subject)


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_the_table_lists_every_reply_and_holds_enough() -> None:
    on_disk = {path.name for path in REPLIES.glob("*.eml")}
    assert on_disk == set(TABLE)
    assert len(TABLE) >= MIN_REPLIES
    for entry in TABLE.values():
        assert entry["new_text"].strip() and entry["mime"] in ("plain", "both", "html")


@pytest.mark.parametrize("name", sorted(TABLE))
def test_no_line_the_sender_wrote_is_lost(name: str) -> None:
    kept = {_normalised(line) for line in _new_text(name).splitlines()}
    lost = [line for line in TABLE[name]["new_text"].splitlines() if line.strip() and _normalised(line) not in kept]
    assert lost == []


def test_new_text_is_exact_for_at_least_95_percent(capsys: pytest.CaptureFixture[str]) -> None:
    wrong = [name for name in sorted(TABLE) if _normalised(_new_text(name)) != _normalised(TABLE[name]["new_text"])]
    score = 1 - len(wrong) / len(TABLE)
    with capsys.disabled():
        print(f"\nreplies: {len(TABLE) - len(wrong)}/{len(TABLE)} exact ({score:.1%}); not exact: {wrong}")
    assert score >= TARGET, wrong

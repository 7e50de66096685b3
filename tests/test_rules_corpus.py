"""The rules against the real-world fixture corpus: which rules each message matches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailtickets.parse.automatic import automatic_reason
from mailtickets.parse.parser import parse_message
from mailtickets.rules import MessageFacts, compile_rules, evaluate, load_rules_toml

EML = Path(__file__).parent / "fixtures" / "eml"
RULES = compile_rules(
    load_rules_toml("""
[[rule]]
name = "auto"
conditions = [{ field = "auto_generated", value = true }]
actions = [{ action = "add_tag", value = "auto" }]

[[rule]]
name = "lists"
match = "any"
conditions = [
  { field = "header:List-Id", op = "regex", value = "." },
  { field = "header:Precedence", op = "in", value = ["bulk", "list"] },
]
actions = [{ action = "add_tag", value = "list" }]

[[rule]]
name = "attachments"
conditions = [{ field = "has_attachments", value = true }]
actions = [{ action = "add_tag", value = "files" }]

[[rule]]
name = "urgent"
match = "any"
conditions = [
  { field = "subject", op = "regex", value = "\\\\b(dringend|urgent)\\\\b" },
  { field = "subject", op = "contains", value = "Störung" },
]
actions = [{ action = "set_priority", value = "high" }]

[[rule]]
name = "cjk printer"
conditions = [{ field = "subject", op = "regex", value = "打印机" }]
actions = [{ action = "set_category", value = "Printers" }]

[[rule]]
name = "acme only"
conditions = [{ field = "from_domain", op = "equals", value = "ACME.example" }]
actions = [{ action = "add_tag", value = "acme" }]

[[rule]]
name = "strangers"
conditions = [{ field = "from_domain", op = "in", value = ["evil.example", "acme-example.com"] }]
actions = [{ action = "quarantine", value = "known bad domain" }]
""")
)

CASES = {
    "bounce-postfix-dsn.eml": ["auto"],
    "mailman-list-post.eml": ["auto", "lists"],
    "newsletter-precedence-bulk.eml": ["auto", "lists", "acme only"],
    "apple-mail-new-inline-pdf.eml": ["attachments", "acme only"],
    "outlook-inline-cid-image.eml": ["acme only"],
    "windows-1252-subject-euro-quotes.eml": ["urgent"],
    "raw-utf8-subject-header.eml": ["urgent"],
    "very-long-folded-subject.eml": ["urgent"],
    "gb2312-subject-and-body.eml": ["cjk printer"],
    "uppercase-sender-address.eml": ["acme only"],
    "display-name-spoofs-contact.eml": ["urgent", "strangers"],
    "lookalike-client-domain.eml": ["strangers"],
    "no-from-header.eml": [],
}


@pytest.mark.parametrize(("name", "expected"), sorted(CASES.items()))
def test_fixture_matches(name: str, expected: list[str]) -> None:
    parsed = parse_message((EML / name).read_bytes())
    facts = MessageFacts(parsed, "support", None, None, False, automatic_reason(parsed))
    assert list(evaluate(RULES, facts).matched_rules) == expected


def test_every_fixture_evaluates_the_same_with_and_without_the_trace() -> None:
    for path in sorted(EML.glob("*.eml")):
        parsed = parse_message(path.read_bytes())
        facts = MessageFacts(parsed, "support", None, None, False, automatic_reason(parsed))
        fast, explained = evaluate(RULES, facts), evaluate(RULES, facts, explain=True)
        assert fast == dataclasses.replace(explained, trace=()), path.name
        assert [t.name for t in explained.trace if t.matched] == list(explained.matched_rules), path.name

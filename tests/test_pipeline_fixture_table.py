"""The fixture table itself is well-formed: every message listed, every entry a real file, outcomes valid.

The messages are run through the pipeline by the table-driven pipeline test; this module only guards the
table, so that a typo in expected.toml fails loudly instead of silently skipping a message.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "eml"
TABLE_PATH = FIXTURES / "expected.toml"
OUTCOMES = frozenset({"created", "replied", "reopened", "duplicate", "quarantined", "dropped"})
WITH_TICKET = frozenset({"created", "replied", "reopened"})
KEYS: dict[str, type] = {
    "outcome": str,
    "ticket": str,
    "reason_contains": str,
    "subject": str,
    "text_contains": list,
    "text_excludes": list,
    "new_text_excludes": list,
    "attachments": list,
    "sender": str,
    "description": str,
}
TICKET_REF = re.compile(r"^TCK-[1-9][0-9]*$")
UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_FIXTURE_BYTES = 30_000
MIN_FIXTURES = 40


def _table() -> dict[str, dict[str, Any]]:
    return tomllib.loads(TABLE_PATH.read_text(encoding="utf-8"))


TABLE = _table()


def test_every_message_file_is_listed_and_every_entry_exists() -> None:
    on_disk = {path.name for path in FIXTURES.glob("*.eml")}
    assert sorted(on_disk - TABLE.keys()) == [], "messages without an expected outcome"
    assert sorted(TABLE.keys() - on_disk) == [], "table entries without a message file"


def test_there_are_enough_fixtures() -> None:
    assert len(TABLE) >= MIN_FIXTURES


@pytest.mark.parametrize("name", sorted(TABLE))
def test_entry_has_only_known_keys_of_the_right_type(name: str) -> None:
    entry = TABLE[name]
    assert set(entry) <= KEYS.keys(), f"unknown keys {set(entry) - KEYS.keys()}"
    for key, value in entry.items():
        assert isinstance(value, KEYS[key]), f"{key} must be {KEYS[key].__name__}"
        if isinstance(value, list):
            assert value and all(isinstance(item, str) and item for item in value), f"{key}: non-empty strings"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_entry_outcome_and_ticket_agree(name: str) -> None:
    entry = TABLE[name]
    assert entry.get("outcome") in OUTCOMES
    assert entry.get("description", "").strip(), "a one-line description is required"
    assert "\n" not in entry["description"]
    if entry["outcome"] in WITH_TICKET:
        assert TICKET_REF.match(entry.get("ticket", "")), "created/replied/reopened name their ticket"
    if entry["outcome"] in ("quarantined", "dropped"):
        assert "ticket" not in entry
    if "reason_contains" in entry:
        assert entry["outcome"] in ("quarantined", "dropped")
        assert entry["reason_contains"] == entry["reason_contains"].lower()
    if "new_text_excludes" in entry:
        assert entry["outcome"] in ("replied", "reopened", "created")


@pytest.mark.parametrize("name", sorted(TABLE))
def test_entry_expectations_are_plausible(name: str) -> None:
    entry = TABLE[name]
    for filename in entry.get("attachments", []):
        assert not UNSAFE_NAME.search(filename), f"expected attachment name {filename!r} is not a safe name"
    if "sender" in entry:
        assert entry["sender"] == entry["sender"].lower() and "@" in entry["sender"]
    if "subject" in entry:
        assert entry["subject"] == " ".join(entry["subject"].split()), "subjects are stored unfolded"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_message_file_is_small(name: str) -> None:
    assert (FIXTURES / name).stat().st_size <= MAX_FIXTURE_BYTES

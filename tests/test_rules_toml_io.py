from __future__ import annotations

import pytest

from mailtickets.rules import RulesInvalid, dump_rules_toml, load_rules_toml

GOOD = """\
[[rule]]
name = "Acme is urgent"
match = "any"
conditions = [
  { field = "from_domain", op = "in", value = ["acme.example", "acme.test"] },
  { field = "subject", op = "regex", value = "urgent|down", not = true },
  { field = "has_attachments", value = true },
]
actions = [
  { action = "set_priority", value = "high" },
  { action = "add_tag", value = "acme" },
  { action = "suppress_acknowledgement" },
]

[[rule]]
name = "Newsletters"
enabled = false
stop = true
conditions = [{ field = "header:List-Id", op = "contains", value = "news" }]
actions = [{ action = "drop", value = "newsletter" }]
"""

BAD = """\
[[rule]]
name = "fine"
actions = [{ action = "add_tag", value = "ok" }]

[[rule]]
name = "backref"
conditions = [
  { field = "subject", op = "equals", value = "x" },
  { field = "subject", op = "regex", value = "(a)\\\\1" },
]
actions = [{ action = "set_priority", value = "urgent" }]

[[rule]]
name = "fine"
match = "most"
conditions = [{ field = "colour", op = "equals", value = "red" }]
actions = [{ action = "add_tag", value = "x" }]
"""


def test_round_trip_keeps_every_rule_in_order() -> None:
    specs = load_rules_toml(GOOD)
    assert [s.name for s in specs] == ["Acme is urgent", "Newsletters"]
    assert [s.position for s in specs] == [0, 1]
    assert specs[0].conditions[1].negate is True
    assert load_rules_toml(dump_rules_toml(specs)) == specs


def test_invalid_file_is_refused_whole_with_rule_field_and_line() -> None:
    with pytest.raises(RulesInvalid) as caught:
        load_rules_toml(BAD)
    found = {(p.rule, p.field, p.line) for p in caught.value.problems}
    assert found == {
        ("backref", "conditions[2].value", 9),
        ("backref", "actions[1].value", 11),
        ("fine", "name", 14),
        ("fine", "match", 15),
        ("fine", "conditions[1].field", 16),
    }
    text = str(caught.value)
    assert "line 9: rule 'backref', conditions[2].value: regular expression refused" in text
    assert "must be one of low, medium, high, not 'urgent'" in text


def test_problems_in_exported_layout_point_at_their_lines() -> None:
    exported = dump_rules_toml(load_rules_toml(GOOD)).replace('"acme.test"', "3")
    with pytest.raises(RulesInvalid) as caught:
        load_rules_toml(exported)
    (problem,) = caught.value.problems
    assert problem.field == "conditions[1].value"
    assert problem.line is not None and "value = [" in exported.splitlines()[problem.line - 1]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[rule]\nname = 1", "not valid TOML"),
        ('colour = "red"\n', "unknown top-level key"),
        ('[[rule]]\nname = "x"\nactions = []\n', "at least one action"),
        ('[[rule]]\nname = "x"\nactions = [{ action = "paint" }]\n', "unknown action 'paint'"),
        ('[[rule]]\nname = "x"\nactions = [{ action = "assign_agent", value = "bob" }]\n', "email address"),
        ('[[rule]]\nactions = [{ action = "add_tag", value = "t" }]\n', "rule #1"),
        (
            '[[rule]]\nname = "x"\nconditions = [{ field = "subject", op = "regex", value = "' + "a" * 1001 + '" }]'
            '\nactions = [{ action = "add_tag", value = "t" }]\n',
            "the limit is 1000",
        ),
        (
            '[[rule]]\nname = "x"\nconditions = [{ field = "subject", op = "in", value = "a" }]\n'
            'actions = [{ action = "add_tag", value = "t" }]\n',
            "non-empty list",
        ),
        (
            '[[rule]]\nname = "x"\nconditions = [{ field = "sender_known", op = "contains", value = "y" }]\n'
            'actions = [{ action = "add_tag", value = "t" }]\n',
            "yes/no",
        ),
    ],
)
def test_each_kind_of_mistake_is_explained(text: str, fragment: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        load_rules_toml(text)
    assert fragment in str(caught.value)
    assert all(p.line is not None for p in caught.value.problems)


def test_the_documented_example_file_loads_and_round_trips() -> None:
    from pathlib import Path

    example = (Path(__file__).parent.parent / "docs" / "rules.example.toml").read_text()
    rules = load_rules_toml(example)
    assert len(rules) == 5 and rules[0].name == "Outages are urgent" and not rules[-1].enabled
    assert load_rules_toml(dump_rules_toml(rules)) == rules

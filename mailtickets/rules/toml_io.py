"""The rules file admins keep in version control, read and written as TOML.

    [[rule]]
    name = "Acme is urgent"
    enabled = true
    match = "all"            # or "any"
    stop = false
    conditions = [
      { field = "from_domain", op = "equals", value = "acme.example" },
      { field = "subject", op = "contains", value = "newsletter", not = true },
    ]
    actions = [
      { action = "set_priority", value = "high" },
      { action = "add_tag", value = "acme" },
    ]

Rules apply in file order.  tomllib keeps no positions, so the line of a problem is found by a small scan
of the source for the `[[rule]]` headers and the keys inside each rule (good for files written as above
or as exported; for exotic layouts it falls back to the rule's header line).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Any, Final

import tomli_w

from mailtickets.rules.compile import compile_rules
from mailtickets.rules.model import (
    RuleProblem,
    RulesInvalid,
    RuleSpec,
    spec_from_dict,
    spec_to_dict,
    with_position,
)

HEADER: Final = "# mailtickets routing rules: applied in this order to every new message.\n\n"
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_TOML_ERROR_LINE = re.compile(r"at line (\d+)")
# What each list item in a rule starts with, to find the N-th condition or action.
_ITEM_KEY = {"conditions": "field", "actions": "action"}


def load_rules_toml(text: str) -> tuple[RuleSpec, ...]:
    """Parse and validate a whole rules file; raises RulesInvalid listing every problem with its line."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_ERROR_LINE.search(str(exc))
        line = int(found[1]) if found else None
        raise RulesInvalid([RuleProblem("(file)", (), f"not valid TOML: {exc}", line)]) from exc
    lines = _SourceLines(text)
    problems = [
        RuleProblem("(file)", (key,), "unknown top-level key (rules are [[rule]] tables)", lines.top_level(key))
        for key in document
        if key != "rule"
    ]
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        tables = []
        problems.append(RuleProblem("(file)", ("rule",), "must be [[rule]] tables", None))
    problems.extend(lines.locate(i, p) for i, p in _duplicate_names(tables))
    specs = []
    for index, table in enumerate(tables):
        spec, found_problems = spec_from_dict(table, index)
        problems.extend(lines.locate(index, p) for p in found_problems)
        if spec is not None:
            specs.append(with_position(spec, index))
    _check_compiles(specs, lines, problems)
    return tuple(specs)


def dump_rules_toml(specs: Sequence[RuleSpec]) -> str:
    """The file `load_rules_toml` reads back to the same rules, in order."""
    return HEADER + tomli_w.dumps({"rule": [spec_to_dict(s) for s in specs]})


def _duplicate_names(tables: list[Any]) -> list[tuple[int, RuleProblem]]:
    seen: set[str] = set()
    found = []
    for index, table in enumerate(tables):
        name = table.get("name") if isinstance(table, dict) else None
        if not isinstance(name, str):
            continue
        if name.strip().casefold() in seen:
            found.append((index, RuleProblem(name.strip(), ("name",), "another rule above has this name")))
        seen.add(name.strip().casefold())
    return found


def _check_compiles(specs: list[RuleSpec], lines: _SourceLines, problems: list[RuleProblem]) -> None:
    try:
        compile_rules(specs)
    except RulesInvalid as exc:
        problems.extend(lines.locate(_index_of(specs, p.rule), p) for p in exc.problems)
    if problems:
        raise RulesInvalid(problems)


def _index_of(specs: Sequence[RuleSpec], name: str) -> int:
    # Duplicates point at the later rule: that is the one to rename.
    positions = [s.position for s in specs if s.name == name]
    return positions[-1] if positions else -1


class _SourceLines:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [n for n, line in enumerate(self.lines) if _RULE_HEADER.match(line)]

    def top_level(self, key: str) -> int | None:
        end = self.starts[0] if self.starts else len(self.lines)
        return self._find_key(range(end), key, 0)

    def locate(self, index: int, problem: RuleProblem) -> RuleProblem:
        if not 0 <= index < len(self.starts):
            return problem
        start = self.starts[index]
        span = range(start, self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines))
        line = self._line_in_rule(span, problem.path)
        line = start if line is None else line
        return RuleProblem(problem.rule, problem.path, problem.message, line + 1)

    def _line_in_rule(self, span: range, path: tuple[Any, ...]) -> int | None:
        if not path:
            return None
        section = path[0]
        if len(path) >= 2 and isinstance(path[1], int) and section in _ITEM_KEY:
            item_line = self._find_key(span, _ITEM_KEY[section], path[1])
            if item_line is not None and len(path) == 3:
                # Inline tables sit on one line; in [[rule.conditions]] form the key follows the item key.
                after = self._find_key(span, _ITEM_KEY[section], path[1] + 1)
                stop = span.stop if after is None or after == item_line else after
                found = self._find_key(range(item_line, stop), str(path[2]), 0)
                return item_line if found is None else found
            if item_line is not None:
                return item_line
        return self._find_key(span, str(section), 0)

    def _find_key(self, span: range, key: str, occurrence: int) -> int | None:
        pattern = re.compile(r'(?:^|[{,\s])"?' + re.escape(key) + r'"?\s*=')
        seen = 0
        for n in span:
            count = len(pattern.findall(self.lines[n]))
            if seen + count > occurrence:
                return n
            seen += count
        return None

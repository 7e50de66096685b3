"""Turning validated specs into matchers, once, when rules are loaded.

Regular expressions go through `patterns` (RE2); a spec that passed validation always compiles, but
rules read back from the database are compiled with the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from mailtickets.rules.facts import MessageFacts
from mailtickets.rules.model import HEADER_PREFIX, Condition, RuleProblem, RulesInvalid, RuleSpec
from mailtickets.rules.patterns import PatternRefused, compile_pattern

MAX_BODY_CHARS: Final = 64_000  # body conditions look at this many characters from the start

Test = Callable[[str], bool]
Search = Callable[[bytes], bool]


class FactView:
    """The values of each condition field for one message, computed (and case-folded) once per message."""

    def __init__(self, facts: MessageFacts) -> None:
        self.facts = facts
        self._raw: dict[str, tuple[str, ...]] = {}
        self._folded: dict[str, tuple[str, ...]] = {}
        self._encoded: dict[str, tuple[bytes, ...]] = {}

    def raw(self, field: str) -> tuple[str, ...]:
        values = self._raw.get(field)
        if values is None:
            values = self._raw[field] = field_values(self.facts, field)
        return values

    def folded(self, field: str) -> tuple[str, ...]:
        values = self._folded.get(field)
        if values is None:
            values = self._folded[field] = tuple(v.casefold() for v in self.raw(field))
        return values

    def encoded(self, field: str) -> tuple[bytes, ...]:
        values = self._encoded.get(field)
        if values is None:
            values = self._encoded[field] = tuple(v.encode("utf-8", "surrogatepass") for v in self.raw(field))
        return values


def field_values(facts: MessageFacts, field: str) -> tuple[str, ...]:
    """Every value a text field has for this message; () when it has none (e.g. an unknown client)."""
    parsed = facts.parsed
    if field.startswith(HEADER_PREFIX):
        return tuple(parsed.headers.get(field[len(HEADER_PREFIX) :].lower(), ()))
    sender = parsed.sender or ""
    simple: dict[str, tuple[str, ...]] = {
        "from": (sender,) if sender else (),
        "from_domain": (sender.rpartition("@")[2],) if "@" in sender else (),
        "to": parsed.to,
        "cc": parsed.cc,
        "delivered_to": parsed.delivered_to,
        "recipients": parsed.to + parsed.cc + parsed.delivered_to,
        "subject": (parsed.subject,),
        "body": (parsed.text[:MAX_BODY_CHARS],),
        "client": (facts.client_name,) if facts.client_name else (),
        "contact": (facts.contact_email,) if facts.contact_email else (),
        "mailbox": (facts.mailbox,),
    }
    return simple[field]


def bool_value(facts: MessageFacts, field: str) -> bool:
    if field == "sender_known":
        return facts.sender_known
    if field == "has_attachments":
        # Images embedded by Content-ID (signature logos, pasted screenshots) are not what admins mean
        # by attachments; an inline PDF from Apple Mail is.
        return any(not (a.inline and a.content_id) for a in facts.parsed.attachments)
    return facts.automatic_reason is not None


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    condition: Condition
    test: Test | None  # on case-folded text; None for regular expressions and yes/no fields
    search: Search | None  # a regular expression, on UTF-8 text
    # Copied out of `condition`: this runs for every condition of every message.
    field: str = ""
    negate: bool = False

    def holds(self, view: FactView) -> bool:
        test, search = self.test, self.search
        if test is not None:
            result = any(map(test, view.folded(self.field)))
        elif search is not None:
            result = any(map(search, view.encoded(self.field)))
        else:
            result = bool_value(view.facts, self.field) == self.condition.value
        return result != self.negate


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: RuleSpec
    conditions: tuple[CompiledCondition, ...]
    name: str = ""  # the fields below are copied from `spec` for the hot loop
    enabled: bool = True
    match_any: bool = False
    stop: bool = False


def compile_rule(spec: RuleSpec) -> CompiledRule:
    """Build the matchers for one rule; raises RulesInvalid when a pattern is refused."""
    problems: list[RuleProblem] = []
    compiled = []
    for index, condition in enumerate(spec.conditions):
        try:
            compiled.append(_compile_condition(condition))
        except PatternRefused as exc:
            path = ("conditions", index, "value")
            problems.append(RuleProblem(spec.name, path, f"regular expression refused: {exc}"))
    if problems:
        raise RulesInvalid(problems)
    return CompiledRule(spec, tuple(compiled), spec.name, spec.enabled, spec.match == "any", spec.stop)


def compile_rules(specs: Iterable[RuleSpec]) -> tuple[CompiledRule, ...]:
    """Compile all rules or none: every problem (duplicate names included) is reported together."""
    problems: list[RuleProblem] = []
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name.casefold() in seen:
            problems.append(RuleProblem(spec.name, ("name",), "another rule already has this name"))
        seen.add(spec.name.casefold())
        try:
            compiled.append(compile_rule(spec))
        except RulesInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise RulesInvalid(problems)
    return tuple(compiled)


def _compile_condition(condition: Condition) -> CompiledCondition:
    test = search = None
    if isinstance(condition.value, (str, tuple)) and condition.operator == "regex":
        search = compile_pattern(str(condition.value))
    elif isinstance(condition.value, (str, tuple)):
        test = _text_test(condition.operator, condition.value)
    return CompiledCondition(condition, test, search, condition.field, condition.negate)


def _text_test(operator: str, value: str | Sequence[str]) -> Test:
    if isinstance(value, tuple):
        choices = frozenset(v.casefold() for v in value)
        return choices.__contains__
    target = str(value).casefold()
    tests: dict[str, Test] = {
        "equals": target.__eq__,
        "contains": lambda v: target in v,
        "starts_with": lambda v: v.startswith(target),
        "ends_with": lambda v: v.endswith(target),
    }
    return tests[operator]

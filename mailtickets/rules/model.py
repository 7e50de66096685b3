"""Rules as data: frozen specs, the vocabulary they may use, and validation from plain dicts.

The dict shape is the one admins write in TOML and the one stored in the `rules` table:
``{"name", "enabled", "match", "stop", "conditions": [{"field", "op", "value", "not"}],
"actions": [{"action", "value"}]}``.  Validation collects every problem instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from mailtickets.errors import InvalidInput
from mailtickets.rules.patterns import PatternRefused, compile_pattern

MAX_NAME_LENGTH: Final = 200  # the width of rules.name
MAX_VALUE_LENGTH: Final = 1000  # any text value, a regular expression included
MAX_LIST_ITEMS: Final = 1000  # entries of an `in` list

TEXT_FIELDS: Final = frozenset(
    {
        "from",
        "from_domain",
        "to",
        "cc",
        "delivered_to",
        "recipients",
        "subject",
        "body",
        "client",
        "contact",
        "mailbox",
    }
)
BOOL_FIELDS: Final = frozenset({"sender_known", "has_attachments", "auto_generated"})
HEADER_PREFIX: Final = "header:"
TEXT_OPERATORS: Final = frozenset({"equals", "contains", "starts_with", "ends_with", "regex", "in"})
PRIORITIES: Final = ("low", "medium", "high")
STATUSES: Final = ("open", "working", "hold", "auto-close", "closed")
# Action name -> allowed values (None: any non-empty text; () : takes no value).
ACTIONS: Final[Mapping[str, tuple[str, ...] | None]] = {
    "set_client": None,
    "set_contact": None,
    "set_priority": PRIORITIES,
    "set_category": None,
    "assign_agent": None,
    "set_status": STATUSES,
    "add_tag": None,
    "suppress_acknowledgement": (),
    "quarantine": None,
    "drop": None,
}
EMAIL_ACTIONS: Final = frozenset({"set_contact", "assign_agent"})

ConditionValue = str | bool | tuple[str, ...]
PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # e.g. "from_domain", "header:X-Priority", "has_attachments"
    operator: str  # one of TEXT_OPERATORS; "equals" for the yes/no fields
    value: ConditionValue
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # one of ACTIONS
    value: str | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    enabled: bool = True
    position: int = 0
    match: str = "all"  # "all" or "any" of the conditions; a rule without conditions always matches
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    stop: bool = False


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One reason a rule is refused: which rule, where in it, why, and (from a file) on which line."""

    rule: str  # the rule's name, or "rule #N" when it has none
    path: tuple[PathPart, ...]  # e.g. ("conditions", 0, "value"); indexes are 0-based here
    message: str
    line: int | None = None

    @property
    def field(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(rule)"

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}rule {self.rule!r}, {self.field}: {self.message}"


class RulesInvalid(InvalidInput):
    """One or more rules were refused; nothing was changed."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "invalid rules:\n" + "\n".join(f"  {p}" for p in self.problems),
            {f"{p.rule}.{p.field}": p.message for p in self.problems},
        )


def spec_from_dict(data: Mapping[str, Any], index: int = 0) -> tuple[RuleSpec | None, list[RuleProblem]]:
    """Validate one rule given as plain data; `index` (0-based) names it when it has no usable name."""
    checker = _Checker(data, index)
    spec = checker.spec()
    return (spec if not checker.problems else None), checker.problems


def rule_from_dict(data: Mapping[str, Any]) -> RuleSpec:
    """Validate one rule given as plain data (e.g. an API request body); raises RulesInvalid."""
    spec, problems = spec_from_dict(data)
    if spec is None:
        raise RulesInvalid(problems)
    return spec


def spec_to_dict(spec: RuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "enabled": spec.enabled,
        "match": spec.match,
        "stop": spec.stop,
        "conditions": [_condition_to_dict(c) for c in spec.conditions],
        "actions": [_action_to_dict(a) for a in spec.actions],
    }


def with_position(spec: RuleSpec, position: int) -> RuleSpec:
    return replace(spec, position=position)


def _action_to_dict(action: Action) -> dict[str, Any]:
    return {"action": action.kind} if action.value is None else {"action": action.kind, "value": action.value}


def _condition_to_dict(condition: Condition) -> dict[str, Any]:
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    data: dict[str, Any] = {"field": condition.field, "op": condition.operator, "value": value}
    if condition.negate:
        data["not"] = True
    return data


_RULE_KEYS: Final = frozenset({"name", "enabled", "match", "stop", "conditions", "actions"})
_CONDITION_KEYS: Final = frozenset({"field", "op", "value", "not"})
_ACTION_KEYS: Final = frozenset({"action", "value"})


class _Checker:
    """Walks one rule's data, recording a RuleProblem for everything wrong with it."""

    def __init__(self, data: Mapping[str, Any], index: int) -> None:
        self.data = data
        name = data.get("name")
        self.label = name.strip() if isinstance(name, str) and name.strip() else f"rule #{index + 1}"
        self.problems: list[RuleProblem] = []

    def fail(self, path: tuple[PathPart, ...], message: str) -> None:
        self.problems.append(RuleProblem(self.label, path, message))

    def spec(self) -> RuleSpec:
        self._unknown_keys(self.data, _RULE_KEYS, ())
        name = self._text(self.data.get("name"), ("name",), MAX_NAME_LENGTH) or self.label
        match = self.data.get("match", "all")
        if match not in ("all", "any"):
            self.fail(("match",), f'must be "all" or "any", not {match!r}')
        conditions = tuple(self._each(self.data.get("conditions", []), "conditions", self._condition))
        actions = tuple(self._each(self.data.get("actions", []), "actions", self._action))
        if self.data.get("actions", []) == []:
            self.fail(("actions",), "a rule needs at least one action")
        return RuleSpec(
            name=name,
            enabled=self._flag("enabled", True),
            match=str(match),
            conditions=conditions,
            actions=actions,
            stop=self._flag("stop", False),
        )

    def _flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail((key,), f"must be true or false, not {value!r}")
            return default
        return value

    def _text(self, value: Any, path: tuple[PathPart, ...], limit: int = MAX_VALUE_LENGTH) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be non-empty text" if value is not None else "is required")
            return None
        if len(value) > limit:
            self.fail(path, f"is {len(value)} characters long, the limit is {limit}")
            return None
        return value

    def _unknown_keys(self, data: Mapping[str, Any], allowed: frozenset[str], path: Path) -> None:
        for key in sorted(set(data) - allowed):
            self.fail((*path, key), f"unknown key (expected one of: {_listing(allowed)})")

    def _each(self, items: Any, key: str, build: Any) -> list[Any]:
        if not isinstance(items, list):
            self.fail((key,), "must be a list of tables")
            return []
        built = []
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                self.fail((key, position), "must be a table such as { field = ..., op = ..., value = ... }")
                continue
            result = build(item, (key, position))
            if result is not None:
                built.append(result)
        return built

    def _condition(self, item: Mapping[str, Any], path: tuple[PathPart, ...]) -> Condition | None:
        self._unknown_keys(item, _CONDITION_KEYS, path)
        field = item.get("field")
        negate = item.get("not", False)
        if not isinstance(negate, bool):
            self.fail((*path, "not"), f"must be true or false, not {negate!r}")
        if field in BOOL_FIELDS:
            return self._bool_condition(str(field), item, path, negate is True)
        if not _is_text_field(field):
            self.fail((*path, "field"), f"unknown field {field!r}")
            return None
        op = item.get("op")
        if op not in TEXT_OPERATORS:
            self.fail((*path, "op"), f"unknown operator {op!r} (expected one of: {_listing(TEXT_OPERATORS)})")
            return None
        value = self._condition_value(str(op), item.get("value"), (*path, "value"))
        if op == "regex" and isinstance(value, str):
            try:
                compile_pattern(value)
            except PatternRefused as exc:
                self.fail((*path, "value"), f"regular expression refused: {exc}")
                return None
        return None if value is None else Condition(str(field), str(op), value, negate is True)

    def _bool_condition(
        self, field: str, item: Mapping[str, Any], path: tuple[PathPart, ...], negate: bool
    ) -> Condition | None:
        op = item.get("op", "equals")
        value = item.get("value", True)
        if op != "equals":
            self.fail((*path, "op"), f'{field} is yes/no: use op = "equals" (or leave op out)')
        if not isinstance(value, bool):
            self.fail((*path, "value"), f"{field} is yes/no: the value must be true or false")
            return None
        return Condition(field, "equals", value, negate)

    def _condition_value(self, op: str, value: Any, path: tuple[PathPart, ...]) -> ConditionValue | None:
        if op != "in":
            return self._text(value, path)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.fail(path, 'the "in" operator needs a non-empty list of texts')
            return None
        if len(value) > MAX_LIST_ITEMS:
            self.fail(path, f"has {len(value)} entries, the limit is {MAX_LIST_ITEMS}")
            return None
        return tuple(value)

    def _action(self, item: Mapping[str, Any], path: tuple[PathPart, ...]) -> Action | None:
        self._unknown_keys(item, _ACTION_KEYS, path)
        kind = item.get("action")
        if not isinstance(kind, str) or kind not in ACTIONS:
            self.fail((*path, "action"), f"unknown action {kind!r} (expected one of: {', '.join(ACTIONS)})")
            return None
        allowed = ACTIONS[kind]
        value = item.get("value")
        if allowed == ():
            if value not in (None, True):
                self.fail((*path, "value"), f"{kind} takes no value")
            return Action(kind)
        text = self._text(value, (*path, "value"))
        if text is None:
            return None
        if allowed is not None and text.lower() not in allowed:
            self.fail((*path, "value"), f"must be one of {', '.join(allowed)}, not {text!r}")
            return None
        if kind in EMAIL_ACTIONS and "@" not in text:
            self.fail((*path, "value"), f"{kind} needs an email address, not {text!r}")
            return None
        return Action(kind, text.lower() if allowed is not None or kind in EMAIL_ACTIONS else text)


def _listing(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))


def _is_text_field(field: Any) -> bool:
    if not isinstance(field, str):
        return False
    if field.startswith(HEADER_PREFIX):
        name = field[len(HEADER_PREFIX) :]
        # RFC 5322 field names: printable ASCII except the colon.
        return bool(name) and all(33 <= ord(c) <= 126 and c != ":" for c in name)
    return field in TEXT_FIELDS

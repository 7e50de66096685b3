"""The rule editor's form, to and from the rule data the API and the TOML file use.

Conditions and actions are rows of fields (c0_field, c0_op, c0_value, c0_not; a0_action, a0_value);
the validator's problems come back keyed by those names, so each error shows beside its field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailtickets.rules.model import BOOL_FIELDS, RuleProblem, RuleSpec

BLANK_ROWS = 2  # empty condition and action rows offered below the rule's own


@dataclass(frozen=True, slots=True)
class RuleForm:
    data: dict[str, Any]  # the rule as plain data, for rule_from_dict
    values: dict[str, str]  # what the form showed, to show again beside the errors
    condition_rows: tuple[int, ...]  # the form row of each condition in data (problems name them by index)
    action_rows: tuple[int, ...]


def _flag(form: Mapping[str, Any], key: str) -> bool:
    return form.get(key) in ("on", "true", "1", "yes")


def _value(field: str, op: str, raw: str) -> Any:
    if field in BOOL_FIELDS:
        return raw.strip().lower() not in ("false", "no", "0")
    if op == "in":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _rows(form: Mapping[str, Any], prefix: str, key: str) -> list[int]:
    """The rows filled in: those whose first field (`key`) is not empty; empty rows are ignored."""
    indexes = {i for i in (_row(k) for k in form if k.startswith(prefix)) if i is not None}
    return sorted(i for i in indexes if str(form.get(f"{prefix}{i}_{key}", "")).strip())


def read_form(form: Mapping[str, Any]) -> RuleForm:
    values = {key: value for key, value in form.items() if isinstance(value, str) and key != "csrf"}
    conditions, condition_rows = [], _rows(form, "c", "field")
    for i in condition_rows:
        field, op = values[f"c{i}_field"].strip(), values.get(f"c{i}_op", "contains")
        condition: dict[str, Any] = {"field": field, "value": _value(field, op, values.get(f"c{i}_value", ""))}
        if field not in BOOL_FIELDS:
            condition["op"] = op
        if _flag(form, f"c{i}_not"):
            condition["not"] = True
        conditions.append(condition)
    actions, action_rows = [], _rows(form, "a", "action")
    for i in action_rows:
        action: dict[str, Any] = {"action": values[f"a{i}_action"]}
        if values.get(f"a{i}_value", "").strip():
            action["value"] = values[f"a{i}_value"].strip()
        actions.append(action)
    data = {
        "name": values.get("name", "").strip(),
        "enabled": _flag(form, "enabled"),
        "match": values.get("match", "all"),
        "stop": _flag(form, "stop"),
        "conditions": conditions,
        "actions": actions,
    }
    return RuleForm(data, values, tuple(condition_rows), tuple(action_rows))


def errors_by_field(problems: Sequence[RuleProblem], form: RuleForm) -> dict[str, str]:
    """name → message, with condition and action problems on their row's field (c2_value, a0_action)."""
    errors: dict[str, str] = {}
    for problem in problems:
        path = problem.path
        if len(path) >= 2 and path[0] in ("conditions", "actions") and isinstance(path[1], int):
            rows = form.condition_rows if path[0] == "conditions" else form.action_rows
            part = str(path[2]) if len(path) > 2 else ("field" if path[0] == "conditions" else "action")
            key = f"{path[0][0]}{rows[path[1]]}_{part}"
        else:
            key = str(path[0]) if path else "rule"
        errors.setdefault(key, problem.message)
    return errors


def form_values(spec: RuleSpec | None) -> dict[str, str]:
    """A stored rule as form fields (a new rule: enabled, match all)."""
    if spec is None:
        return {"enabled": "on", "match": "all"}
    values = {"name": spec.name, "match": spec.match}
    values.update({"enabled": "on"} if spec.enabled else {})
    values.update({"stop": "on"} if spec.stop else {})
    for i, c in enumerate(spec.conditions):
        shown = c.value if isinstance(c.value, str) else (", ".join(c.value) if isinstance(c.value, tuple) else "")
        if isinstance(c.value, bool):
            shown = "true" if c.value else "false"
        values.update({f"c{i}_field": c.field, f"c{i}_op": c.operator, f"c{i}_value": shown})
        values.update({f"c{i}_not": "on"} if c.negate else {})
    for i, a in enumerate(spec.actions):
        values.update({f"a{i}_action": a.kind, f"a{i}_value": a.value or ""})
    return values


def row_count(values: Mapping[str, str], prefix: str) -> int:
    """Rows to show: up to the last one filled in (c: a field, a: an action), then BLANK_ROWS empty ones."""
    key = "field" if prefix == "c" else "action"
    used = [_row(k) for k, v in values.items() if k.startswith(prefix) and k.endswith(f"_{key}") and v.strip()]
    filled = [i for i in used if i is not None]
    return (max(filled) + 1 if filled else 0) + BLANK_ROWS


def _row(key: str) -> int | None:
    number = key[1:].partition("_")[0]
    return int(number) if number.isdigit() else None

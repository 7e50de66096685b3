"""Evaluating compiled rules against one message: a pure function from facts to a decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from mailtickets.rules.compile import CompiledRule, FactView
from mailtickets.rules.facts import MessageFacts
from mailtickets.rules.model import Action, Condition


class RuleTrace(NamedTuple):
    """How one rule fared: matched or not, and the condition that decided it.

    For match="all" that is the first condition that failed (or the last one, when all held); for
    match="any" the first that held (or the last one, when none did).  None for a rule without conditions.
    A NamedTuple, not a frozen dataclass: one is built per rule per message, and this halves its cost.
    """

    name: str
    matched: bool
    decided_by: Condition | None
    condition_index: int | None  # 0-based position of decided_by in the rule


@dataclass(frozen=True, slots=True)
class RuleDecision:
    client_name: str | None = None
    contact_email: str | None = None
    priority: str | None = None
    category: str | None = None
    assign_agent_email: str | None = None
    status: str | None = None
    tags: tuple[str, ...] = ()
    suppress_acknowledgement: bool = False
    quarantine_reason: str | None = None
    drop_reason: str | None = None
    matched_rules: tuple[str, ...] = ()
    trace: tuple[RuleTrace, ...] = field(default=())

    @property
    def ends_processing(self) -> bool:
        return self.quarantine_reason is not None or self.drop_reason is not None


# Single-valued actions: the later rule wins.
_FIELD_OF_ACTION = {
    "set_client": "client_name",
    "set_contact": "contact_email",
    "set_priority": "priority",
    "set_category": "category",
    "assign_agent": "assign_agent_email",
    "set_status": "status",
    "quarantine": "quarantine_reason",
    "drop": "drop_reason",
}


def evaluate(rules: Sequence[CompiledRule], facts: MessageFacts, *, explain: bool = False) -> RuleDecision:
    """Apply the enabled rules in order; stop after a rule with stop=true or one that quarantines or drops.

    With `explain` (the dry run), the decision carries a trace: each rule tried and the condition that decided it.
    """
    view = FactView(facts)
    values: dict[str, object] = {}
    tags: list[str] = []
    matched: list[str] = []
    traces: list[RuleTrace] = []
    for rule in rules:
        if not rule.enabled:
            continue
        if explain:
            trace = _match(rule, view)
            traces.append(trace)
            if not trace.matched:
                continue
        elif not _matches(rule, view):
            continue
        matched.append(rule.name)
        _apply(rule.spec.actions, values, tags)
        if rule.stop or "quarantine_reason" in values or "drop_reason" in values:
            break
    return RuleDecision(
        **values,  # type: ignore[arg-type]
        tags=tuple(tags),
        matched_rules=tuple(matched),
        trace=tuple(traces),
    )


def _matches(rule: CompiledRule, view: FactView) -> bool:
    """`_match` without the trace: what the pipeline needs, for every rule of every message."""
    if rule.match_any:
        return not rule.conditions or any(c.holds(view) for c in rule.conditions)
    return all(c.holds(view) for c in rule.conditions)


def _match(rule: CompiledRule, view: FactView) -> RuleTrace:
    if not rule.conditions:
        return RuleTrace(rule.name, True, None, None)
    # "all" is decided by the first condition that fails, "any" by the first that holds.
    decisive = rule.match_any
    for index, compiled in enumerate(rule.conditions):
        if compiled.holds(view) is decisive:
            return RuleTrace(rule.name, decisive, compiled.condition, index)
    last = len(rule.conditions) - 1
    return RuleTrace(rule.name, not decisive, rule.conditions[last].condition, last)


def _apply(actions: Sequence[Action], values: dict[str, object], tags: list[str]) -> None:
    """Later actions override single-valued fields; tags accumulate without duplicates."""
    for action in actions:
        if action.kind == "add_tag" and action.value is not None:
            if action.value not in tags:
                tags.append(action.value)
        elif action.kind == "suppress_acknowledgement":
            values["suppress_acknowledgement"] = True
        else:
            values[_FIELD_OF_ACTION[action.kind]] = action.value

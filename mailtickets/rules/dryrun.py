"""The dry run admins read: every rule in order, whether it matched and why, and the resulting fields.

Pure and JSON-ready, so the CLI (`mailtickets rules test`) and the HTTP API show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailtickets.rules.compile import CompiledRule
from mailtickets.rules.engine import RuleDecision, RuleTrace, evaluate
from mailtickets.rules.facts import MessageFacts
from mailtickets.rules.model import Condition


def describe_condition(condition: Condition) -> str:
    """E.g. `subject contains "invoice"`, `not has_attachments equals true`."""
    value = condition.value
    shown = (
        ("true" if value else "false")
        if isinstance(value, bool)
        else ("[" + ", ".join(f'"{v}"' for v in value) + "]" if isinstance(value, tuple) else f'"{value}"')
    )
    return f"{'not ' if condition.negate else ''}{condition.field} {condition.operator} {shown}"


def dry_run_report(rules: Sequence[CompiledRule], facts: MessageFacts) -> dict[str, Any]:
    """Evaluate `rules` (disabled ones included, and shown as such) and explain the outcome."""
    decision = evaluate(rules, facts, explain=True)
    traces = {t.name: t for t in decision.trace}
    return {
        "message": {
            "message_id": facts.parsed.message_id,
            "from": facts.parsed.sender,
            "subject": facts.parsed.subject,
            "mailbox": facts.mailbox,
            "client": facts.client_name,
            "contact": facts.contact_email,
            "sender_known": facts.sender_known,
            "auto_generated": facts.automatic_reason,
        },
        "rules": [_rule_entry(position, rule, traces.get(rule.name)) for position, rule in enumerate(rules, 1)],
        "result": result_fields(decision, facts),
    }


def result_fields(decision: RuleDecision, facts: MessageFacts) -> dict[str, Any]:
    """The ticket fields that would result: rule actions over what sender matching found."""
    outcome = "drop" if decision.drop_reason else ("quarantine" if decision.quarantine_reason else "ticket")
    return {
        "outcome": outcome,
        "reason": decision.drop_reason or decision.quarantine_reason,
        "client": decision.client_name or facts.client_name,
        "contact": decision.contact_email or facts.contact_email,
        "priority": decision.priority,
        "category": decision.category,
        "assign_agent": decision.assign_agent_email,
        "status": decision.status,
        "tags": list(decision.tags),
        "suppress_acknowledgement": decision.suppress_acknowledgement,
        "matched_rules": list(decision.matched_rules),
    }


def _rule_entry(position: int, rule: CompiledRule, trace: RuleTrace | None) -> dict[str, Any]:
    if not rule.spec.enabled:
        state = "disabled"
    elif trace is None:
        state = "not reached"
    else:
        state = "matched" if trace.matched else "not matched"
    decided = trace.decided_by if trace else None
    return {
        "position": position,
        "name": rule.name,
        "state": state,
        "matched": bool(trace and trace.matched),
        "condition": describe_condition(decided) if decided else None,
        "condition_index": None if trace is None or trace.condition_index is None else trace.condition_index + 1,
    }

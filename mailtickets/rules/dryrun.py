"""The dry run admins read: every rule in order, whether it matched and why, what ingest would do
(created, replied, quarantined, ... with the ticket and the reason) and the resulting fields.

Pure and JSON-ready, so the CLI (`mailtickets rules test`) and the HTTP API show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailtickets.ingest.result import IngestResult
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


def dry_run_report(rules: Sequence[CompiledRule], facts: MessageFacts | None, outcome: IngestResult) -> dict[str, Any]:
    """Evaluate `rules` (disabled ones included, and shown as such) beside what ingest would do.

    `outcome` is the pipeline's own answer (see `Pipeline.rehearse`); `facts` is None for a message
    that cannot be parsed, which no rule ever sees.
    """
    decision = evaluate(rules, facts, explain=True) if facts is not None else RuleDecision()
    traces = {t.name: t for t in decision.trace}
    return {
        "message": _message_entry(facts),
        "rules": [_rule_entry(position, rule, traces.get(rule.name)) for position, rule in enumerate(rules, 1)],
        "result": result_fields(decision, facts, outcome),
    }


def _message_entry(facts: MessageFacts | None) -> dict[str, Any]:
    parsed = facts.parsed if facts is not None else None
    return {
        "message_id": parsed.message_id if parsed else None,
        "from": parsed.sender if parsed else None,
        "subject": parsed.subject if parsed else None,
        "mailbox": facts.mailbox if facts else None,
        "client": facts.client_name if facts else None,
        "contact": facts.contact_email if facts else None,
        "sender_known": facts.sender_known if facts else False,
        "auto_generated": facts.automatic_reason if facts else None,
    }


def result_fields(decision: RuleDecision, facts: MessageFacts | None, outcome: IngestResult) -> dict[str, Any]:
    """What ingest would do (outcome, ticket, reason) and the ticket fields the rules would set."""
    return {
        "outcome": outcome.outcome.value,
        "ticket": outcome.ticket,
        "reason": outcome.reason,
        "client": decision.client_name or (facts.client_name if facts else None),
        "contact": decision.contact_email or (facts.contact_email if facts else None),
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

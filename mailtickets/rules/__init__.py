"""Routing rules: admins' conditions and actions, evaluated per message after sender matching.

The pure core (`facts`, `model`, `compile`, `engine`, `toml_io`) imports neither asyncio, SQLAlchemy nor
the network; `store` is the database edge and holds the cache the pipeline reads rules through.
"""

from mailtickets.rules.compile import CompiledCondition, CompiledRule, compile_rule, compile_rules
from mailtickets.rules.engine import RuleDecision, RuleTrace, evaluate
from mailtickets.rules.facts import MessageFacts
from mailtickets.rules.model import Action, Condition, RuleProblem, RulesInvalid, RuleSpec
from mailtickets.rules.toml_io import dump_rules_toml, load_rules_toml

__all__ = [
    "Action",
    "CompiledCondition",
    "CompiledRule",
    "Condition",
    "MessageFacts",
    "RuleDecision",
    "RuleProblem",
    "RuleSpec",
    "RuleTrace",
    "RulesInvalid",
    "compile_rule",
    "compile_rules",
    "dump_rules_toml",
    "evaluate",
    "load_rules_toml",
]

"""Rule evaluation cost: 200 enabled rules (mixed operators, some regular expressions) per message.

    python bench/rules.py [--rules 200] [--messages 300] [--rounds 5]

Prints microseconds per message for evaluation alone (compiled rules, parsed messages): the cost the
rule step adds to the pipeline, besides the cache's one small version query per message.
"""

from __future__ import annotations

import argparse
import random
import time
from email.message import EmailMessage
from typing import Any

from mailtickets.parse import parse_message
from mailtickets.rules import CompiledRule, MessageFacts, RuleSpec, compile_rules, evaluate
from mailtickets.rules.model import rule_from_dict

WORDS = [
    *("printer", "outage", "invoice", "password", "vpn", "laptop", "urgent"),
    *("backup", "email", "server", "slow", "broken", "access"),
]
DOMAINS = [f"client{n}.example" for n in range(40)]


def make_rules(count: int, rng: random.Random) -> tuple[CompiledRule, ...]:
    return compile_rules(make_specs(count, rng))


def make_specs(count: int, rng: random.Random) -> list[RuleSpec]:
    makers = [
        lambda: {"field": "from_domain", "op": "equals", "value": rng.choice(DOMAINS)},
        lambda: {"field": "from_domain", "op": "in", "value": rng.sample(DOMAINS, 5)},
        lambda: {"field": "subject", "op": "contains", "value": rng.choice(WORDS)},
        lambda: {"field": "subject", "op": "regex", "value": rf"\b({rng.choice(WORDS)}|{rng.choice(WORDS)})\b"},
        lambda: {"field": "body", "op": "contains", "value": rng.choice(WORDS), "not": True},
        lambda: {"field": "body", "op": "regex", "value": rf"ticket\s+#?\d{{{rng.randint(3, 6)}}}"},
        lambda: {"field": "recipients", "op": "starts_with", "value": "billing@"},
        lambda: {"field": "header:X-Mailer", "op": "contains", "value": "outlook"},
        lambda: {"field": "has_attachments", "value": True},
        lambda: {"field": "sender_known", "value": False},
    ]
    specs = []
    for n in range(count):
        conditions: list[dict[str, Any]] = [rng.choice(makers)() for _ in range(rng.randint(1, 3))]
        actions = [{"action": "add_tag", "value": f"t{n % 17}"}, {"action": "set_priority", "value": "high"}]
        data = {"name": f"rule {n}", "match": rng.choice(["all", "any"]), "conditions": conditions}
        specs.append(rule_from_dict(data | {"actions": actions}))
    return specs


def make_messages(count: int, rng: random.Random) -> list[MessageFacts]:
    facts = []
    for n in range(count):
        message = EmailMessage()
        message["From"] = f"user{n}@{rng.choice(DOMAINS)}"
        message["To"] = rng.choice(["support@help.example", "billing@help.example"])
        message["Subject"] = " ".join(rng.choices(WORDS, k=6))
        message["Message-ID"] = f"<m{n}@bench.example>"
        message["X-Mailer"] = rng.choice(["Microsoft Outlook 16.0", "Thunderbird"])
        message.set_content("\n".join(" ".join(rng.choices(WORDS, k=12)) for _ in range(rng.randint(5, 80))))
        parsed = parse_message(message.as_bytes())
        known = rng.random() < 0.7
        facts.append(MessageFacts(parsed, "support", "Client" if known else None, None, known, None))
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(4)
    rules, messages = make_rules(args.rules, rng), make_messages(args.messages, rng)
    best = float("inf")
    for _ in range(args.rounds):
        started = time.perf_counter()
        matched = sum(len(evaluate(rules, facts).matched_rules) for facts in messages)
        best = min(best, time.perf_counter() - started)
    print(
        f"{len(rules)} rules, {len(messages)} messages: {best / len(messages) * 1e6:.0f} µs per message "
        f"(best of {args.rounds}; {matched / len(messages):.1f} rules matched per message)"
    )


if __name__ == "__main__":
    main()

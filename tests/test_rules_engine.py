from __future__ import annotations

from typing import Any

import pytest
from rules_support import compiled, cond, make_facts, rule, tag

from mailtickets.models import Priority, TicketStatus
from mailtickets.parse.message import ParsedAttachment
from mailtickets.rules import evaluate
from mailtickets.rules.compile import MAX_BODY_CHARS
from mailtickets.rules.model import PRIORITIES, STATUSES

PDF = ParsedAttachment("report.pdf", "application/pdf", b"%PDF")
INLINE_PDF = ParsedAttachment("invoice.pdf", "application/pdf", b"%PDF", inline=True)
LOGO = ParsedAttachment("logo.png", "image/png", b"png", content_id="logo", inline=True)

# (condition, facts overrides, expected match)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (cond("from", "equals", "ALICE@acme.example"), {}, True),
    (cond("from", "equals", "bob@acme.example"), {}, False),
    (cond("from", "equals", "x@y.example"), {"sender": None}, False),
    (cond("from", "equals", "x@y.example", negate=True), {"sender": None}, True),
    (cond("from_domain", "equals", "Acme.Example"), {}, True),
    (cond("from_domain", "ends_with", ".example"), {}, True),
    (cond("from_domain", "in", ["other.example", "acme.example"]), {}, True),
    (cond("from_domain", "in", ["other.example"]), {}, False),
    (cond("to", "equals", "support@help.example"), {}, True),
    (cond("cc", "contains", "boss"), {"cc": ("a@x.example", "Boss@x.example")}, True),
    (cond("delivered_to", "starts_with", "billing@"), {"delivered_to": ("billing@help.example",)}, True),
    (cond("recipients", "equals", "billing@help.example"), {"delivered_to": ("billing@help.example",)}, True),
    (cond("recipients", "equals", "billing@help.example"), {}, False),
    (cond("subject", "contains", "FIRE"), {}, True),
    (cond("subject", "starts_with", "printer"), {}, True),
    (cond("subject", "contains", "fire", negate=True), {}, False),
    (cond("subject", "regex", r"^printer\s+on"), {}, True),
    (cond("subject", "regex", r"\bINV-\d{4}\b"), {"subject": "Re: inv-2024 paid"}, True),
    (cond("subject", "equals", "Ärger"), {"subject": "ärger"}, True),
    (cond("body", "contains", "please"), {}, True),
    (cond("body", "contains", "needle"), {"text": "x" * MAX_BODY_CHARS + "needle"}, False),
    (cond("header:X-Priority", "equals", "1"), {"headers": {"x-priority": ("1",)}}, True),
    (cond("header:X-Priority", "equals", "1"), {}, False),
    (cond("header:List-Id", "contains", "news"), {"headers": {"list-id": ("a", "<news.example>")}}, True),
    (cond("client", "equals", "acme"), {}, True),
    (cond("client", "equals", "acme"), {"client_name": None}, False),
    (cond("contact", "ends_with", "@acme.example"), {}, True),
    (cond("sender_known", value=False), {"sender_known": False}, True),
    (cond("sender_known", value=False), {}, False),
    (cond("has_attachments"), {"attachments": (PDF,)}, True),
    (cond("has_attachments"), {"attachments": (LOGO,)}, False),
    (cond("has_attachments"), {"attachments": (INLINE_PDF,)}, True),
    (cond("auto_generated"), {"automatic_reason": "Auto-Submitted: auto-replied"}, True),
    (cond("auto_generated", negate=True), {"automatic_reason": "bounce"}, False),
    (cond("mailbox", "equals", "SUPPORT"), {}, True),
]


@pytest.mark.parametrize(("condition", "overrides", "expected"), CASES)
def test_condition_table(condition: dict[str, Any], overrides: dict[str, Any], expected: bool) -> None:
    rules = compiled(rule("r", [condition], [tag("hit")]))
    decision = evaluate(rules, make_facts(**overrides), explain=True)
    assert decision.trace[0].matched is expected
    assert decision.tags == (("hit",) if expected else ())


def test_all_and_any_report_the_deciding_condition() -> None:
    conditions = [cond("from_domain", "equals", "acme.example"), cond("subject", "contains", "invoice")]
    rules = compiled(rule("all", conditions, [tag("a")]), rule("any", conditions, [tag("b")], match="any"))
    decision = evaluate(rules, make_facts(), explain=True)
    assert [(t.name, t.matched, t.condition_index) for t in decision.trace] == [("all", False, 1), ("any", True, 0)]
    assert decision.trace[0].decided_by is not None and decision.trace[0].decided_by.field == "subject"


def test_later_actions_override_and_tags_accumulate() -> None:
    rules = compiled(
        rule(
            "one", [], [{"action": "set_priority", "value": "low"}, tag("x"), {"action": "set_category", "value": "Hw"}]
        ),
        rule("two", [], [{"action": "set_priority", "value": "HIGH"}, tag("y"), tag("x")]),
        rule(
            "three",
            [],
            [{"action": "assign_agent", "value": "Bob@Help.example"}, {"action": "set_status", "value": "hold"}],
        ),
    )
    decision = evaluate(rules, make_facts(), explain=True)
    assert decision.priority == "high"
    assert decision.category == "Hw"
    assert decision.tags == ("x", "y")
    assert decision.assign_agent_email == "bob@help.example"
    assert decision.status == "hold"
    assert decision.matched_rules == ("one", "two", "three")


def test_stop_and_disabled_rules() -> None:
    rules = compiled(
        rule("off", [], [tag("off")], enabled=False),
        rule("first", [], [tag("first")], stop=True),
        rule("never", [], [tag("never")]),
    )
    decision = evaluate(rules, make_facts(), explain=True)
    assert decision.tags == ("first",)
    assert [t.name for t in decision.trace] == ["first"]


@pytest.mark.parametrize("kind", ["quarantine", "drop"])
def test_quarantine_and_drop_end_evaluation(kind: str) -> None:
    rules = compiled(
        rule("spam", [cond("subject", "contains", "fire")], [{"action": kind, "value": "looks like spam"}]),
        rule("later", [], [tag("later")]),
    )
    decision = evaluate(rules, make_facts(), explain=True)
    assert getattr(decision, f"{kind}_reason") == "looks like spam"
    assert decision.ends_processing
    assert decision.tags == ()


def test_client_contact_and_acknowledgement_actions() -> None:
    rules = compiled(
        rule(
            "r",
            [cond("sender_known", value=False)],
            [
                {"action": "set_client", "value": "Globex"},
                {"action": "set_contact", "value": "Desk@Globex.example"},
                {"action": "suppress_acknowledgement"},
            ],
        )
    )
    decision = evaluate(rules, make_facts(sender_known=False, client_name=None))
    assert (decision.client_name, decision.contact_email) == ("Globex", "desk@globex.example")
    assert decision.suppress_acknowledgement is True


def test_pathological_pattern_runs_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 answers at once.
    rules = compiled(rule("evil", [cond("subject", "regex", "(a+)+$")], [tag("evil")]))
    decision = evaluate(rules, make_facts(subject="a" * 100_000 + "!"), explain=True)
    assert decision.trace[0].matched is False


def test_vocabulary_matches_the_data_model() -> None:
    assert set(PRIORITIES) == {p.value for p in Priority}
    assert set(STATUSES) == {s.value for s in TicketStatus}

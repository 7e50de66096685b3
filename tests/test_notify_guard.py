from __future__ import annotations

import pytest

from mailtickets.notify.guard import (
    RecentCounts,
    internal_loop_reason,
    is_machine_address,
    is_own_mail,
    rate_limit_reason,
    suppression_reason,
)
from mailtickets.notify.msgid import make_message_id
from mailtickets.settings import Settings

SETTINGS = Settings(
    support_address="support@helpdesk.example",
    own_addresses=["help@helpdesk.example", "tickets@alias.example"],
    secret_key="k",
)


@pytest.mark.parametrize(
    "address",
    [
        "noreply@shop.example",
        "no-reply@shop.example",
        "No_Reply.Alerts@shop.example",
        "donotreply@bank.example",
        "do-not-reply@bank.example",
        "MAILER-DAEMON@mx.example",
        "postmaster@mx.example",
        "bounce@lists.example",
        "bounces+123@lists.example",
        "users-bounces@lists.example",
        "users-request@lists.example",
        "owner-users@lists.example",
    ],
)
def test_machine_addresses(address: str) -> None:
    assert is_machine_address(address)


@pytest.mark.parametrize("address", ["zoe@client.example", "reply@client.example", "bouncer.bob@client.example"])
def test_people_are_not_machines(address: str) -> None:
    assert not is_machine_address(address)


def test_suppression_reasons() -> None:
    reason = suppression_reason
    assert reason("Support@Helpdesk.example", SETTINGS, automatic=False, internal=True) == "own address (mail loop)"
    assert reason("tickets@alias.example", SETTINGS, automatic=True, internal=False) == "own address (mail loop)"
    assert reason("x@helpdesk.example", SETTINGS, automatic=True, internal=False) == "own address (mail loop)"
    # Agents share the company domain: internal notices to them are fine.
    assert reason("ana@helpdesk.example", SETTINGS, automatic=True, internal=True) is None
    assert reason("noreply@shop.example", SETTINGS, automatic=True, internal=False) is not None
    # A person chose to answer a no-reply address by hand: not ours to stop.
    assert reason("noreply@shop.example", SETTINGS, automatic=False, internal=False) is None
    assert reason("nonsense", SETTINGS, automatic=True, internal=False) == "not an email address"


def test_rate_limits() -> None:
    assert rate_limit_reason(RecentCounts(9, 24, 9, 24), SETTINGS) is None
    assert rate_limit_reason(RecentCounts(10, 10, 0, 0), SETTINGS) == "rate limit per recipient"
    assert rate_limit_reason(RecentCounts(0, 25, 0, 0), SETTINGS) == "rate limit per recipient"
    assert rate_limit_reason(RecentCounts(0, 0, 0, 25), SETTINGS) == "rate limit per ticket"


def test_internal_alerts_are_held_only_for_a_loop_on_one_ticket() -> None:
    across_tickets = RecentCounts(50, 50, 0, 0, recipient_ticket_short=1, recipient_ticket_long=1)
    assert internal_loop_reason(across_tickets, SETTINGS) is None
    one_ticket = RecentCounts(10, 10, 0, 0, recipient_ticket_short=10, recipient_ticket_long=10)
    assert internal_loop_reason(one_ticket, SETTINGS) is not None


def test_own_mail_by_loop_header_or_signed_message_id() -> None:
    assert is_own_mail({"x-loop": ("Support@helpdesk.example",)}, SETTINGS)
    signed = make_message_id("TCK-1", "k", "helpdesk.example")
    assert is_own_mail({"message-id": (f"<{signed}>",)}, SETTINGS)
    forged = make_message_id("TCK-1", "other-secret", "helpdesk.example")
    assert not is_own_mail({"message-id": (f"<{forged}>",)}, SETTINGS)
    assert not is_own_mail({"x-loop": ("lists@elsewhere.example",), "message-id": ("<a@b>",)}, SETTINGS)

"""Who hears about each event (plan.py is pure: no database, no SMTP), and that every kind can be switched off."""

from __future__ import annotations

import pytest

from mailtickets.notify.plan import Person, TicketParties, plan_notifications
from mailtickets.settings import Settings
from mailtickets.tickets.events import (
    AgentReplied,
    ChaserDue,
    ClientReplied,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketEvent,
    TicketMerged,
)

CLIENT = Person("zoe@client.example", "Zoë")
AGENT = Person("ana@corp.example", "Ana")
NEW_AGENT = Person("ben@corp.example", "Ben")
TEAM = "team@corp.example"
PARTIES = TicketParties(contact=CLIENT, assigned_agent=AGENT, event_agent=NEW_AGENT)

# event, the switch that silences it, what it plans when on: (kind, recipient, auto_submitted)
CASES: list[tuple[TicketEvent, str, list[tuple[str, str, str | None]]]] = [
    (TicketCreated(1, 1), "notify_client_on_create", [("acknowledgement", CLIENT.email, "auto-replied")]),
    (TicketCreated(1, 1), "notify_distribution_on_create", [("new_ticket", TEAM, "auto-generated")]),
    (ClientReplied(1, 1), "notify_agent_on_client_reply", [("client_reply", AGENT.email, "auto-generated")]),
    (AgentReplied(1, 1), "notify_client_on_agent_reply", [("agent_reply", CLIENT.email, None)]),
    (TicketAssigned(1, 2, 1), "notify_agent_on_assign", [("assigned", NEW_AGENT.email, "auto-generated")]),
    (TicketClosed(1), "notify_client_on_close", [("closed", CLIENT.email, "auto-replied")]),
    (TicketMerged(1, 2, (1,)), "notify_client_on_merge", [("merged", CLIENT.email, "auto-replied")]),
    (ChaserDue(1), "notify_client_autoclose_chaser", [("chaser", CLIENT.email, "auto-replied")]),
]


def _plan(
    event: TicketEvent, settings: Settings, parties: TicketParties = PARTIES
) -> list[tuple[str, str, str | None]]:
    return [(p.kind, p.to.email, p.auto_submitted) for p in plan_notifications(event, parties, settings)]


@pytest.mark.parametrize(("event", "switch", "expected"), CASES, ids=[c[1] for c in CASES])
def test_each_kind_goes_to_its_recipient_and_can_be_switched_off(
    event: TicketEvent, switch: str, expected: list[tuple[str, str, str | None]]
) -> None:
    settings = Settings(notify_new_tickets_to=[TEAM])
    assert all(one in _plan(event, settings) for one in expected)
    silenced = _plan(event, settings.model_copy(update={switch: False}))
    assert not any(one in silenced for one in expected)


def test_client_reply_goes_to_the_list_when_nobody_is_assigned() -> None:
    unassigned = TicketParties(contact=CLIENT)
    settings = Settings(notify_new_tickets_to=[TEAM])
    assert _plan(ClientReplied(1, 1), settings, unassigned) == [("client_reply", TEAM, "auto-generated")]

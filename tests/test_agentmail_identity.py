"""Who is an agent, and which proofs count: pure checks, then a client whose address resembles an agent's."""

from __future__ import annotations

import pytest

from mailtickets.agentmail.identity import AgentProof, impersonated, signed_for_agent
from mailtickets.db import transaction
from mailtickets.directory import create_agent
from mailtickets.models import Outcome
from mailtickets.notify.msgid import make_agent_message_id, make_message_id
from tests.agentmail_support import ALICE_PASSES, make_desk
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import SmtpSink

AGENTS = ["dan@helpdesk.example"]


@pytest.mark.parametrize(
    ("address", "from_header", "expected"),
    [
        ("mallory@evil.example", '"dan@helpdesk.example" <mallory@evil.example>', "display name"),
        ("mallory@evil.example", "dan@helpdesk.example <mallory@evil.example>", "display name"),
        ("dan@helpdesk-example.com", "Dan Agent <dan@helpdesk-example.com>", "lookalike domain"),
        ("dan@he1pdesk.example", "Dan Agent <dan@he1pdesk.example>", "lookalike domain"),
        ("alice@acme.example", "Alice Able <alice@acme.example>", None),
        ("dan@acme.example", "Dan <dan@acme.example>", None),  # the same first name elsewhere is no lookalike
    ],
)
def test_posing_as_an_agent(address: str, from_header: str, expected: str | None) -> None:
    posing = impersonated(address, from_header, AGENTS)
    assert (posing.how if posing else None) == expected
    assert posing is None or posing.agent_address == "dan@helpdesk.example"


def test_only_our_signature_for_this_agent_and_ticket_counts() -> None:
    secret, domain = "s3cret", "helpdesk.example"
    ours = make_agent_message_id("TCK-1", 7, secret, domain)
    assert signed_for_agent([f"<{ours}>"], 7, ["TCK-1"], secret, domain)
    assert not signed_for_agent([ours], 8, ["TCK-1"], secret, domain)  # another agent's
    assert not signed_for_agent([ours], 7, ["TCK-2"], secret, domain)  # another ticket's
    assert not signed_for_agent([ours.replace("a7-", "a8-")], 8, ["TCK-1"], secret, domain)  # edited: forged
    assert not signed_for_agent([make_message_id("TCK-1", secret, domain)], 7, ["TCK-1"], secret, domain)


@pytest.mark.parametrize(
    ("requires", "expected"),
    [("either", (True, True, False)), ("dmarc", (True, False, False)), ("signed-reply", (False, True, False))],
)
def test_which_proof_satisfies_which_setting(requires: str, expected: tuple[bool, bool, bool]) -> None:
    proofs = [AgentProof(dmarc=True, signed_reply=False), AgentProof(False, True), AgentProof(False, False)]
    assert tuple(p.satisfies(requires) for p in proofs) == expected  # type: ignore[arg-type]
    assert AgentProof(True, True).satisfies("both") and not AgentProof(True, False).satisfies("both")


async def test_a_client_whose_mailbox_resembles_an_agents_is_no_lookalike(sqlite_store: Store, sink: SmtpSink) -> None:
    desk = await make_desk(sqlite_store, sink)
    async with transaction(desk.store.sessions) as session:
        await create_agent(session, "Alice at IT", "alice@acme-it.example")  # Alice's namesake among the agents
    result = await desk.ingest(make_message(headers=ALICE_PASSES))  # alice@acme.example, a contact
    assert result.outcome == Outcome.CREATED, result.reason

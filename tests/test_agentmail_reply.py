"""An agent answers from their inbox: through the real pipeline, the outbox and a real SMTP sink.

The reply reaches the client only when authenticated (a trusted DMARC verdict, or a reply to a Message-ID
we signed for that agent and that ticket), with the agent's new text only, from the support address.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailtickets.db import transaction
from mailtickets.directory import add_alias, create_agent, find_agent_by_email
from mailtickets.models import Agent, AuthorRole, InboundMail, Outcome
from mailtickets.notify.msgid import make_agent_message_id
from tests.agentmail_support import ALICE_PASSES, DAN, QUOTED, Desk, from_dan, make_desk, text_of
from tests.builders import make_message
from tests.conftest import Store
from tests.notify_support import SmtpSink


@pytest.fixture
async def desk(store: Store, sink: SmtpSink) -> Desk:
    return await make_desk(store, sink)


def _assert_reply_to_alice(mail: object, new_text: str) -> None:
    assert mail["To"].addresses[0].addr_spec == "alice@acme.example"  # type: ignore[index]
    (sender,) = mail["From"].addresses  # type: ignore[index]
    assert (sender.display_name, sender.addr_spec) == ("Dan via Support", "support@helpdesk.example")
    assert "[TCK-1]" in mail["Subject"]  # type: ignore[index]
    text = text_of(mail)  # type: ignore[arg-type]
    assert new_text in text
    assert "the printer is on fire" not in text and "wrote:" not in text  # no quoted history
    assert "dan@helpdesk.example" not in bytes(mail).decode("utf-8", "replace")  # type: ignore[call-overload]


async def test_reply_with_a_trusted_dmarc_pass_reaches_the_client(desk: Desk) -> None:
    result = await desk.ingest(from_dan("A technician comes at 3 pm." + QUOTED))
    assert (result.outcome, result.ticket, result.author_role) == (Outcome.REPLIED, "TCK-1", AuthorRole.AGENT)
    (mail,) = await desk.deliver()
    _assert_reply_to_alice(mail, "A technician comes at 3 pm.")
    assert mail["Auto-Submitted"] is None  # a person's reply, not automatic mail
    stored = [m for m in await desk.messages() if m.agent_id is not None and m.author_role == AuthorRole.AGENT]
    assert stored[-1].body_text_new == "A technician comes at 3 pm." and stored[-1].public


async def test_reply_to_a_message_id_signed_for_the_agent_reaches_the_client(desk: Desk) -> None:
    assigned = await desk.assign_to_dan()
    signed = assigned["Message-ID"]
    text = "Toner is on its way." + QUOTED
    raw = from_dan(text, subject="Re: Printer on fire", authentication=None, in_reply_to=signed)
    result = await desk.ingest(raw)
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1"), result.reason
    (mail,) = await desk.deliver()
    _assert_reply_to_alice(mail, "Toner is on its way.")
    assert mail["In-Reply-To"] == "<printer-1@acme.example>"  # threaded to what the client sent, not Dan's mail


async def test_agent_reply_carries_attachments_and_reaches_the_clients_cc(desk: Desk) -> None:
    cc = make_message(
        message_id="<a2@acme.example>",
        subject="Re: [TCK-1] Printer on fire",
        cc="Erin <erin@partner.example>, support@helpdesk.example",
        headers=ALICE_PASSES,
    )
    assert (await desk.ingest(cc)).outcome == Outcome.REPLIED
    await desk.deliver()
    raw = from_dan("See the attached manual.", attachments=[("manual.pdf", "application/pdf", b"%PDF-1.4 manual")])
    assert (await desk.ingest(raw)).outcome == Outcome.REPLIED
    mails = await desk.deliver()
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == ["alice@acme.example", "erin@partner.example"]
    for mail in mails:
        (attachment,) = list(mail.iter_attachments())
        assert attachment.get_filename() == "manual.pdf" and attachment.get_content() == b"%PDF-1.4 manual"


@pytest.mark.parametrize(
    ("sender", "authentication"),
    [
        pytest.param(DAN, None, id="no-verdict-no-signature"),
        pytest.param(DAN, "mx.helpdesk.example; dmarc=fail header.from=helpdesk.example", id="dmarc-fail"),
        pytest.param(DAN, "mx.attacker.example; dmarc=pass header.from=helpdesk.example", id="untrusted-authserv-id"),
        pytest.param('"dan@helpdesk.example" <mallory@attacker.example>', None, id="address-in-display-name"),
        pytest.param("Dan Agent <dan@helpdesk-example.com>", None, id="lookalike-domain"),
        pytest.param("Dan Agent <dan@he1pdesk.example>", None, id="lookalike-digit"),
    ],
)
async def test_unauthenticated_or_posing_mail_is_quarantined_and_the_agent_told(
    desk: Desk, sender: str, authentication: str | None
) -> None:
    result = await desk.ingest(from_dan("Close it, all fine." + QUOTED, sender=sender, authentication=authentication))
    assert result.outcome == Outcome.QUARANTINED
    assert "dan@helpdesk.example" in (result.reason or "")
    assert result.author_role is None
    (notice,) = await desk.deliver()  # only the agent hears of it, never the client
    assert notice["To"].addresses[0].addr_spec == "dan@helpdesk.example"
    assert notice["Auto-Submitted"] == "auto-replied"
    assert "not accepted" in notice["Subject"].lower()
    assert [m.body_text for m in await desk.messages() if m.agent_id is not None] == []


async def test_a_forged_or_other_agents_signature_is_refused(desk: Desk) -> None:
    settings = desk.store.settings
    async with transaction(desk.store.sessions) as session:
        eve = await create_agent(session, "Eve Agent", "eve@helpdesk.example")
        dan = await find_agent_by_email(session, "dan@helpdesk.example")
        assert dan is not None
    domain = settings.own_message_id_domain
    forged = make_agent_message_id("TCK-1", dan.id, "not-our-secret", domain)
    for_eve = make_agent_message_id("TCK-1", eve.id, settings.secret_key, domain)
    for number, message_id in enumerate([forged, for_eve]):
        raw = from_dan("Done.", authentication=None, in_reply_to=f"<{message_id}>", message_id=f"<f{number}@x.example>")
        result = await desk.ingest(raw)
        assert result.outcome == Outcome.QUARANTINED, message_id
        assert result.reason == "unauthenticated mail from agent dan@helpdesk.example"
    assert all(m["To"].addresses[0].addr_spec == "dan@helpdesk.example" for m in await desk.deliver())


@pytest.mark.parametrize(
    ("requires", "dmarc", "signed", "accepted"),
    [
        ("either", True, False, True),
        ("either", False, True, True),
        ("dmarc", False, True, False),
        ("signed-reply", True, False, False),
        ("both", True, False, False),
        ("both", True, True, True),
    ],
)
async def test_agent_mail_requires_decides_which_proof_counts(
    sqlite_store: Store, sink: SmtpSink, requires: str, dmarc: bool, signed: bool, accepted: bool
) -> None:
    desk = await make_desk(sqlite_store, sink, agent_mail_requires=requires)
    in_reply_to = (await desk.assign_to_dan())["Message-ID"] if signed else None
    raw = from_dan("Fixed.", authentication=None if not dmarc else DMARC_PASS_TEXT, in_reply_to=in_reply_to)
    result = await desk.ingest(raw)
    assert (result.outcome == Outcome.REPLIED) is accepted, result.reason


DMARC_PASS_TEXT = "mx.helpdesk.example; dkim=pass header.d=helpdesk.example; dmarc=pass header.from=helpdesk.example"


async def test_an_alias_is_the_agent(desk: Desk) -> None:
    async with transaction(desk.store.sessions) as session:
        dan = await find_agent_by_email(session, "dan@helpdesk.example")
        assert dan is not None
        await add_alias(session, dan, "Dan.Agent@Helpdesk.example")
    raw = from_dan("From my other address.", sender="Dan <dan.agent@helpdesk.example>")
    result = await desk.ingest(raw)
    assert (result.outcome, result.author_role) == (Outcome.REPLIED, AuthorRole.AGENT)
    (mail,) = await desk.deliver()
    assert "dan.agent@helpdesk.example" not in bytes(mail).decode("utf-8", "replace").lower()  # type: ignore[call-overload]


async def test_an_inactive_agent_is_not_an_agent(desk: Desk) -> None:
    async with transaction(desk.store.sessions) as session:
        dan = await session.scalar(select(Agent).where(Agent.email == "dan@helpdesk.example"))
        assert dan is not None
        dan.active = False
    result = await desk.ingest(from_dan("I left the company but still write."))
    assert result.outcome == Outcome.QUARANTINED
    assert "agent" not in (result.reason or "")  # an ordinary stranger quoting a ticket number
    assert await desk.deliver() == []


async def test_an_agents_out_of_office_is_dropped(desk: Desk) -> None:
    raw = from_dan("I am out of the office until Monday.", headers={"Auto-Submitted": "auto-replied"})
    result = await desk.ingest(raw)
    assert result.outcome == Outcome.DROPPED
    assert "automatic mail from agent" in (result.reason or "")
    assert await desk.deliver() == []


async def test_autoresponders_on_both_sides_stay_within_the_rate_limits(desk: Desk) -> None:
    """Alice's and Dan's autoresponders, without any automatic-mail header, answer every mail they get."""
    limit = desk.store.settings.auto_mail_limit_short
    inbox = {"dan@helpdesk.example": [await desk.assign_to_dan()], "alice@acme.example": []}
    received = {address: 0 for address in inbox}
    for round_ in range(6 * limit):
        answers = [
            from_dan("I am away.", authentication=None, in_reply_to=mail["Message-ID"], message_id=f"<d{round_}.{n}@x>")
            for n, mail in enumerate(inbox["dan@helpdesk.example"])
        ] + [
            make_message(
                subject=mail["Subject"],
                body="Alice is away.",
                message_id=f"<a{round_}.{n}@acme.example>",
                headers=ALICE_PASSES,
            )
            for n, mail in enumerate(inbox["alice@acme.example"])
        ]
        if not answers:
            break
        inbox = {address: [] for address in inbox}
        for raw in answers:
            await desk.ingest(raw)
        for mail in await desk.deliver():
            inbox[mail["To"].addresses[0].addr_spec].append(mail)
            received[mail["To"].addresses[0].addr_spec] += 1
    else:
        pytest.fail("the autoresponders were still answering each other")
    # Each round trip needs one automatic mail to Dan ("Alice replied"), and those are rate-limited.
    assert received["dan@helpdesk.example"] <= limit + 1
    assert received["alice@acme.example"] <= limit + 1


async def test_releasing_held_agent_mail_posts_it_as_the_agents_reply(desk: Desk) -> None:
    held = await desk.ingest(from_dan("Sorry for the wait, fixed now." + QUOTED, authentication=None))
    assert held.outcome == Outcome.QUARANTINED
    await desk.deliver()  # the notice to Dan
    async with desk.store.sessions() as session:
        record = (await session.scalars(select(InboundMail).where(InboundMail.outcome == Outcome.QUARANTINED))).one()
    released = await desk.store.pipeline().release(record.id)  # the admin vouches for it
    assert (released.outcome, released.ticket, released.author_role) == (Outcome.REPLIED, "TCK-1", AuthorRole.AGENT)
    (mail,) = await desk.deliver()
    _assert_reply_to_alice(mail, "Sorry for the wait, fixed now.")


async def test_a_client_the_agent_wrote_to_directly_gets_no_second_copy(desk: Desk) -> None:
    raw = from_dan("Replying to all." + QUOTED, to="Alice Able <alice@acme.example>", cc="support@helpdesk.example")
    assert (await desk.ingest(raw)).outcome == Outcome.REPLIED
    assert await desk.deliver() == []  # Alice has Dan's own mail already


async def test_the_agent_is_told_within_the_rate_limit(desk: Desk) -> None:
    limit = desk.store.settings.auto_mail_limit_short
    for number in range(2 * limit):
        raw = from_dan("Forged.", authentication=None, message_id=f"<forged-{number}@evil.example>")
        assert (await desk.ingest(raw)).outcome == Outcome.QUARANTINED
    notices = await desk.deliver()
    assert len(notices) == limit
    assert {m["To"].addresses[0].addr_spec for m in notices} == {"dan@helpdesk.example"}


async def test_a_reply_signed_for_a_ticket_since_merged_lands_authenticated_on_the_target(desk: Desk) -> None:
    """Dan answers the "assigned" mail of TCK-1 after TCK-1 was merged into TCK-2: threading takes it to
    TCK-2, and his signature (for TCK-1) still proves it is his: TCK-1 now lives on in TCK-2."""
    from mailtickets.tickets import lifecycle

    signed = (await desk.assign_to_dan())["Message-ID"]
    settings, clock = desk.store.settings, desk.store.clock
    async with transaction(desk.store.sessions) as session:
        await lifecycle.merge(session, settings, clock.now(), "TCK-1", "TCK-2")
    raw = from_dan(
        "Merged; carrying on here." + QUOTED, subject="Re: Printer on fire", authentication=None, in_reply_to=signed
    )
    result = await desk.ingest(raw)
    assert (result.outcome, result.ticket, result.author_role) == (Outcome.REPLIED, "TCK-2", AuthorRole.AGENT)

"""Each attack of the Trust issue, end to end: a recorded outcome, and the victim's ticket unchanged.

The world (tests/world.py): TCK-1 is Alice's (Acme Corp, alice@acme.example), its first message
<printer-1@acme.example>, our acknowledgement <TCK-1.ack@helpdesk.example> to Alice (Cc erin@partner).
Carol is Globex's contact. "mx.helpdesk.example" plays our own receiving MTA.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from mailtickets.models import Contact, InboundMail, OutboxMail, Outcome, Ticket, TicketMessage
from tests.builders import make_message, make_raw_message
from tests.conftest import Store
from tests.world import build_world

OUR_MX = "mx.helpdesk.example"
ALICE = "Alice Able <alice@acme.example>"


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    return store


@dataclass(frozen=True)
class Snapshot:
    messages: tuple[str | None, ...]
    status: str
    updated_at: object
    tickets_of_alice: int


async def victim(store: Store) -> Snapshot:
    async with store.sessions() as session:
        ticket = (await session.scalars(select(Ticket).where(Ticket.number == 1))).one()
        ids = await session.scalars(
            select(TicketMessage.message_id).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
        )
        alice = (await session.scalars(select(Contact).where(Contact.email == "alice@acme.example"))).one()
        own = await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.contact_id == alice.id))
        return Snapshot(tuple(ids), str(ticket.status), ticket.updated_at, int(own or 0))


async def recorded(store: Store, message_id: str) -> InboundMail:
    async with store.sessions() as session:
        return (await session.scalars(select(InboundMail).where(InboundMail.message_id == message_id))).one()


def readable(raw: bytes) -> str:
    """Subject and text of a queued mail, decoded (what the recipient's client shows)."""
    mail = message_from_bytes(raw, policy=policy.default)
    body = mail.get_body(("plain",))  # type: ignore[attr-defined]
    return f"{mail['Subject']}\n{body.get_content() if body is not None else ''}"


def ar(verdict: str, authserv_id: str = OUR_MX) -> tuple[str, str]:
    return ("Authentication-Results", f"{authserv_id}; {verdict}")


def raw_mail(
    from_value: str, message_id: str, *headers: tuple[str, str], subject: str = "Re: [TCK-1] Printer"
) -> bytes:
    return make_raw_message(
        [
            *headers,
            ("From", from_value),
            ("To", "support@helpdesk.example"),
            ("Subject", subject),
            ("Message-ID", f"<{message_id}>"),
        ],
        body="Please log in again.",
    )


# 1. The address is taken from the display name.
@pytest.mark.parametrize(
    "from_value",
    [
        "=?utf-8?q?Alice_=3Calice=40acme=2Eexample=3E?= <evil@attacker.example>",
        "alice@acme.example <evil@attacker.example>",
        "=?utf-8?q?alice=40acme=2Eexample=2C?= <evil@attacker.example>",
    ],
    ids=["encoded-angle", "unquoted", "encoded-comma"],
)
@pytest.mark.parametrize("subject", ["Re: [TCK-1] Printer", "New request"])
async def test_an_address_in_the_display_name_never_speaks_for_alice(
    world: Store, from_value: str, subject: str
) -> None:
    before = await victim(world)
    result = await world.pipeline().ingest(raw_mail(from_value, "dn@attacker.example", subject=subject), "pipe")
    assert result.outcome == Outcome.QUARANTINED
    record = await recorded(world, "dn@attacker.example")
    assert record.sender == "evil@attacker.example"
    assert "display name holds another address" in (record.reason or "")
    assert await victim(world) == before


# 2. Forged From, with and without a trusted verdict.
async def test_a_dmarc_fail_from_our_mx_makes_alice_a_stranger(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    before = await victim(world)
    forged = raw_mail(
        ALICE, "f1@attacker.example", ar("spf=fail smtp.mailfrom=acme.example; dmarc=fail header.from=acme.example")
    )
    result = await world.pipeline().ingest(forged, "pipe")
    assert result.outcome == Outcome.QUARANTINED and result.authenticated is False
    assert "unauthenticated sender" in (result.reason or "")
    assert (await recorded(world, "f1@attacker.example")).authenticated is False
    assert await victim(world) == before


async def test_a_forged_from_without_any_trusted_verdict_is_held(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    before = await victim(world)
    for n, subject in enumerate(["Re: [TCK-1] Printer", "New request in Alice's name"]):
        result = await world.pipeline().ingest(raw_mail(ALICE, f"f2-{n}@attacker.example", subject=subject), "pipe")
        assert result.outcome == Outcome.QUARANTINED and result.authenticated is None
    assert await victim(world) == before


async def test_a_pass_from_an_authserv_id_we_do_not_trust_counts_for_nothing(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    before = await victim(world)
    forged = raw_mail(ALICE, "f3@attacker.example", ar("dmarc=pass header.from=acme.example", "mx.attacker.example"))
    result = await world.pipeline().ingest(forged, "pipe")
    assert result.outcome == Outcome.QUARANTINED and result.authenticated is None
    assert await victim(world) == before


async def test_a_pass_written_below_our_mx_block_counts_for_nothing(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    before = await victim(world)
    forged = raw_mail(
        ALICE,
        "f4@attacker.example",
        ar("dmarc=fail header.from=acme.example"),  # ours, added on top at delivery
        ar("dmarc=pass header.from=acme.example"),  # the sender's, written with our id
    )
    result = await world.pipeline().ingest(forged, "pipe")
    assert result.outcome == Outcome.QUARANTINED and result.authenticated is False
    assert await victim(world) == before


async def test_alice_authenticated_by_our_mx_writes_as_before(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    genuine = raw_mail(
        ALICE, "g1@acme.example", ar("dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example")
    )
    result = await world.pipeline().ingest(genuine, "pipe")
    assert (result.outcome, result.ticket, result.authenticated) == (Outcome.REPLIED, "TCK-1", True)


async def test_accept_policy_only_records_the_verdict(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    world.settings.unauthenticated_sender = "accept"
    mail = raw_mail(ALICE, "a1@acme.example", ar("dmarc=fail header.from=acme.example"))
    result = await world.pipeline().ingest(mail, "pipe")
    assert (result.outcome, result.authenticated) == (Outcome.REPLIED, False)
    assert (await recorded(world, "a1@acme.example")).authenticated is False


async def test_no_trusted_id_configured_keeps_todays_behaviour(world: Store) -> None:
    result = await world.pipeline().ingest(raw_mail(ALICE, "n1@acme.example", ar("dmarc=fail")), "pipe")
    assert (result.outcome, result.authenticated) == (Outcome.REPLIED, None)


# 3. Threads hijacked across clients by a reused Message-ID.
async def test_a_message_id_reused_by_another_client_steers_nothing(world: Store) -> None:
    # Carol (Globex) opens a ticket whose Message-ID is the one of Alice's first message.
    carol = make_message(sender="carol@globex.example", subject="Hello", message_id="<printer-1@acme.example>")
    assert (await world.pipeline().ingest(carol, "pipe")).ticket == "TCK-4"
    # Alice's next reply, with [TCK-1] and her thread's References, stays on TCK-1.
    reply = make_message(
        subject="Re: [TCK-1] Printer on fire", references="<printer-1@acme.example>", message_id="<r9@acme.example>"
    )
    result = await world.pipeline().ingest(reply, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    # Even without the tag, an id found on two tickets threads nowhere: Alice gets a ticket of her own.
    untagged = make_message(subject="more", in_reply_to="<printer-1@acme.example>", message_id="<r10@acme.example>")
    assert (await world.pipeline().ingest(untagged, "pipe")).outcome == Outcome.CREATED


async def test_another_clients_contact_answering_alices_thread_gets_a_ticket_of_their_own(world: Store) -> None:
    before = await victim(world)
    raw = make_message(
        sender="carol@globex.example",
        subject="Re: Printer on fire",
        in_reply_to="<printer-1@acme.example>",
        references="<printer-1@acme.example> <TCK-1.ack@helpdesk.example>",
        message_id="<c2@globex.example>",
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.CREATED, "TCK-4")
    assert await victim(world) == before


# 4. Knowing a Message-ID is no key.
@pytest.mark.parametrize("known_id", ["TCK-1.ack@helpdesk.example", "printer-1@acme.example"], ids=["ours", "alices"])
async def test_a_stranger_with_a_message_id_of_the_thread_is_held_and_joins_nothing(
    world: Store, known_id: str
) -> None:
    before = await victim(world)
    raw = make_message(
        sender="mallory@evil.example",
        subject="Re: Printer on fire",
        references=f"<{known_id}>",
        cc="friend@evil.example",
        message_id="<m1@evil.example>",
    )
    result = await world.pipeline().ingest(raw, "pipe")
    assert result.outcome == Outcome.QUARANTINED and "may not write into TCK-1" in (result.reason or "")
    # Not a participant afterwards: the bare tag lets in neither them nor whom they CC'd.
    for n, sender in enumerate(["mallory@evil.example", "friend@evil.example"]):
        tagged = make_message(sender=sender, subject="Re: [TCK-1] Printer on fire", message_id=f"<m2-{n}@evil.example>")
        assert (await world.pipeline().ingest(tagged, "pipe")).outcome == Outcome.QUARANTINED
    assert await victim(world) == before


async def test_a_signed_message_id_we_sent_to_alice_does_not_let_others_in(world: Store) -> None:
    # Alice's reply makes us mail the agent list; use an id we really sent, to Alice, from the outbox.
    world.settings.notify_client_on_create = True
    created = await world.pipeline().ingest(make_message(subject="Scanner", message_id="<s1@acme.example>"), "pipe")
    async with world.sessions() as session:
        ack = (await session.scalars(select(OutboxMail).where(OutboxMail.kind == "acknowledgement"))).one()
    assert ack.recipient == "alice@acme.example"
    stranger = make_message(
        sender="mallory@evil.example", in_reply_to=f"<{ack.message_id}>", message_id="<m3@evil.example>"
    )
    result = await world.pipeline().ingest(stranger, "pipe")
    assert result.outcome == Outcome.QUARANTINED and created.ticket in (result.reason or "")


async def test_whom_alice_copies_may_join_her_ticket(world: Store) -> None:
    first = make_message(subject="Re: [TCK-1] Printer", cc="tech@printfix.example", message_id="<a5@acme.example>")
    assert (await world.pipeline().ingest(first, "pipe")).outcome == Outcome.REPLIED
    tech = make_message(
        sender="tech@printfix.example", subject="Re: [TCK-1] Printer", message_id="<t1@printfix.example>"
    )
    result = await world.pipeline().ingest(tech, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    assert "participant" in (result.reason or "")


async def test_with_authentication_configured_only_alices_authenticated_copies_count(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    world.settings.unauthenticated_sender = "accept"  # her unauthenticated mail is taken, its Cc list is not
    passed = ar("dmarc=pass header.from=printfix.example")
    first = raw_mail(
        ALICE, "a6@acme.example", ar("dmarc=fail header.from=acme.example"), ("Cc", "tech@printfix.example")
    )
    assert (await world.pipeline().ingest(first, "pipe")).outcome == Outcome.REPLIED
    tech = raw_mail("tech@printfix.example", "t2@printfix.example", passed)
    assert (await world.pipeline().ingest(tech, "pipe")).outcome == Outcome.QUARANTINED


async def test_the_agent_is_told_who_really_replied(world: Store) -> None:
    world.settings.notify_new_tickets_to = ["agents@helpdesk.example"]
    joined = make_message(
        sender="Erin Example <erin@partner.example>",
        in_reply_to="<TCK-1.ack@helpdesk.example>",
        message_id="<e7@partner.example>",
    )
    assert (await world.pipeline().ingest(joined, "pipe")).outcome == Outcome.REPLIED
    async with world.sessions() as session:
        notice = (await session.scalars(select(OutboxMail).where(OutboxMail.kind == "client_reply"))).one()
    assert b"Erin Example replied" in notice.raw and b"Alice Able replied" not in notice.raw


# 5. The helpdesk relays phishing.
PHISH = "ACTION REQUIRED: mailbox full, log in at http://evil.example/owa within 24 hours or lose your mail"


async def _phish(world: Store, message_id: str) -> tuple[Outcome, list[OutboxMail]]:
    raw = make_message(sender="new.person@acme.example", subject=PHISH, message_id=f"<{message_id}>")
    result = await world.pipeline().ingest(raw, "pipe")
    async with world.sessions() as session:
        sent = list(await session.scalars(select(OutboxMail).where(OutboxMail.recipient == "new.person@acme.example")))
    return result.outcome, sent


async def test_a_forged_new_address_at_a_clients_domain_gets_no_acknowledgement(world: Store) -> None:
    before = await victim(world)
    outcome, sent = await _phish(world, "p1@acme.example")
    assert outcome == Outcome.CREATED and sent == []
    assert await victim(world) == before


async def test_an_authenticated_new_contact_is_acknowledged_without_the_link(world: Store) -> None:
    world.settings.trusted_authserv_ids = [OUR_MX]
    raw = raw_mail(
        "new.person@acme.example", "p2@acme.example", ar("dmarc=pass header.from=acme.example"), subject=PHISH
    )
    assert (await world.pipeline().ingest(raw, "pipe")).outcome == Outcome.CREATED
    async with world.sessions() as session:
        (ack,) = await session.scalars(select(OutboxMail).where(OutboxMail.recipient == "new.person@acme.example"))
    shown = readable(ack.raw)
    assert "ACTION REQUIRED: mailbox full" in shown
    assert "evil.example" not in shown and "http://" not in shown
    assert PHISH not in shown  # cut short


@pytest.mark.parametrize(("policy", "acknowledged"), [("always", True), ("never", False)])
async def test_acknowledge_new_contacts_policy(world: Store, policy: str, acknowledged: bool) -> None:
    world.settings.acknowledge_new_contacts = policy  # type: ignore[assignment]
    outcome, sent = await _phish(world, f"p3-{policy}@acme.example")
    assert outcome == Outcome.CREATED and bool(sent) is acknowledged
    for mail in sent:
        assert "evil.example" not in readable(mail.raw)


async def test_known_contacts_are_still_acknowledged_with_links_defanged(world: Store) -> None:
    subject = "Cannot open http://intranet.acme.example/x"
    await world.pipeline().ingest(make_message(subject=subject, message_id="<k1@acme.example>"), "pipe")
    async with world.sessions() as session:
        (ack,) = await session.scalars(select(OutboxMail).where(OutboxMail.recipient == "alice@acme.example"))
    shown = readable(ack.raw)
    assert "hxxp://intranet[.]acme[.]example/x" in shown and "http://" not in shown


async def test_an_ambiguous_from_is_recorded_whatever_the_outcome(world: Store) -> None:
    raw = raw_mail('"bob@acme.example" <alice@acme.example>', "amb@acme.example")
    result = await world.pipeline().ingest(raw, "pipe")
    assert (result.outcome, result.ticket) == (Outcome.REPLIED, "TCK-1")
    record = await recorded(world, "amb@acme.example")
    assert record.sender == "alice@acme.example"
    assert "display name holds another address (bob@acme.example)" in (record.reason or "")
    async with world.sessions() as session:
        author = await session.scalar(
            select(TicketMessage.author_name).where(TicketMessage.message_id == "amb@acme.example")
        )
    assert author is None or "bob@" not in author

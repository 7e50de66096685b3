"""Our own DKIM check (dkimpy) with keys given in-process instead of DNS."""

from __future__ import annotations

import base64
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailtickets.models import Outcome
from mailtickets.trust.dkim import OWN_DKIM, dkim_auth
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

SELECTOR = b"s1"


def _key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


PRIVATE, PUBLIC = _key_pair()


def keys_in_process(domains: tuple[str, ...]) -> Callable[..., bytes | None]:
    """Stands in for DNS: the TXT record of `s1._domainkey.<domain>` for the given domains only."""
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(PUBLIC)
    names = {b"s1._domainkey." + d.encode() + b"." for d in domains}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name in names else None

    return lookup


def signed(raw: bytes, domain: str) -> bytes:
    return dkim.sign(raw, SELECTOR, domain.encode(), PRIVATE, include_headers=[b"from", b"subject", b"to"]) + raw


ALICE_MAIL = make_message(message_id="<d1@acme.example>")


def test_an_aligned_verifying_signature_authenticates() -> None:
    verdict = dkim_auth(signed(ALICE_MAIL, "acme.example"), "acme.example", keys_in_process(("acme.example",)))
    assert (verdict.authserv_id, verdict.dkim_aligned_pass, verdict.authenticated) == (OWN_DKIM, True, True)


def test_a_subdomain_signature_aligns_relaxed() -> None:
    raw = signed(ALICE_MAIL, "mail.acme.example")
    assert dkim_auth(raw, "acme.example", keys_in_process(("mail.acme.example",))).authenticated is True


@pytest.mark.parametrize(
    ("raw", "published"),
    [
        (signed(ALICE_MAIL, "attacker.example"), ("attacker.example",)),  # verifies, but for another domain
        (signed(ALICE_MAIL, "acme.example").replace(b"on fire", b"fixed!!"), ("acme.example",)),  # altered
        (signed(ALICE_MAIL, "acme.example"), ()),  # no key published
        (ALICE_MAIL, ("acme.example",)),  # not signed at all
    ],
    ids=["unaligned", "tampered", "no-key", "unsigned"],
)
def test_anything_else_is_not_authenticated(raw: bytes, published: tuple[str, ...]) -> None:
    assert dkim_auth(raw, "acme.example", keys_in_process(published)).authenticated is False


@pytest.fixture
async def world(store: Store) -> Store:
    await build_world(store.sessions, store.clock)
    store.settings.dkim_verify = True
    return store


async def test_the_pipeline_believes_alices_signature_and_holds_a_forgery(world: Store) -> None:
    pipeline = world.pipeline()
    pipeline.dkim_lookup = keys_in_process(("acme.example",))
    reply = signed(make_message(subject="Re: [TCK-1] Printer on fire", message_id="<d2@acme.example>"), "acme.example")
    result = await pipeline.ingest(reply, "pipe")
    assert (result.outcome, result.ticket, result.authenticated) == (Outcome.REPLIED, "TCK-1", True)
    forged = make_message(subject="Re: [TCK-1] Printer on fire", message_id="<d3@attacker.example>")
    held = await pipeline.ingest(forged, "pipe")
    assert (held.outcome, held.authenticated) == (Outcome.QUARANTINED, False)

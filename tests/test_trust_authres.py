"""Authentication-Results: only the topmost block of a trusted authserv-id counts, alignment is relaxed."""

from __future__ import annotations

import pytest

from mailtickets.trust.authres import NO_VERDICT, aligned, sender_auth

GMAIL_PASS = (
    "mx.google.com; dkim=pass header.i=@acme.example header.s=s1 header.b=abc;"
    " spf=pass (google.com: domain of bounce@mail.acme.example designates 192.0.2.1)"
    " smtp.mailfrom=bounce@mail.acme.example;"
    " dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=acme.example"
)
GMAIL_FAIL = "mx.google.com; spf=softfail smtp.mailfrom=evil.example; dmarc=fail (p=NONE) header.from=acme.example"
M365_PASS = (
    "spf=pass (sender IP is 192.0.2.7) smtp.mailfrom=acme.example; dkim=pass (signature was verified)"
    " header.d=acme.example;dmarc=pass action=none header.from=acme.example;compauth=pass reason=100"
)


def _ar(*values: str) -> list[tuple[str, str]]:
    return [("Authentication-Results", value) for value in values]


def test_gmail_pass_from_trusted_id() -> None:
    verdict = sender_auth(_ar(GMAIL_PASS), "acme.example", ["mx.google.com"])
    assert verdict.authserv_id == "mx.google.com"
    assert verdict.dmarc == "pass"
    assert verdict.spf_aligned_pass and verdict.dkim_aligned_pass
    assert verdict.authenticated is True


def test_dmarc_fail_from_trusted_id_is_not_authenticated() -> None:
    verdict = sender_auth(_ar(GMAIL_FAIL), "acme.example", ["mx.google.com"])
    assert verdict.dmarc == "fail"
    assert verdict.authenticated is False


def test_a_forged_pass_below_the_topmost_trusted_block_is_ignored() -> None:
    # The sender wrote the lower block; our MX added the upper one.
    verdict = sender_auth(_ar(GMAIL_FAIL, GMAIL_PASS), "acme.example", ["mx.google.com"])
    assert verdict.authenticated is False


def test_a_pass_from_an_untrusted_id_is_no_verdict() -> None:
    forged = GMAIL_PASS.replace("mx.google.com", "mx.attacker.example")
    assert sender_auth(_ar(forged), "acme.example", ["mx.google.com"]) == NO_VERDICT
    assert sender_auth(_ar(forged), "acme.example", ["mx.google.com"]).authenticated is None


def test_untrusted_blocks_above_are_skipped_for_the_trusted_one() -> None:
    forged = GMAIL_PASS.replace("mx.google.com", "relay.attacker.example")
    verdict = sender_auth(_ar(forged, GMAIL_FAIL), "acme.example", ["mx.google.com"])
    assert verdict.authenticated is False


def test_no_trusted_ids_configured_is_no_verdict() -> None:
    assert sender_auth(_ar(GMAIL_PASS), "acme.example", []).authenticated is None


def test_microsoft_365_block_without_id_under_topmost() -> None:
    verdict = sender_auth(_ar(M365_PASS), "acme.example", ["topmost"])
    assert verdict.authserv_id == "topmost"
    assert verdict.authenticated is True
    # Without "topmost", a block with no id is never trusted, even by a wildcard.
    assert sender_auth(_ar(M365_PASS), "acme.example", ["*"]).authenticated is None


def test_topmost_trusts_only_the_first_block() -> None:
    verdict = sender_auth(
        _ar(M365_PASS.replace("dmarc=pass", "dmarc=fail").replace("=pass", "=fail"), M365_PASS),
        "acme.example",
        ["topmost"],
    )
    assert verdict.authenticated is False


def test_wildcard_authserv_id() -> None:
    block = "DB8EUR05FT012.eop-eur05.prod.outlook.com; dmarc=pass header.from=acme.example"
    assert sender_auth(_ar(block), "acme.example", ["*.prod.outlook.com"]).authenticated is True
    assert sender_auth(_ar(block), "acme.example", ["*.outlook.example"]).authenticated is None


def test_bestguesspass_is_not_a_dmarc_pass() -> None:
    block = "mx.site.example; dmarc=bestguesspass header.from=acme.example"
    verdict = sender_auth(_ar(block), "acme.example", ["mx.site.example"])
    assert verdict.dmarc == "bestguesspass"
    assert verdict.authenticated is False


def test_dmarc_pass_for_another_from_domain_does_not_count() -> None:
    # The receiving system read the From as the attacker's: its pass says nothing about acme.example.
    block = "mx.site.example; dmarc=pass header.from=attacker.example"
    assert sender_auth(_ar(block), "acme.example", ["mx.site.example"]).authenticated is False


def test_unaligned_spf_and_dkim_passes_do_not_authenticate() -> None:
    block = "mx.site.example; spf=pass smtp.mailfrom=bounce@attacker.example; dkim=pass header.d=attacker.example"
    verdict = sender_auth(_ar(block), "acme.example", ["mx.site.example"])
    assert not verdict.spf_aligned_pass and not verdict.dkim_aligned_pass
    assert verdict.authenticated is False


def test_an_unreadable_trusted_block_never_falls_through_to_a_lower_one() -> None:
    verdict = sender_auth(
        _ar("mx.site.example; ((( broken", GMAIL_PASS.replace("mx.google.com", "mx.site.example")),
        "acme.example",
        ["mx.site.example"],
    )
    assert verdict.authenticated is None


@pytest.mark.parametrize(
    ("domain", "from_domain", "expected"),
    [
        ("acme.example", "acme.example", True),
        ("mail.acme.example", "acme.example", True),
        ("bounce@eu.mail.acme.example", "support.acme.example", True),
        ("acme.co.uk", "shop.acme.co.uk", True),
        ("other.co.uk", "acme.co.uk", False),
        ("co.uk", "acme.co.uk", False),
        ("attacker.example", "acme.example", False),
        (None, "acme.example", False),
    ],
)
def test_relaxed_alignment(domain: str | None, from_domain: str, expected: bool) -> None:
    assert aligned(domain, from_domain) is expected


def test_hostile_blocks_cost_little_and_never_raise() -> None:
    nested = "mx.site.example; dkim=pass " + "(" * 1000 + ")" * 1000
    assert sender_auth(_ar(nested), "acme.example", ["mx.site.example"]).authenticated is None
    many = _ar(*[GMAIL_PASS.replace("mx.google.com", f"relay{i}.example") for i in range(500)], GMAIL_PASS)
    assert sender_auth(many, "acme.example", ["mx.google.com"]) == NO_VERDICT  # beyond MAX_BLOCKS


def test_an_authserv_id_with_a_version_is_trusted() -> None:
    block = "mx.site.example 1; dmarc=pass header.from=acme.example"
    assert sender_auth(_ar(block), "acme.example", ["mx.site.example"]).authenticated is True

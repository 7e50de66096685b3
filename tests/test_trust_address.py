"""The From mailbox: parsed once, before display names are decoded; a name never supplies the address."""

from __future__ import annotations

import pytest

from mailtickets.parse.parser import parse_message
from mailtickets.trust.address import parse_from
from tests.builders import make_raw_message


def _mail(from_value: str) -> bytes:
    return make_raw_message([("From", from_value), ("To", "support@helpdesk.example"), ("Subject", "Hi")])


ATTACKS = [
    "=?utf-8?q?Alice_=3Calice=40acme=2Eexample=3E?= <evil@attacker.example>",
    "alice@acme.example <evil@attacker.example>",
    "=?utf-8?q?alice=40acme=2Eexample=2C?= <evil@attacker.example>",
    '"alice@acme.example" <evil@attacker.example>',
    "<alice@acme.example> <evil@attacker.example>",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_an_address_in_the_display_name_is_never_the_sender(value: str) -> None:
    parsed = parse_message(_mail(value))
    assert parsed.sender == "evil@attacker.example"
    assert "alice@acme.example" not in parsed.sender_name
    assert parsed.sender_ambiguity is not None and "alice@acme.example" in parsed.sender_ambiguity


@pytest.mark.parametrize(
    ("value", "name", "address"),
    [
        ("=?iso-8859-1?Q?M=FCller=2C_Bernd?= <b@x.example>", "Müller, Bernd", "b@x.example"),
        ("=?utf-8?b?w4lsb2lzZSBEdXBvbnQ=?= <eloise@x.example>", "Éloise Dupont", "eloise@x.example"),
        ("=?koi8-r?B?8MXU0s/XLCDJ18HO?= <ivan@x.example>", "Петров, иван", "ivan@x.example"),
        ('"Able, Alice" <Alice@Acme.Example>', "Able, Alice", "alice@acme.example"),
        ('"Alice \\"Al\\" Able" <a@x.example>', 'Alice "Al" Able', "a@x.example"),
        ("Alice Able\r\n <alice@acme.example>", "Alice Able", "alice@acme.example"),
        ("alice@acme.example", "", "alice@acme.example"),
    ],
)
def test_display_names_are_decoded_after_the_address_list_is_parsed(value: str, name: str, address: str) -> None:
    parsed = parse_message(_mail(value))
    assert (parsed.sender_name, parsed.sender, parsed.sender_ambiguity) == (name, address, None)


def test_several_mailboxes_use_the_first_and_record_it() -> None:
    found = parse_from(["Alice <alice@acme.example>, Eve <eve@attacker.example>"])
    assert found.address == "alice@acme.example"
    assert found.ambiguity is not None and "2 mailboxes" in found.ambiguity


def test_no_usable_mailbox() -> None:
    assert parse_from(["undisclosed-recipients:;"]).address is None
    assert parse_from(["not an address"]).address is None
    assert parse_from([]).address is None

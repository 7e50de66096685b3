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


NAMES = [
    ("Müller, Bernd", "iso-8859-1"),
    ("Dvořák, Antonín", "iso-8859-2"),
    ("Петров, Иван", "koi8-r"),
    ("Ελένη, Παπαδοπούλου", "iso-8859-7"),
    ("山田, 太郎", "iso-2022-jp"),
    ("王, 小明", "gb2312"),
    ("김, 민준", "euc-kr"),
    ("O'Brien, Seán <Support>", "utf-8"),
]


@pytest.mark.parametrize(("name", "charset"), NAMES)
@pytest.mark.parametrize("encoding", ["q", "b"])
def test_encoded_names_with_commas_and_brackets_stay_whole(name: str, charset: str, encoding: str) -> None:
    from email.charset import BASE64, QP, Charset
    from email.header import Header

    if charset == "iso-2022-jp" and encoding == "q":
        pytest.skip("iso-2022-jp is written base64 only")
    codec = Charset(charset)
    codec.header_encoding = QP if encoding == "q" else BASE64
    encoded = Header(name, codec).encode()
    parsed = parse_message(_mail(f"{encoded} <person@client.example>"))
    assert (parsed.sender, parsed.sender_name, parsed.sender_ambiguity) == ("person@client.example", name, None)


@pytest.mark.parametrize(
    "value",
    [
        "(" * 3000 + ")" * 3000 + " <a@x.example>",
        "(a)" * 5000 + " <a@x.example>",
        '"a",' * 5000,
        "<" * 3000,
        " .)",  # these three made the stdlib parser raise TypeError, AttributeError, UnboundLocalError
        "\udcff@[",
        "?=\r\n é@[ ",
    ],
    ids=["nested-comments", "many-comments", "many-quoted", "brackets", "type-error", "attribute-error", "unbound"],
)
def test_hostile_from_headers_give_an_answer_quickly(value: str) -> None:
    found = parse_from([value])  # no exception; the cut keeps the stdlib parser's quadratic cost small
    assert found.address in (None, "a@x.example")
    assert found.ambiguity is None or "cut" in found.ambiguity

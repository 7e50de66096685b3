from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtickets.notify.msgid import make_message_id, ticket_ref_from_message_id

SECRET = "s3cret"
DOMAIN = "helpdesk.example"


def test_round_trip_carries_the_reference() -> None:
    mid = make_message_id("TCK-12", SECRET, DOMAIN)
    assert mid.startswith("TCK-12.")
    assert mid.endswith("@helpdesk.example")
    assert "<" not in mid
    assert ticket_ref_from_message_id(mid, SECRET, DOMAIN) == "TCK-12"


def test_ids_are_unique() -> None:
    ids = {make_message_id("TCK-1", SECRET, DOMAIN) for _ in range(1000)}
    assert len(ids) == 1000


def test_accepts_angle_brackets_and_domain_case() -> None:
    mid = make_message_id("TCK-7", SECRET, DOMAIN)
    local, _, domain = mid.partition("@")
    assert ticket_ref_from_message_id(f" <{local}@{domain.upper()}> ", SECRET, DOMAIN) == "TCK-7"


def test_reference_with_dots_survives() -> None:
    mid = make_message_id("ACME.HD-3", SECRET, DOMAIN)
    assert ticket_ref_from_message_id(mid, SECRET, DOMAIN) == "ACME.HD-3"


def test_forged_reference_is_rejected() -> None:
    mid = make_message_id("TCK-12", SECRET, DOMAIN)
    forged = "TCK-13" + mid[len("TCK-12") :]
    assert ticket_ref_from_message_id(forged, SECRET, DOMAIN) is None


def test_wrong_secret_or_domain_is_rejected() -> None:
    mid = make_message_id("TCK-12", SECRET, DOMAIN)
    assert ticket_ref_from_message_id(mid, "other", DOMAIN) is None
    assert ticket_ref_from_message_id(mid.replace(DOMAIN, "evil.example"), SECRET, "evil.example") is None
    assert ticket_ref_from_message_id(mid, SECRET, "other.example") is None


def test_foreign_ids_are_none() -> None:
    for foreign in ["", "abc@helpdesk.example", "CAF=x@mail.gmail.com", "a.b@helpdesk.example", "@", "x..@"]:
        assert ticket_ref_from_message_id(foreign, SECRET, DOMAIN) is None


@pytest.mark.parametrize("bad", ["TCK 12", "", "TCK-1@x", "TCK-1."])
def test_bad_reference_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        make_message_id(bad, SECRET, DOMAIN)


@given(st.text(max_size=80))
def test_never_raises_on_arbitrary_input(text: str) -> None:
    assert ticket_ref_from_message_id(text, SECRET, DOMAIN) is None

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefsvc.inbound import verp
from prefsvc.inbound.verp import (
    BOUNCES,
    DELIVERY,
    NOTICE,
    UNSUBSCRIBE,
    Token,
    bounce_address,
    parse_recipient,
    unsubscribe_address,
)

OLD, NEW = "old-key-0123456789abc", "new-key-0123456789abc"
DOMAIN = "bounces.example.org"


def test_bounce_address_round_trips_a_delivery():
    address = bounce_address((NEW,), DELIVERY, 4711, DOMAIN)
    assert address.startswith("bounces+") and address.endswith("@" + DOMAIN)
    assert parse_recipient((NEW,), address) == Token(BOUNCES, DELIVERY, 4711)
    assert parse_recipient((NEW,), address) == (BOUNCES, DELIVERY, 4711)


def test_unsubscribe_address_round_trips_a_notice():
    address = unsubscribe_address((NEW,), NOTICE, 12, DOMAIN)
    assert address.startswith("unsubscribe+")
    assert parse_recipient((NEW,), address) == Token(UNSUBSCRIBE, NOTICE, 12)


@given(
    st.sampled_from([verp.BOUNCES, verp.UNSUBSCRIBE]),
    st.sampled_from([DELIVERY, NOTICE]),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_every_id_round_trips_within_a_64_octet_local_part(purpose, kind, ident):
    address = verp.codec((OLD, NEW)).address(purpose, kind, ident, DOMAIN)
    local = address.rpartition("@")[0]
    assert len(local.encode("ascii")) <= 64
    assert local == local.lower()
    assert parse_recipient((OLD, NEW), address) == (purpose, kind, ident)


def test_token_shows_neither_the_id_nor_anything_readable():
    first = verp.codec((NEW,)).token(BOUNCES, DELIVERY, 1)
    second = verp.codec((NEW,)).token(BOUNCES, DELIVERY, 2)
    assert len(first) == verp.TOKEN_LENGTH
    # Neighbouring ids share no visible structure: the block is encrypted, not encoded.
    assert sum(a == b for a, b in zip(first, second, strict=True)) < 20
    assert "1" not in first  # base32 lower case has no digits 0, 1, 8, 9


def test_same_delivery_gives_the_same_token_so_a_resent_bounce_names_it_again():
    first = bounce_address((NEW,), DELIVERY, 9, DOMAIN)
    assert bounce_address((NEW,), DELIVERY, 9, DOMAIN) == first


def test_old_key_still_verifies_after_rotation_and_the_new_key_signs():
    old_address = bounce_address((OLD,), DELIVERY, 5, DOMAIN)
    assert parse_recipient((OLD, NEW), old_address) == (BOUNCES, DELIVERY, 5)
    new_address = bounce_address((OLD, NEW), DELIVERY, 5, DOMAIN)
    assert new_address != old_address
    assert parse_recipient((NEW,), new_address) == (BOUNCES, DELIVERY, 5)
    assert parse_recipient((OLD,), new_address) is None


def test_a_key_never_configured_reads_nothing():
    assert parse_recipient(("other-key",), bounce_address((NEW,), DELIVERY, 5, DOMAIN)) is None


def test_a_token_of_one_purpose_is_no_token_of_the_other():
    token = verp.codec((NEW,)).token(BOUNCES, DELIVERY, 5)
    assert parse_recipient((NEW,), f"unsubscribe+{token}@{DOMAIN}") is None
    assert parse_recipient((NEW,), f"bounces+{token}@{DOMAIN}") is not None


def test_forged_and_truncated_tokens_read_as_none():
    token = verp.codec((NEW,)).token(BOUNCES, DELIVERY, 5)
    flipped = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    for bad in (flipped, token[:-1], token[:-8], token + "a", "a" * 40, "", token[::-1]):
        assert parse_recipient((NEW,), f"bounces+{bad}@{DOMAIN}") is None


def test_case_folded_and_bracketed_recipients_still_parse():
    address = bounce_address((NEW,), DELIVERY, 77, DOMAIN)
    assert parse_recipient((NEW,), address.upper()) == (BOUNCES, DELIVERY, 77)
    assert parse_recipient((NEW,), f" <{address}> ") == (BOUNCES, DELIVERY, 77)


@pytest.mark.parametrize(
    "address",
    ["", "bounces@" + DOMAIN, "bounces+@" + DOMAIN, "postmaster@" + DOMAIN, "no-at-sign", "+@"],
)
def test_addresses_without_a_token_parse_to_none(address):
    assert parse_recipient((NEW,), address) is None


@given(st.text(max_size=400))
def test_any_text_parses_to_a_token_or_none_without_raising(text):
    assert parse_recipient((NEW,), text) is None


@pytest.mark.parametrize(
    ("purpose", "kind", "ident"),
    [("bounce", DELIVERY, 1), (BOUNCES, "x", 1), (BOUNCES, DELIVERY, -1), (BOUNCES, NOTICE, 2**64)],
)
def test_what_cannot_be_named_is_refused_when_signing(purpose, kind, ident):
    with pytest.raises(ValueError):
        verp.codec((NEW,)).token(purpose, kind, ident)


def test_no_keys_is_a_configuration_error():
    with pytest.raises(ValueError):
        verp.VerpCodec(())


@given(st.binary(min_size=25, max_size=25))
def test_reading_agrees_with_the_standard_base32_decoder(raw):
    """The fast int()-based reading must see the bytes RFC 4648 base32 gives."""
    import base64

    token = base64.b32encode(raw).decode("ascii").lower()
    assert int(token.translate(verp._DIGITS), 32).to_bytes(25, "big") == raw

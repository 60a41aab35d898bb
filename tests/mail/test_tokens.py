from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefsvc.errors import InvalidToken
from prefsvc.mail.tokens import Signer

OLD, NEW = "old-key-0123456789abc", "new-key-0123456789abc"


def test_unsubscribe_token_round_trips_public_id_and_topic():
    signer = Signer((NEW,))
    claim = signer.read_unsubscribe(signer.unsubscribe_token("pub123", 7))
    assert (claim.public_id, claim.topic_id) == ("pub123", 7)


def test_token_carries_no_address_or_database_id():
    token = Signer((NEW,)).unsubscribe_token("Zr3x_public", 7)
    assert "@" not in token and "example" not in token


def test_old_key_still_verifies_after_rotation_and_new_key_signs():
    old_token = Signer((OLD,)).unsubscribe_token("pub", 1)
    rotated = Signer((OLD, NEW))
    assert rotated.read_unsubscribe(old_token).public_id == "pub"
    new_token = rotated.unsubscribe_token("pub", 1)
    assert Signer((NEW,)).read_unsubscribe(new_token).public_id == "pub"
    with pytest.raises(InvalidToken):
        Signer((OLD,)).read_unsubscribe(new_token)


@given(st.integers(min_value=1, max_value=10**9))
def test_links_are_the_tokens_itsdangerous_itself_makes_so_mailed_links_keep_working(topic_id):
    """Tokens skip itsdangerous' zlib attempt; a link must still be byte for byte its own."""
    from itsdangerous import URLSafeSerializer

    from prefsvc.mail.tokens import PREFERENCES, UNSUBSCRIBE
    from prefsvc.models import new_public_id

    public_id = new_public_id()
    signer = Signer((OLD, NEW))
    stock = {salt: URLSafeSerializer([OLD, NEW], salt=salt) for salt in (UNSUBSCRIBE, PREFERENCES)}
    assert signer.unsubscribe_token(public_id, topic_id) == stock[UNSUBSCRIBE].dumps(
        [public_id, topic_id]
    )
    assert signer.preferences_token(public_id) == stock[PREFERENCES].dumps(public_id)


def test_purposes_do_not_cross():
    signer = Signer((NEW,))
    with pytest.raises(InvalidToken):
        signer.read_unsubscribe(signer.preferences_token("pub"))
    with pytest.raises(InvalidToken):
        signer.read_preferences(signer.unsubscribe_token("pub", 1))


def test_unknown_key_is_refused():
    token = Signer(("someone-elses-key-123",)).unsubscribe_token("pub", 1)
    with pytest.raises(InvalidToken):
        Signer((NEW,)).read_unsubscribe(token)


@given(position=st.integers(min_value=0, max_value=200), char=st.sampled_from("AbZz09-_.="))
def test_no_single_character_change_is_accepted(position, char):
    signer = Signer((NEW,))
    token = signer.unsubscribe_token("pubABC", 3)
    i = position % len(token)
    mutated = token[:i] + char + token[i + 1 :]
    if mutated == token:
        return
    with pytest.raises(InvalidToken):
        signer.read_unsubscribe(mutated)


@given(cut=st.integers(min_value=0, max_value=60))
def test_truncated_tokens_are_refused(cut):
    signer = Signer((NEW,))
    token = signer.unsubscribe_token("pubABC", 3)
    with pytest.raises(InvalidToken):
        signer.read_unsubscribe(token[: max(0, len(token) - 1 - cut)])


def test_a_respelled_signature_is_refused_even_if_it_decodes_the_same():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    signer = Signer(["k" * 16])
    token = signer.unsubscribe_token("public-id", 7)
    payload, _, signature = token.rpartition(".")
    assert len(signature) == 27  # 20 bytes: the last character carries 2 spare bits
    group = alphabet.index(signature[-1]) // 4 * 4
    respellings = [c for c in alphabet[group : group + 4] if c != signature[-1]]
    assert len(respellings) == 3
    for variant in [f"{payload}.{signature[:-1]}{c}" for c in respellings] + [
        token + "=",
        f"{payload}.\n{signature}",
        f"{payload}. {signature}",
    ]:
        with pytest.raises(InvalidToken):
            signer.read_unsubscribe(variant)


def test_signin_token_is_valid_for_24_hours_and_only_for_sign_in():
    from datetime import UTC, datetime, timedelta

    signer = Signer(["old-key-0123456789", "new-key-0123456789"])
    issued = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    token = signer.signin_token("public-id", 12, now=issued)
    claim = signer.read_signin(token, now=issued + timedelta(hours=24))
    assert (claim.public_id, claim.request_id) == ("public-id", 12)
    for too_late_or_early in (timedelta(hours=24, seconds=1), -timedelta(minutes=6)):
        with pytest.raises(InvalidToken):
            signer.read_signin(token, now=issued + too_late_or_early)
    with pytest.raises(InvalidToken):
        signer.read_preferences(token)
    with pytest.raises(InvalidToken):
        signer.read_signin(signer.preferences_token("public-id"), now=issued)

"""Signatures match the Standard Webhooks reference vector and the test's own verifier."""

from __future__ import annotations

from prefsvc.webhooks import signing
from tests.webhooks.conftest import verify

# The example of the Standard Webhooks specification and its reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'


def test_the_reference_example_signs_as_the_specification_says():
    assert signing.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_every_secret_given_signs_and_each_verifies_alone():
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers([new, old], MSG_ID, TIMESTAMP, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(old, headers, BODY, now=TIMESTAMP)
    assert verify(new, headers, BODY, now=TIMESTAMP)
    assert not verify(signing.new_secret(), headers, BODY, now=TIMESTAMP)
    assert not verify(new, headers, BODY + b" ", now=TIMESTAMP)


def test_secrets_are_whsec_and_fresh():
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(signing.key_of(first)) == signing.SECRET_BYTES

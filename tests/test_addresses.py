from __future__ import annotations

import pytest

from prefsvc.addresses import MAX_EMAIL_LENGTH, normalise_email
from prefsvc.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Ana@Example.org", "ana@example.org"),
        ("  ana@example.org\n", "ana@example.org"),
        ("ANA@EXAMPLE.ORG", "ana@example.org"),
    ],
)
def test_an_address_has_one_canonical_form(text, canonical):
    assert normalise_email(text) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a" * MAX_EMAIL_LENGTH + "@example.org", "is longer than"),
        ("not an address", "is not a valid address"),
    ],
)
def test_what_is_no_address_is_refused_naming_the_email_field(text, reason):
    with pytest.raises(InvalidInput) as refused:
        normalise_email(text)
    assert refused.value.field == "email"
    assert reason in refused.value.reason

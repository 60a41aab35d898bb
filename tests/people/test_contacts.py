"""Contacts: finding people by part of their address, name or organisation."""

from __future__ import annotations

import pytest

from prefsvc.people import contacts
from tests.factories import make_contact

pytestmark = pytest.mark.all_databases


def test_search_matches_every_word_in_address_name_or_organisation(session):
    make_contact(session, "ana@port.be", first_name="Ana", last_name="Peeters", organisation="Port")
    make_contact(session, "bram@example.org", first_name="Bram", organisation="Port")
    assert [c.email for c in contacts.search(session, "port ANA")] == ["ana@port.be"]
    assert [c.email for c in contacts.search(session, "port")] == [
        "ana@port.be",
        "bram@example.org",
    ]
    assert contacts.search(session, "%") == []
    assert contacts.search(session, "   ") == []

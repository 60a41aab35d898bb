"""GET/POST /p: a fresh 24-hour link by mail, the same answer for any address."""

from __future__ import annotations

import re

import pytest

from prefsvc.mail.tokens import Signer
from prefsvc.models import ContactStatus
from tests.factories import make_contact
from tests.web.recipient.conftest import ask, delivered


@pytest.fixture
def ana(session):
    """Ana as the sign-in tests know her: French, on no topic."""
    contact = make_contact(session, "ana@example.org", language="fr")
    session.commit()
    return contact


def test_signin_page_asks_for_an_address_and_changes_nothing(client):
    response = client.get("/p", headers={"Accept-Language": "nl-BE"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Uw voorkeuren openen</h1>" in page
    assert '<label for="email">E-mailadres</label>' in page
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_known_and_unknown_addresses_get_the_same_answer(client, ana, outbox):
    known = ask(client, "Ana@Example.org")
    unknown = ask(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert "Si cette adresse figure sur notre liste" not in known.get_data(as_text=True)  # nl page
    assert "Als dit adres op onze lijst staat" in known.get_data(as_text=True)

    [mail] = delivered(outbox)
    assert mail["To"] == "ana@example.org"
    assert mail["Subject"] == "Votre lien vers vos préférences"
    [link] = re.findall(r"https://news\.example\.org(/p/\S+)", mail.get_content())
    page = client.get(link).get_data(as_text=True)
    assert '<html lang="fr">' in page and "<h1>Vos préférences</h1>" in page


def test_an_address_that_left_everything_can_still_sign_in(client, session, ana, outbox):
    ana.status = ContactStatus.UNSUBSCRIBED
    session.commit()
    ask(client, "ana@example.org")
    assert len(delivered(outbox)) == 1


def test_text_that_is_no_address_gets_a_readable_form_error(client, outbox):
    response = ask(client, "not an address", **{"Accept-Language": "en"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This is not a valid email address." in page
    assert 'aria-invalid="true"' in page
    assert delivered(outbox) == []


def test_signin_link_works_for_24_hours_only(client, clock, settings, ana):
    token = Signer(settings.secret_keys).signin_token(ana.public_id, None, now=clock())
    clock.advance(hours=23, minutes=59)
    assert client.get(f"/p/{token}").status_code == 200
    clock.advance(minutes=2)
    expired = client.get(f"/p/{token}")
    assert expired.status_code == 404
    assert expired.get_data() == client.get("/p/not-a-token").get_data()

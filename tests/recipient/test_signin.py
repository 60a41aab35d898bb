"""Sign-in links by mail: whom they go to, 24 hours of validity, the mail that carries them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from prefsvc.errors import InvalidInput, InvalidToken
from prefsvc.mail import kit
from prefsvc.models import ContactStatus, Language, RightsKind
from prefsvc.privacy import register
from prefsvc.recipient import links, signin
from tests.factories import make_contact

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def ana(session):
    contact = make_contact(session, "ana@example.org", language=Language.FR)
    session.commit()
    return contact


def test_a_link_is_queued_for_a_linkable_contact_and_for_nobody_otherwise(session, ana):
    gone = make_contact(session, "gone@example.org", status=ContactStatus.ERASED)
    left = make_contact(session, "left@example.org", status=ContactStatus.UNSUBSCRIBED)

    assert signin.recipient_id(session, " Ana@Example.ORG ") == ana.id
    assert signin.recipient_id(session, "left@example.org") == left.id  # may still sign in
    assert signin.recipient_id(session, "gone@example.org") == signin.NOBODY != gone.id
    assert signin.recipient_id(session, "nobody@example.org") == signin.NOBODY
    with pytest.raises(InvalidInput):
        signin.recipient_id(session, "not an address")


def test_the_rate_limit_key_is_the_same_for_one_address_and_holds_no_address():
    key = signin.address_key("Ana@Example.org", "secret-0123456789")
    assert key == signin.address_key(" ana@example.org", "secret-0123456789")
    assert key != signin.address_key("bo@example.org", "secret-0123456789")
    assert key != signin.address_key("ana@example.org", "other-secret-0123")
    assert "ana" not in key and len(key) == 32
    assert signin.address_key("not an address", "secret-0123456789")  # still a key


def test_a_link_opens_the_centre_for_24_hours_from_now_and_no_longer(session, settings, ana):
    url = signin.link(settings, ana, None, now=NOW)
    assert url.startswith("https://news.example.org/p/")
    token = url.removeprefix("https://news.example.org/p/")
    signer = kit.signer(settings)

    contact, claim = links.open_signin_link(session, signer, token, now=NOW + timedelta(hours=24))
    assert (contact.id, claim.request_id) == (ana.id, None)
    with pytest.raises(InvalidToken):
        links.open_signin_link(session, signer, token, now=NOW + timedelta(hours=24, seconds=1))


def test_the_mail_carries_a_fresh_link_in_the_contacts_language(session, settings, ana):
    notice = signin.build(session, ana, settings, {}, now=NOW)

    assert notice.subject == "Votre lien vers vos préférences"
    [token] = re.findall(r"https://news\.example\.org/p/(\S+)", notice.text)
    contact, _ = links.open_signin_link(session, kit.signer(settings), token, now=NOW)
    assert contact.id == ana.id


def test_a_link_confirming_a_request_names_it_and_only_while_it_waits(session, settings, ana):
    request = register.open_request(
        session, RightsKind.ERASURE, now=NOW, settings=settings, contact=ana
    )
    notice = signin.build(session, ana, settings, {"request_id": request.id}, now=NOW)
    assert notice.subject == "Confirmez votre demande"
    [token] = re.findall(r"https://news\.example\.org/p/(\S+)", notice.text)
    assert kit.signer(settings).read_signin(token, now=NOW).request_id == request.id

    bo = make_contact(session, "bo@example.org")
    assert signin.build(session, bo, settings, {"request_id": request.id}, now=NOW) is None
    register.close(session, request, now=NOW, handled_by="staff", refused=True)
    assert signin.build(session, ana, settings, {"request_id": request.id}, now=NOW) is None


def test_an_erased_contact_is_sent_no_link(session, settings, ana):
    ana.status = ContactStatus.ERASED
    assert signin.build(session, ana, settings, {}, now=NOW) is None

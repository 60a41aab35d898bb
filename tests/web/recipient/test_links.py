"""Opening a recipient link over HTTP: old keys and old links work, every bad one gets the
same 404, and the page speaks the language asked for, else the contact's own."""

from __future__ import annotations

import pytest

from prefsvc.consent import suppression
from prefsvc.mail.tokens import Signer
from prefsvc.models import (
    Contact,
    ContactStatus,
    Language,
    SubscriptionStatus,
    Topic,
)
from tests.factories import make_contact, make_topic
from tests.web.recipient.conftest import ONE_CLICK, csrf_token, events, status

pytestmark = pytest.mark.all_databases


def test_link_signed_with_an_older_key_still_unsubscribes(
    client, session, settings, ana, newsletter
):
    old_signer = Signer(settings.secret_keys[:1])
    response = client.post(f"/u/{old_signer.unsubscribe_token(ana.public_id, newsletter.id)}")
    assert response.status_code == 200
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED


def test_a_link_from_years_ago_still_unsubscribes(client, session, clock, ana, newsletter, link):
    clock.advance(days=7 * 365)
    response = client.post(link, data=ONE_CLICK)
    assert response.status_code == 200
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED


def _bad_links(session, signer: Signer, ana: Contact, newsletter: Topic) -> dict[str, str]:
    erased = make_contact(session, topics=[newsletter])
    erased.email, erased.first_name, erased.status = None, None, ContactStatus.ERASED
    session.commit()
    good = signer.unsubscribe_token(ana.public_id, newsletter.id)
    payload, _, signature = good.rpartition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return {
        "forged signature": f"{payload}.{flipped}",
        "truncated": good[:-4],
        "cut at the dot": payload,
        "foreign key": Signer(("someone-elses-key-0123",)).unsubscribe_token(
            ana.public_id, newsletter.id
        ),
        "topic that does not exist": signer.unsubscribe_token(ana.public_id, 999_999),
        "unknown contact": signer.unsubscribe_token("no-such-public-id", newsletter.id),
        "erased contact": signer.unsubscribe_token(erased.public_id, newsletter.id),
        "preferences token": signer.preferences_token(ana.public_id),
        "garbage": "not-a-token",
    }


def test_every_invalid_token_gets_the_same_404_and_changes_nothing(
    client, session, signer, ana, newsletter
):
    reference = client.get("/u/reference-garbage")
    assert reference.status_code == 404
    for reason, token in _bad_links(session, signer, ana, newsletter).items():
        for method, suffix in (("GET", ""), ("POST", ""), ("POST", "/undo"), ("POST", "/all")):
            response = client.open(f"/u/{token}{suffix}", method=method, data=ONE_CLICK)
            assert response.status_code == 404, (reason, method, suffix)
            assert response.get_data() == reference.get_data(), (reason, method, suffix)
            assert dict(response.headers) == dict(reference.headers), (reason, method, suffix)
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    assert events(session, ana) == []
    assert not suppression.is_suppressed(session, "test-suppression-key-0123456789", ana.email)


def test_a_mangled_link_no_route_matches_gets_the_same_404(client, link, prefs):
    reference = client.get("/u/reference-garbage")
    mangled_links = (
        f"{link}/extra",
        f"{link[:20]}/{link[20:]}",
        f"{prefs}/x/y",
    )
    for mangled in mangled_links:
        response = client.get(mangled)
        assert response.status_code == 404, mangled
        assert response.get_data() == reference.get_data()
        assert dict(response.headers) == dict(reference.headers), mangled


def test_invalid_preference_links_get_the_same_404(client, session, signer, ana, newsletter, prefs):
    reference = client.get("/u/reference-garbage")
    form = {"csrf_token": csrf_token(client.get(prefs).get_data(as_text=True)), "action": "all"}
    bad = [
        signer.unsubscribe_token(ana.public_id, newsletter.id),  # wrong purpose
        signer.preferences_token(ana.public_id)[:-3],
        Signer(("someone-elses-key-0123",)).preferences_token(ana.public_id),
        signer.preferences_token("no-such-public-id"),
    ]
    for token in bad:
        for method in ("GET", "POST"):
            response = client.open(f"/p/{token}", method=method, data=form)
            assert response.status_code == 404
            assert response.get_data() == reference.get_data()
    session.expire_all()
    assert ana.status is ContactStatus.ACTIVE
    assert events(session, ana) == []


def test_the_page_follows_the_language_asked_for(client, ana, link):
    dutch = client.post(link).get_data(as_text=True)
    french = client.post(f"{link}?lang=fr").get_data(as_text=True)
    assert 'lang="nl"' in dutch and "U ontvangt" in dutch
    assert '<html lang="fr">' in french and "U ontvangt" not in french
    assert f'action="{link}/undo?lang=fr"' in french


HEADINGS = {
    "nl": ("Uitschrijven voor “Haven &amp; Logistiek”?", "U bent uitgeschreven"),
    "fr": (
        "Vous désabonner de «\u00a0Haven &amp; Logistiek\u00a0»\u202f?",
        "Votre désabonnement est confirmé",
    ),
    "en": ("Unsubscribe from “Haven &amp; Logistiek”?", "You have been unsubscribed"),
}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_pages_speak_the_contacts_language(client, session, signer, newsletter, language):
    contact = make_contact(session, language=language, topics=[newsletter])
    session.commit()
    link = f"/u/{signer.unsubscribe_token(contact.public_id, newsletter.id)}"
    offer, done = HEADINGS[language]
    page = client.get(link, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert f"<h1>{offer}</h1>" in page
    assert f"<h1>{done}</h1>" in client.post(link).get_data(as_text=True)
    preferences = client.get(f"/p/{signer.preferences_token(contact.public_id)}")
    assert f'<html lang="{language}">' in preferences.get_data(as_text=True)


@pytest.mark.parametrize("chosen", ["nl", "fr", "en"])
def test_lang_in_the_address_wins_over_the_stored_language(
    client, session, signer, newsletter, chosen
):
    stored = {"nl": "fr", "fr": "en", "en": "nl"}[chosen]
    contact = make_contact(session, language=stored, topics=[newsletter])
    session.commit()
    link = f"/u/{signer.unsubscribe_token(contact.public_id, newsletter.id)}"
    page = client.get(f"{link}?lang={chosen}").get_data(as_text=True)
    assert f'<html lang="{chosen}">' in page
    assert f"<h1>{HEADINGS[chosen][0]}</h1>" in page
    assert f'action="{link}?lang={chosen}"' in page  # the button keeps the choice
    done = client.post(f"{link}?lang={chosen}").get_data(as_text=True)
    assert f"<h1>{HEADINGS[chosen][1]}</h1>" in done
    assert session.get(Contact, contact.id).language is Language(stored)


TOPIC_NAMES = {"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"}
TOPIC_TEXTS = {
    "nl": "Opleidingen in de haven van Antwerpen.",
    "fr": "Formations dans le port d'Anvers.",
    "en": "Trainings in the port of Antwerp.",
}


@pytest.fixture
def trilingual(session) -> Topic:
    return make_topic(session, "opleidingen", names=TOPIC_NAMES, descriptions=TOPIC_TEXTS)


def _only_in(page: str, language: str, texts: dict[str, str]) -> bool:
    shown = {lang for lang, text in texts.items() if text.replace("'", "&#39;") in page}
    return shown == {language}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_a_readers_preference_centre_shows_only_their_languages_topic_texts(
    client, session, signer, trilingual, language
):
    contact = make_contact(session, language=language, topics=[trilingual])
    session.commit()
    client.post(f"/u/{signer.unsubscribe_token(contact.public_id, trilingual.id)}")

    page = client.get(f"/p/{signer.preferences_token(contact.public_id)}").get_data(as_text=True)

    assert f'<label for="topic-{trilingual.id}">{TOPIC_NAMES[language]}</label>' in page
    assert _only_in(page, language, TOPIC_NAMES)  # the form and the history
    assert _only_in(page, language, TOPIC_TEXTS)


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_the_unsubscribe_page_names_the_topic_in_the_readers_language(
    client, session, signer, trilingual, language
):
    contact = make_contact(session, language=language, topics=[trilingual])
    session.commit()
    link = f"/u/{signer.unsubscribe_token(contact.public_id, trilingual.id)}"
    other = {"nl": "fr", "fr": "en", "en": "nl"}[language]

    offer = client.get(link).get_data(as_text=True)
    done = client.post(link).get_data(as_text=True)
    chosen = client.get(f"{link}?lang={other}").get_data(as_text=True)

    assert _only_in(offer, language, TOPIC_NAMES)
    assert _only_in(done, language, TOPIC_NAMES)
    assert _only_in(chosen, other, TOPIC_NAMES)  # the page's language, picked on the page

"""Recipient pages over HTTP: RFC 8058 one-click, undo, everything, preference centre, languages."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest
from sqlalchemy import select

from prefsvc.consent import suppression
from prefsvc.mail.tokens import Signer
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    EventKind,
    Language,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
TODAY = date(2026, 3, 10)  # the FrozenClock's day in Europe/Brussels


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_keys)


@pytest.fixture
def newsletter(session) -> Topic:
    topic = make_topic(session, slug="haven", name="Haven & Logistiek")
    topic.description = "Opleidingen voor de haven, elke maand."
    return topic


@pytest.fixture
def courses(session) -> Topic:
    return make_topic(session, slug="cursussen", name="Cursusaanbod")


@pytest.fixture
def ana(session, newsletter, courses) -> Contact:
    contact = make_contact(
        session, "ana@example.org", topics=[newsletter, courses], organisation="Haven NV"
    )
    session.commit()
    return contact


@pytest.fixture
def link(signer, ana, newsletter) -> str:
    return f"/u/{signer.unsubscribe_token(ana.public_id, newsletter.id)}"


@pytest.fixture
def prefs(signer, ana) -> str:
    return f"/p/{signer.preferences_token(ana.public_id)}"


def status(session, contact: Contact, topic: Topic) -> SubscriptionStatus:
    session.expire_all()
    return session.scalar(
        select(Subscription.status).where(
            Subscription.contact_id == contact.id, Subscription.topic_id == topic.id
        )
    )


def events(session, contact: Contact) -> list[ConsentEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact.id)
            .order_by(ConsentEvent.seq)
        )
    )


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# --- GET and HEAD change nothing ---------------------------------------------------------


def test_get_names_the_newsletter_and_offers_a_post_button(client, session, ana, newsletter, link):
    response = client.get(link)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Haven &amp; Logistiek" in page
    assert f'<form method="post" action="{link}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    assert events(session, ana) == []


def test_head_changes_nothing(client, session, ana, newsletter, link):
    response = client.head(link)
    assert response.status_code == 200
    assert response.get_data() == b""
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    assert events(session, ana) == []


# --- POST: RFC 8058 one-click ------------------------------------------------------------


def _multipart(boundary: str = "prefsvc-boundary") -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "empty"])
def test_post_one_click_needs_no_cookie_and_never_redirects(
    app, session, ana, newsletter, courses, link, encoding
):
    client = app.test_client(use_cookies=False)
    if encoding == "urlencoded":
        response = client.post(
            link,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    elif encoding == "multipart":
        body, content_type = _multipart()
        response = client.post(link, data=body, content_type=content_type)
    else:
        response = client.post(link)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Location" not in response.headers
    assert "U ontvangt “Haven &amp; Logistiek” niet meer." in response.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert status(session, ana, courses) is SubscriptionStatus.SUBSCRIBED
    [event] = events(session, ana)
    assert (event.kind, event.channel, event.topic_id) == (
        EventKind.UNSUBSCRIBED,
        "one-click",
        newsletter.id,
    )


def test_repeated_one_click_is_harmless_and_recorded_once(client, session, ana, link):
    first = client.post(link, data=ONE_CLICK)
    second = client.post(link, data=ONE_CLICK)
    assert first.status_code == second.status_code == 200
    assert [e.kind for e in events(session, ana)] == [EventKind.UNSUBSCRIBED]


def test_confirmation_offers_undo_everything_and_the_preference_centre(client, ana, link, prefs):
    page = client.post(link, data=ONE_CLICK).get_data(as_text=True)
    assert f'action="{link}/undo"' in page
    assert f'action="{link}/all"' in page
    assert f'href="{prefs}"' in page


def test_every_person_gets_their_own_links_on_the_same_page(
    client, session, signer, ana, newsletter, link, prefs
):
    """The page is rendered once per topic and language; only the tokens differ per person."""
    bo = make_contact(session, "bo@example.org", topics=[newsletter])
    session.commit()
    bo_link = f"/u/{signer.unsubscribe_token(bo.public_id, newsletter.id)}"
    bo_prefs = f"/p/{signer.preferences_token(bo.public_id)}"

    pages = {
        who: (client.get(own).get_data(as_text=True), client.post(own).get_data(as_text=True))
        for who, own in (("ana", link), ("bo", bo_link), ("ana again", link))
    }

    for who, own, own_prefs, other in (
        ("ana", link, prefs, bo_link),
        ("bo", bo_link, bo_prefs, link),
        ("ana again", link, prefs, bo_link),
    ):
        offer, done = pages[who]
        assert own in offer and f'href="{own_prefs}"' in offer
        assert f'action="{own}/undo"' in done and f'href="{own_prefs}"' in done
        assert other.removeprefix("/u/") not in offer + done
        assert "StandIn" not in offer + done
    assert pages["ana"][1] == pages["ana again"][1]


def test_the_page_follows_the_language_asked_for(client, ana, link):
    dutch = client.post(link).get_data(as_text=True)
    french = client.post(f"{link}?lang=fr").get_data(as_text=True)
    assert 'lang="nl"' in dutch and "U ontvangt" in dutch
    assert '<html lang="fr">' in french and "U ontvangt" not in french
    assert f'action="{link}/undo?lang=fr"' in french


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


def test_head_on_the_preference_centre_changes_nothing(client, session, ana, prefs):
    response = client.head(prefs)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert events(session, ana) == []


# --- every bad token: the same 404, nothing changed --------------------------------------


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


# --- undo and unsubscribe from everything ------------------------------------------------


def test_undo_resubscribes_and_records_it_as_such(client, session, ana, newsletter, link):
    client.post(link, data=ONE_CLICK)
    response = client.post(f"{link}/undo")
    assert response.status_code == 200
    assert "U bent opnieuw ingeschreven" in response.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.SUBSCRIBED
    last = events(session, ana)[-1]
    assert (last.kind, last.channel) == (EventKind.RESUBSCRIBED, "undo")


def test_unsubscribe_from_everything_suppresses_the_address_for_good(
    client, session, settings, ana, newsletter, courses, link
):
    client.post(link, data=ONE_CLICK)
    response = client.post(f"{link}/all")
    assert response.status_code == 200
    assert "U bent uitgeschreven voor al onze mailings" in response.get_data(as_text=True)
    session.expire_all()
    assert ana.status is ContactStatus.UNSUBSCRIBED
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    assert status(session, ana, courses) is SubscriptionStatus.UNSUBSCRIBED
    assert events(session, ana)[-1].kind is EventKind.OBJECTION

    undo = client.post(f"{link}/undo")
    assert undo.status_code == 200
    assert "Opnieuw inschrijven" not in undo.get_data(as_text=True)
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert events(session, ana)[-1].kind is EventKind.OBJECTION


def test_everything_page_explains_that_it_is_final(client, ana, link):
    page = client.post(link, data=ONE_CLICK).get_data(as_text=True)
    assert "Dit is definitief" in page


# --- languages ---------------------------------------------------------------------------

HEADINGS = {
    "nl": ("Uitschrijven voor “Haven &amp; Logistiek”?", "U bent uitgeschreven"),
    "fr": (
        "Vous désabonner de «\u00a0Haven &amp; Logistiek\u00a0»\u00a0?",
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


def test_every_page_offers_the_three_languages(client, link):
    page = client.get(link).get_data(as_text=True)
    for code, name in (("nl", "Nederlands"), ("fr", "Français"), ("en", "English")):
        assert f'<a href="{link}?lang={code}" hreflang="{code}" lang="{code}"' in page
        assert f">{name}</a>" in page


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        ("fr-BE,fr;q=0.9", "Ce lien n’est pas valide ou ne fonctionne plus."),
        ("nl-BE", "Deze link is ongeldig of werkt niet meer."),
        ("en-GB", "This link is not valid or no longer works."),
    ],
)
def test_invalid_link_page_follows_the_browser_language(client, accept, text):
    response = client.get("/u/not-a-token", headers={"Accept-Language": accept})
    assert response.status_code == 404
    assert text in response.get_data(as_text=True)


# --- headers and assets ------------------------------------------------------------------


def test_token_pages_carry_security_headers_and_are_never_cached(client, link, prefs):
    responses = [
        client.get(link),
        client.head(link),
        client.post(link, data=ONE_CLICK),
        client.post(f"{link}/undo"),
        client.get(prefs),
        client.get("/u/not-a-token"),
    ]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_need_no_script_and_load_only_our_own_stylesheet(client, link, prefs):
    for page in (client.get(link).get_data(as_text=True), client.get(prefs).get_data(as_text=True)):
        assert "<script" not in page
        assert "style=" not in page
        assert re.findall(r'(?:href|src)="(https?:)?//', page) == []
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)">', page).group(1)
        with client.get(stylesheet) as css:
            assert css.status_code == 200
            assert css.mimetype == "text/css"
            assert "min-height: 48px" in css.get_data(as_text=True)


# --- preference centre -------------------------------------------------------------------


def test_preference_centre_shows_details_topics_and_language(
    client, signer, ana, newsletter, courses, prefs
):
    client.post(f"/u/{signer.unsubscribe_token(ana.public_id, courses.id)}")
    page = client.get(prefs).get_data(as_text=True)
    assert "<h1>Uw voorkeuren</h1>" in page
    assert "Ana Peeters" in page and "ana@example.org" in page and "Haven NV" in page
    checkbox = f'<input type="checkbox" id="topic-{newsletter.id}" name="topics"'
    assert f'{checkbox} value="{newsletter.id}" checked' in page
    assert (
        f'<input type="checkbox" id="topic-{courses.id}" name="topics" value="{courses.id}">'
        in page
    )
    assert f'<label for="topic-{newsletter.id}">Haven &amp; Logistiek</label>' in page
    assert "Opleidingen voor de haven, elke maand." in page
    assert '<option value="nl" lang="nl" selected>Nederlands</option>' in page


def test_preference_centre_refuses_a_post_without_csrf_token(
    client, session, ana, newsletter, prefs
):
    response = client.post(prefs, data={"action": "save", "language": "fr"})
    assert response.status_code == 400
    assert "Er ging iets mis met dit formulier" in response.get_data(as_text=True)
    session.expire_all()
    assert ana.language is Language.NL
    assert events(session, ana) == []


def test_preference_centre_saves_topics_and_language(
    client, session, ana, newsletter, courses, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    response = client.post(
        prefs,
        data={"csrf_token": token, "action": "save", "topics": [str(courses.id)], "language": "fr"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == prefs
    page = client.get(prefs).get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Vos préférences ont été enregistrées." in page
    session.expire_all()
    assert ana.language is Language.FR
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert status(session, ana, courses) is SubscriptionStatus.SUBSCRIBED
    assert ana.window_anchor == TODAY
    assert [(e.kind, e.channel) for e in events(session, ana)] == [
        (EventKind.UNSUBSCRIBED, "preference-centre"),
        (EventKind.PREFERENCES, "preference-centre"),
    ]
    assert events(session, ana)[-1].detail == {"language": "fr"}


def test_preference_centre_records_nothing_when_nothing_changed(
    client, session, ana, newsletter, courses, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    topics = [str(newsletter.id), str(courses.id)]
    client.post(
        prefs, data={"csrf_token": token, "action": "save", "topics": topics, "language": "nl"}
    )
    assert events(session, ana) == []
    assert session.get(Contact, ana.id).window_anchor == date(2026, 1, 1)


def test_preference_centre_pauses_and_resumes_all_mail(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "pause", "months": "3"})
    session.expire_all()
    assert ana.paused_until == date(2026, 6, 10)
    page = client.get(prefs).get_data(as_text=True)
    assert "Vanaf 10 juni 2026 schrijven we u weer." in page
    client.post(prefs, data={"csrf_token": token, "action": "resume"})
    session.expire_all()
    assert ana.paused_until is None
    assert [(e.kind, e.detail) for e in events(session, ana)] == [
        (EventKind.PAUSED, {"months": 3, "until": "2026-06-10"}),
        (EventKind.PAUSED, {"until": None}),
    ]


def test_preference_centre_unsubscribe_from_everything_is_final(
    client, session, settings, ana, newsletter, prefs
):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "all"})
    session.expire_all()
    assert ana.status is ContactStatus.UNSUBSCRIBED
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    page = client.get(prefs).get_data(as_text=True)
    assert 'name="topics"' not in page

    client.post(
        prefs,
        data={
            "csrf_token": token,
            "action": "save",
            "topics": [str(newsletter.id)],
            "language": "nl",
        },
    )
    assert status(session, ana, newsletter) is SubscriptionStatus.UNSUBSCRIBED
    assert "we u niet opnieuw inschrijven" in client.get(prefs).get_data(as_text=True)


# --- logs --------------------------------------------------------------------------------


@pytest.mark.parametrize("logger", ["werkzeug", "gunicorn.access", "prefsvc"])
def test_request_logs_never_hold_a_token(app, caplog, link, prefs, logger):
    token = link.removeprefix("/u/")
    with caplog.at_level(logging.INFO, logger=logger):
        logging.getLogger(logger).info('127.0.0.1 - - "%s %s HTTP/1.1" 200 -', "POST", link)
        logging.getLogger(logger).error("Exception on %s [GET]", prefs)
    assert token not in caplog.text
    assert prefs.removeprefix("/p/") not in caplog.text
    assert '"POST /u/[token] HTTP/1.1" 200' in caplog.text
    assert "Exception on /p/[token] [GET]" in caplog.text


# --- preference centre: the data we hold, corrections, copy and erasure -------------------


def _rights(session) -> list:
    from prefsvc.models import RightsRequest

    session.expire_all()
    return list(session.scalars(select(RightsRequest).order_by(RightsRequest.id)))


def _mailed_link(outbox) -> str:
    from prefsvc.queue import broker

    broker.queue().join(timeout_ms=10_000)
    [mail] = [m for m in outbox() if "/p/" in m.get_content() and "24" in m.get_content()]
    return re.search(r"https://news\.example\.org(/p/\S+)", mail.get_content()).group(1)


def test_preference_centre_shows_the_data_we_hold_and_the_history(
    client, session, ana, newsletter, link, prefs
):
    client.post(link, data=ONE_CLICK)
    page = client.get(prefs).get_data(as_text=True)
    assert "<summary>Alles tonen wat we bijhouden</summary>" in page
    assert "Uitgeschreven: Haven &amp; Logistiek" in page
    assert "(uitschrijflink)" in page
    assert 'value="Haven NV"' in page


def test_correcting_details_is_recorded_and_moves_the_anchor(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    form = {
        "csrf_token": token,
        "action": "details",
        "first_name": " Anna ",
        "last_name": "Peeters",
    }
    response = client.post(prefs, data={**form, "organisation": ""})
    assert response.status_code == 303
    assert "Uw gegevens zijn verbeterd." in client.get(prefs).get_data(as_text=True)
    session.expire_all()
    assert (ana.first_name, ana.organisation) == ("Anna", None)
    assert ana.window_anchor == TODAY
    [event] = events(session, ana)
    assert (event.kind, event.channel) == (EventKind.RECTIFIED, "preference-centre")
    assert event.detail == {"fields": ["first_name", "organisation"]}


def test_a_bad_correction_gets_a_readable_error_and_changes_nothing(client, session, ana, prefs):
    token = csrf_token(client.get(prefs).get_data(as_text=True))
    form = {"csrf_token": token, "action": "details", "first_name": "x" * 201}
    response = client.post(prefs, data=form)
    assert response.status_code == 400
    assert "Gebruik hoogstens 200 tekens, op één regel." in response.get_data(as_text=True)
    session.expire_all()
    assert ana.first_name == "Ana"
    assert events(session, ana) == []


def test_a_copy_is_given_only_after_a_fresh_mailed_link(client, session, outbox, ana, prefs):
    from prefsvc.models import RightsKind, RightsStatus

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    response = client.post(prefs, data={"csrf_token": token, "action": "access"})
    assert response.status_code == 303
    assert "Location" in response.headers and "json" not in response.mimetype
    [request] = _rights(session)
    assert (request.kind, request.status) == (RightsKind.ACCESS, RightsStatus.RECEIVED)

    fresh = _mailed_link(outbox)
    page = client.get(fresh).get_data(as_text=True)
    assert '<h2 id="confirm-heading">Bevestig uw aanvraag</h2>' in page
    download = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert download.status_code == 200
    assert download.mimetype == "application/json"
    assert download.headers["Cache-Control"] == "no-store"
    assert download.get_json()["contact"]["email"] == "ana@example.org"
    [request] = _rights(session)
    assert request.status is RightsStatus.DONE
    assert request.verification == "email-link"
    assert request.verified_at is not None
    assert events(session, ana)[-1].kind is EventKind.EXPORTED
    again = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert again.status_code == 400  # the request is closed; a second confirm does nothing


def test_erasure_from_a_fresh_link_erases_and_kills_every_old_link(
    client, session, settings, outbox, ana, link, prefs
):
    from prefsvc.models import RightsKind, RightsStatus

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    client.post(prefs, data={"csrf_token": token, "action": "erasure"})
    fresh = _mailed_link(outbox)
    page = client.get(fresh).get_data(as_text=True)
    refused = client.post(fresh, data={"csrf_token": csrf_token(page), "action": "confirm"})
    assert refused.status_code == 400  # the "I understand" box was not ticked
    assert session.get(Contact, ana.id).email == "ana@example.org"

    form = {"csrf_token": csrf_token(page), "action": "confirm", "understood": "yes"}
    done = client.post(fresh, data=form)
    assert done.status_code == 200
    assert "<h1>Uw gegevens zijn gewist</h1>" in done.get_data(as_text=True)
    session.expire_all()
    assert ana.status is ContactStatus.ERASED and ana.email is None
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    [request] = _rights(session)
    assert (request.kind, request.status) == (RightsKind.ERASURE, RightsStatus.DONE)
    for old in (link, prefs, fresh):
        assert client.get(old).status_code == 404


def test_a_plain_preference_link_cannot_download_or_erase_at_once(client, session, ana, prefs):
    page = client.get(prefs).get_data(as_text=True)
    assert 'value="confirm"' not in page
    token = csrf_token(page)
    client.post(prefs, data={"csrf_token": token, "action": "erasure", "understood": "yes"})
    assert client.post(prefs, data={"csrf_token": token, "action": "confirm"}).status_code == 400
    session.expire_all()
    assert ana.status is ContactStatus.ACTIVE


def test_asking_twice_keeps_one_register_entry_and_mails_a_link_each_time(
    client, session, outbox, ana, prefs
):
    from prefsvc.queue import broker

    token = csrf_token(client.get(prefs).get_data(as_text=True))
    for _ in range(2):
        client.post(prefs, data={"csrf_token": token, "action": "access"})
    assert len(_rights(session)) == 1
    broker.queue().join(timeout_ms=10_000)
    subjects = [m["Subject"] for m in outbox()]
    assert subjects == ["Bevestig uw aanvraag", "Bevestig uw aanvraag"]

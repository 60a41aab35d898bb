"""Opt-outs and corrections are confirmed by one short mail in the person's language."""

from __future__ import annotations

import re

import pytest

from prefsvc.mail.tokens import Signer
from prefsvc.models import RightsKind, RightsRequest, RightsStatus
from prefsvc.queue import broker
from tests.factories import make_contact, make_topic

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
SUBJECTS = {
    "nl": "Uw uitschrijving is bevestigd",
    "fr": "Votre désabonnement est confirmé",
    "en": "Your unsubscription is confirmed",
}
LEFT = {
    "nl": "U ontvangt deze nieuwsbrief niet meer van ons:",
    "fr": "Vous ne recevrez plus cette newsletter de notre part\u00a0:",
    "en": "You will no longer receive this newsletter from us:",
}
FOOTERS = {
    "nl": "Dit is een dienstbericht over uw eigen keuzes. Het bevat geen reclame.",
    "fr": "Ceci est un message de service concernant vos propres choix.",
    "en": "This is a service message about your own choices. It contains no advertising.",
}


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_keys)


@pytest.fixture
def haven(session):
    return make_topic(session, slug="haven", name="Haven & Logistiek")


def delivered(outbox):
    broker.queue().join(timeout_ms=10_000)
    return outbox()


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_one_click_is_acknowledged_once_in_the_contacts_language(
    client, session, signer, outbox, haven, language
):
    contact = make_contact(session, "ana@example.org", language=language, topics=[haven])
    session.commit()
    link = f"/u/{signer.unsubscribe_token(contact.public_id, haven.id)}"
    client.post(link, data=ONE_CLICK)
    client.post(link, data=ONE_CLICK)
    client.get(link)

    [mail] = delivered(outbox)
    assert mail["To"] == "ana@example.org"
    assert mail["Subject"] == SUBJECTS[language]
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Unsubscribe"] is None
    text = mail.get_content()
    assert LEFT[language] in text
    assert "- Haven & Logistiek" in text
    assert FOOTERS[language] in text
    [only_link] = links_in(text)
    assert only_link.startswith("https://news.example.org/p/")
    assert client.get(only_link.removeprefix("https://news.example.org")).status_code == 200


def test_leaving_everything_is_acknowledged_and_undo_sends_nothing(
    client, session, signer, outbox, haven
):
    contact = make_contact(session, "ana@example.org", topics=[haven])
    session.commit()
    link = f"/u/{signer.unsubscribe_token(contact.public_id, haven.id)}"
    client.post(link, data=ONE_CLICK)
    broker.queue().join(timeout_ms=10_000)  # the first acknowledgement is out before the undo
    client.post(f"{link}/undo")
    client.post(f"{link}/all")
    client.post(f"{link}/all")

    texts = sorted(mail.get_content() for mail in delivered(outbox))
    everything = "U bent uitgeschreven voor al onze nieuwsbrieven en andere reclamemails."
    assert len(texts) == 2  # one per opt-out; undo and the repeated POST send nothing
    [one_topic] = [t for t in texts if "- Haven & Logistiek" in t]
    [all_topics] = [t for t in texts if everything in t]
    assert everything not in one_topic
    assert "Haven & Logistiek" not in all_topics


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("nl", "- Voornaam: Ana → Anna"),
        ("fr", "- Prénom: Ana → Anna"),
        ("en", "- First name: Ana → Anna"),
    ],
)
def test_a_correction_is_confirmed_with_old_and_new_values(
    client, session, signer, outbox, language, line
):
    contact = make_contact(session, "ana@example.org", language=language)
    session.commit()
    prefs = f"/p/{signer.preferences_token(contact.public_id)}"
    form = {
        "csrf_token": _csrf(client.get(prefs).get_data(as_text=True)),
        "action": "details",
        "first_name": "Anna",
        "last_name": "Peeters",
        "organisation": "Haven NV",
    }
    assert client.post(prefs, data=form).status_code == 303

    [mail] = delivered(outbox)
    text = mail.get_body(("plain",)).get_content()
    assert line in text
    assert "Haven NV" in text
    assert "Peeters →" not in text  # unchanged fields are not listed
    [request] = session.query(RightsRequest).all()
    assert (request.kind, request.status) == (RightsKind.RECTIFICATION, RightsStatus.DONE)


def test_an_opt_out_taken_back_before_the_mail_is_built_is_not_confirmed(
    app, session, settings, clock, haven
):
    from prefsvc.consent import changes as consent
    from prefsvc.recipient.acknowledgements import build_optout

    contact = make_contact(session, topics=[haven])
    now, today = clock(), clock().date()
    consent.unsubscribe(session, contact, haven, channel="one-click", now=now, today=today)
    assert build_optout(session, contact, settings, {"topic_ids": [haven.id]}, now=now) is not None
    consent.subscribe(session, contact, haven, channel="undo", now=now, today=today)
    assert build_optout(session, contact, settings, {"topic_ids": [haven.id]}, now=now) is None
    assert build_optout(session, contact, settings, {"everything": True}, now=now) is None


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_the_acknowledgement_names_the_topic_in_the_contacts_language(
    client, session, signer, outbox, language
):
    names = {"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"}
    topic = make_topic(session, slug="opleidingen", names=names)
    contact = make_contact(session, "ana@example.org", language=language, topics=[topic])
    session.commit()

    client.post(f"/u/{signer.unsubscribe_token(contact.public_id, topic.id)}", data=ONE_CLICK)

    (message,) = delivered(outbox)
    text = message.get_content()
    assert names[language] in text
    assert not any(name in text for lang, name in names.items() if lang != language)

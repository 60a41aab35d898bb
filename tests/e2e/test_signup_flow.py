"""A visitor subscribes through the public form on a phone and confirms from the mail.

In nl, fr and en at 360 px: the form, the answer, the confirmation page and the result fit
the screen and axe-core finds no serious or critical violation.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from prefsvc.models import Contact, SubscriptionStatus
from prefsvc.queue import broker
from tests.e2e.conftest import PHONE, fits_and_passes_axe
from tests.factories import make_topic

TEXTS = {
    "nl": ("Abonneer u op onze nieuwsbrieven", "Haven", "Kijk in uw mailbox", "Ja, schrijf me in"),
    "fr": (
        "Abonnez-vous à nos lettres d’information",
        "Port",
        "Consultez votre boîte mail",
        "Oui, abonnez-moi",
    ),
    "en": ("Subscribe to our newsletters", "Port news", "Check your mailbox", "Yes, subscribe me"),
}
DONE = {"nl": "U bent ingeschreven", "fr": "Vous êtes abonné", "en": "You are subscribed"}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_a_visitor_subscribes_on_a_phone_and_confirms_from_the_mail(
    live_server, session, clock, outbox, new_page, axe, language
):
    make_topic(
        session,
        slug="haven",
        names={"nl": "Haven", "fr": "Port", "en": "Port news"},
        descriptions={"nl": "Elke maand", "fr": "Chaque mois", "en": "Every month"},
    )
    make_topic(session, slug="cursussen", names={"nl": "Cursussen", "fr": "Cours", "en": "Courses"})
    session.commit()
    heading, topic, sent, button = TEXTS[language]

    page = new_page(viewport=PHONE, locale={"nl": "nl-BE", "fr": "fr-BE", "en": "en-GB"}[language])
    page.goto(f"{live_server}/s")
    expect(page.locator("h1")).to_have_text(heading)
    fits_and_passes_axe(page, axe, PHONE)

    page.get_by_label(re.compile("^(E-mailadres|Adresse e-mail|Email address)$")).fill(
        "lea@example.org"
    )
    page.get_by_label(topic, exact=True).check()
    page.locator("#consent").check()
    clock.advance(seconds=20)  # a person takes a while; the app's clock is the test's
    page.locator("form.signup button[type=submit]").click()
    expect(page.locator("h1")).to_have_text(sent)
    fits_and_passes_axe(page, axe, PHONE)

    broker.queue().join(timeout_ms=10_000)
    [mail] = outbox()
    link = re.search(r"(http://127\.0\.0\.1:\d+/s/confirm/\S+)", mail.get_content()).group(1)
    page.goto(link)
    assert session.scalar(select(Contact).where(Contact.email == "lea@example.org")) is None
    fits_and_passes_axe(page, axe, PHONE)
    page.get_by_role("button", name=button).click()
    expect(page.locator("h1")).to_have_text(DONE[language])
    fits_and_passes_axe(page, axe, PHONE)

    session.expire_all()
    contact = session.scalar(select(Contact).where(Contact.email == "lea@example.org"))
    assert contact.language.value == language
    assert [s.status for s in contact.subscriptions] == [SubscriptionStatus.SUBSCRIBED]

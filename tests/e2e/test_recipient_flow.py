"""A recipient opens the link of a delivered newsletter and tunes their mail, phone and desktop.

Unsubscribe, undo, change topics and language in the preference centre, switch the page
language; every page fits the viewport and axe-core finds no serious or critical violation.
"""

from __future__ import annotations

import html
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import make_campaign, make_contact, make_topic


def check(page, axe, viewport) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert axe(page) == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_recipient_unsubscribes_undoes_and_tunes_preferences_from_a_delivered_mail(
    live_server, session, run_campaign, outbox, new_page, axe, viewport
):
    haven = make_topic(session, slug="haven", name="Haven & Logistiek")
    haven.description = "Opleidingen voor de haven, elke maand."
    courses = make_topic(session, slug="cursussen", name="Cursusaanbod")
    make_contact(session, "ana@example.org", topics=[haven, courses])
    campaign = make_campaign(session, haven)
    session.commit()
    run_campaign(campaign.id)

    [mail] = outbox()
    body = mail.get_body(("html",)).get_content()
    unsubscribe = html.unescape(re.search(r'href="([^"]*/u/[^"]+)"', body).group(1))
    assert mail["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert unsubscribe.startswith(live_server)

    page = new_page(viewport=viewport, locale="nl-BE")
    page.goto(unsubscribe)
    expect(page.locator("h1")).to_have_text("Uitschrijven voor “Haven & Logistiek”?")
    check(page, axe, viewport)

    page.get_by_role("button", name="Uitschrijven").click()
    expect(page.locator("h1")).to_have_text("U bent uitgeschreven")
    assert page.get_by_role("status").inner_text().startswith("U ontvangt “Haven & Logistiek”")
    check(page, axe, viewport)

    page.get_by_role("button", name="Opnieuw inschrijven voor “Haven & Logistiek”").click()
    expect(page.locator("h1")).to_have_text("U bent opnieuw ingeschreven")

    page.get_by_role("link", name="Uw voorkeuren beheren").click()
    expect(page.locator("h1")).to_have_text("Uw voorkeuren")
    assert page.get_by_label("Haven & Logistiek").is_checked()
    check(page, axe, viewport)

    page.get_by_label("Cursusaanbod").uncheck()
    page.get_by_label("Taal van onze e-mails").select_option("fr")
    page.get_by_role("button", name="Voorkeuren opslaan").click()
    expect(page.locator("h1")).to_have_text("Vos préférences")
    expect(page.get_by_role("status")).to_have_text("Vos préférences ont été enregistrées.")
    assert not page.get_by_label("Cursusaanbod").is_checked()
    page.locator("summary").click()  # the data we hold, and the history of choices
    expect(page.get_by_text("Désabonné(e)\u00a0: Cursusaanbod")).to_be_visible()
    check(page, axe, viewport)

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Your preferences")
    check(page, axe, viewport)


def test_signin_page_on_a_phone_sends_the_same_answer_for_any_address(live_server, new_page, axe):
    page = new_page(viewport=PHONE, locale="fr-BE")
    page.goto(f"{live_server}/p")
    expect(page.locator("h1")).to_have_text("Accéder à vos préférences")
    check(page, axe, PHONE)
    page.get_by_label("Adresse e-mail").fill("nobody@example.org")
    page.get_by_role("button", name="M’envoyer un lien").click()
    assert page.get_by_role("status").inner_text().startswith("Si cette adresse figure")
    check(page, axe, PHONE)

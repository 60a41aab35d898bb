"""The renewal page of a re-permission mail: readable and accessible on a phone, in nl/fr/en."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from prefsvc.mail import kit
from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import make_contact, make_topic


@pytest.mark.parametrize(
    ("language", "button"),
    [
        ("nl", "Ja, houd mij op de hoogte"),
        ("fr", "Oui, tenez-moi au courant"),
        ("en", "Yes, keep me informed"),
    ],
)
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_the_person_renews_with_one_button_without_axe_violations(
    live_server, new_page, axe, session, settings, viewport, language, button
):
    topic = make_topic(session, slug="nieuwe-opleidingen")
    person = make_contact(
        session, "ana@example.org", anchor=date(2021, 5, 9), topics=[topic], language=language
    )
    session.commit()
    token = kit.signer(settings).renewal_token(person.public_id)
    page = new_page(viewport=viewport, locale="nl-BE")

    page.goto(f"{live_server}/r/{token}")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert axe(page) == []
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()

    expect(page.locator("[role=status]")).to_be_visible()
    assert axe(page) == []
    session.expire_all()
    assert person.window_anchor == date(2026, 3, 10)

"""A marketer finds a contact among many in a real browser, on a phone and on a desktop.

The list pages past fifty, narrows by language and status, sorts by name, and the contact
page opens; at 360 px and 1280 px nothing scrolls sideways and axe-core finds no serious or
critical violation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from prefsvc import demo
from prefsvc.access import staff
from prefsvc.people import topics
from tests.e2e.conftest import DESKTOP, PHONE, fits_and_passes_axe

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def crowd(session, clock):
    for slug, names, descriptions in demo.TOPICS:
        topics.create(session, slug, names=names, descriptions=descriptions)
    demo.add_crowd(session, now=NOW, today=NOW.date(), count=230)
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "1280px"])
def test_a_marketer_pages_filters_and_sorts_the_contacts(
    live_server, new_page, axe, crowd, viewport
):
    page = new_page(viewport=viewport, locale="en-GB")
    page.goto(f"{live_server}/admin/contacts/")
    page.get_by_label("Username").fill("lotte")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/admin/contacts/")

    expect(page.get_by_role("heading", name="230 contacts")).to_be_visible()
    expect(page.get_by_text("Page 1 of 5", exact=True)).to_be_visible()
    fits_and_passes_axe(page, axe, viewport)
    if viewport is PHONE:  # the table is a stack of cards, one per contact
        assert page.evaluate("getComputedStyle(document.querySelector('tbody tr')).display") == (
            "block"
        )

    page.get_by_role("link", name="Next").click()
    expect(page.get_by_text("Page 2 of 5", exact=True)).to_be_visible()

    page.get_by_label("Language").select_option("fr")
    page.get_by_label("Status", exact=True).select_option("subscribed")
    page.get_by_label("Topic").select_option("promoties")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"language=fr"))
    assert "language=fr" in page.url and "status=subscribed" in page.url
    heading = page.locator("#h-results").inner_text()
    shown = int(heading.split()[0])
    assert 0 < shown < 230
    fits_and_passes_axe(page, axe, viewport)

    page.get_by_role("link", name="Name", exact=True).click()
    page.wait_for_url(re.compile(r"sort=name"))
    assert "sort=name" in page.url and "language=fr" in page.url  # the filters stay
    expect(page.locator("#h-results")).to_have_text(heading)
    names = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    last_names = [n.split()[1] for n in names]
    assert last_names == sorted(last_names)

    page.locator("tbody tr a").first.click()
    expect(page.get_by_role("heading", name="Subscriptions")).to_be_visible()
    expect(page.get_by_role("heading", name="Mails sent")).to_be_visible()
    fits_and_passes_axe(page, axe, viewport)

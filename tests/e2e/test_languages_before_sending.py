"""Languages before sending, in a real browser: a campaign written in Dutch and French only,
with no fallback, shows who gets which version and who gets nothing before it goes; the
confirmation repeats it; then English readers get nothing, the others their own version, and a
French reader's pages reached from the mail are French from top to bottom.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from prefsvc.access import staff
from prefsvc.people import topics
from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import make_contact

CATALOGS = Path(__file__).resolve().parents[2] / "prefsvc" / "translations"
HTML_NL = "<h1>Nieuwe opleidingen</h1><p>Beste {{ contact.first_name }}, dit voorjaar…</p>"
HTML_FR = "<h1>Nouvelles formations</h1><p>Bonjour {{ contact.first_name }}, ce printemps…</p>"


def other_languages_text() -> set[str]:
    """Interface sentences as English and Dutch readers see them, where French differs."""
    found = set()
    for language in ("en", "nl"):
        with open(CATALOGS / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
            catalog = read_po(handle)
        with open(CATALOGS / "fr" / "LC_MESSAGES" / "messages.po", "rb") as handle:
            french = read_po(handle)
        for message in catalog:
            text = message.string if isinstance(message.string, str) else None
            other = french.get(message.id)
            if not text or other is None or other.string == text:
                continue
            if len(text) >= 12 and "%(" not in text and "{" not in text:
                found.add(text)
    return found


@pytest.fixture
def readers(session, clock):
    courses = topics.create(
        session,
        "nieuwe-opleidingen",
        names={"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"},
        descriptions={
            "nl": "Elke maand de nieuwe opleidingen.",
            "fr": "Les nouvelles formations, chaque mois.",
            "en": "New trainings, every month.",
        },
    )
    for email, first, language in (
        ("ana@example.org", "Ana", "nl"),
        ("celine@example.org", "Céline", "fr"),
        ("emma@example.org", "Emma", "en"),
    ):
        make_contact(session, email, first_name=first, language=language, topics=[courses])
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()


def variant_row(page, reader: str):
    return page.locator(f"table.by-language tr[data-reader='{reader}']")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "360px"])
def test_a_dutch_and_french_campaign_shows_and_sends_each_reader_their_language(
    live_server, new_page, axe, readers, outbox, viewport
):
    page = new_page(viewport=viewport, locale="en-GB")
    page.goto(f"{live_server}/admin/campaigns/new")
    page.get_by_label("Username").fill("lotte")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/admin/campaigns/new")

    page.get_by_label("Topic").select_option("nieuwe-opleidingen")
    page.get_by_label("HTML, as written").check()
    page.get_by_label("Subject (nl)").fill("Nieuwe opleidingen")
    page.get_by_label("HTML (nl)").fill(HTML_NL)
    page.get_by_label("Subject (fr)").fill("Nouvelles formations")
    page.get_by_label("HTML (fr)").fill(HTML_FR)
    page.get_by_label("Readers of a language left empty get").select_option("none")
    page.get_by_role("button", name="Save draft and preview").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))

    # before anything goes: who gets which version, and who gets nothing and why
    assert variant_row(page, "nl").get_attribute("data-variant") == "nl"
    assert variant_row(page, "fr").get_attribute("data-variant") == "fr"
    english = variant_row(page, "en")
    assert english.get_attribute("data-variant") == "excluded"
    assert "nothing: no version in their language" in english.inner_text()
    assert page.get_by_role("row", name=re.compile("no version in their language.*1")).count()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= viewport["width"]

    page.get_by_role("link", name="Send now to 2 recipients").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+/send$"))
    # the confirmation repeats the audience and its languages
    expect(page.get_by_role("heading", name="This sends it now to 2 recipients")).to_be_visible()
    expect(page.get_by_text("Readers of another language are not sent it.")).to_be_visible()
    assert variant_row(page, "en").get_attribute("data-variant") == "excluded"
    expect(variant_row(page, "en")).to_be_visible()
    assert page.get_by_role("row", name=re.compile("no version in their language.*1")).count()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= viewport["width"]
    assert axe(page) == []
    assert outbox() == []  # nothing before the confirmation

    page.get_by_role("button", name="Yes, send it now to 2 recipients").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))
    page.locator(".badge", has_text="sent").wait_for(timeout=30_000)

    mails = {m["To"]: m for m in outbox()}
    assert set(mails) == {"ana@example.org", "celine@example.org"}  # Emma gets nothing
    assert mails["ana@example.org"]["Subject"] == "Nieuwe opleidingen"
    assert mails["celine@example.org"]["Subject"] == "Nouvelles formations"
    assert "Bonjour Céline" in mails["celine@example.org"].get_body(("html",)).get_content()


def test_a_french_readers_pages_from_the_mail_are_entirely_french(
    live_server, new_page, readers, outbox, session, settings, clock
):
    from prefsvc.campaigns import campaigns
    from prefsvc.queue import broker

    draft = campaigns.create(
        session,
        topic_slug="nieuwe-opleidingen",
        variants={
            "nl": ("Nieuwe opleidingen", HTML_NL, None),
            "fr": ("Nouvelles formations", HTML_FR, None),
        },
        fallback="none",
    )
    campaigns.launch(session, draft.id, now=clock(), today=clock().date(), years=5, batch_size=100)
    session.commit()
    broker.queue().jobs_held()
    broker.queue().join(timeout_ms=20_000)
    (mail,) = [m for m in outbox() if m["To"] == "celine@example.org"]
    text = mail.get_body(("plain",)).get_content()
    preferences = re.search(r"http://127\.0\.0\.1:\d+/p/\S+", text).group(0)
    unsubscribe = mail["List-Unsubscribe"].split(",")[0].strip().strip("<>")

    # an English browser: the pages follow the reader's language, not the browser's
    page = new_page(viewport=PHONE, locale="en-GB")
    foreign = other_languages_text()
    for url in (preferences, unsubscribe):
        page.goto(url)
        assert page.locator("html").get_attribute("lang") == "fr"
        shown = page.locator("body").inner_text()
        assert "Nouvelles formations" in shown
        assert [s for s in foreign if s in shown] == [], url
        assert "New trainings" not in shown and "Nieuwe opleidingen" not in shown

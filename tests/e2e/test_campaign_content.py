"""Campaign content in a real browser: the house layout on a phone, and duplicating a campaign.

The house layout is what the reader's mail client shows: at 360 px it must not scroll sideways
and axe-core must find nothing serious, in each language.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import expect

from prefsvc.access import staff
from prefsvc.campaigns import campaigns
from prefsvc.mail import layout
from prefsvc.mail.rendering import SAMPLE, render
from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import make_topic

SENDER = layout.Identity(
    name="Havenopleidingen Antwerpen vzw",
    address="Havenstraat 1, 2000 Antwerpen, België",
    privacy_url="https://haven.example/privacy",
)
MARKDOWN = """# Nieuwe opleidingen in de haven

Beste {{ contact.first_name }},

Dit voorjaar starten drie nieuwe opleidingen voor kraanmachinisten en heftruckchauffeurs,
met een bijzonder lang woord: Havenbedrijfsveiligheidscoördinatorenopleidingsprogramma.

| Opleiding | Duur | Plaats |
|---|---|---|
| Veilig werken met heftrucks | twee dagen | Antwerpen-Noord |
| VCA Basis | één dag | Zwijndrecht |

- [Bekijk het volledige aanbod op onze website](https://opleidingen.example.org/voorjaar/2026/alle-opleidingen-in-de-haven)

**[Schrijf je in](https://opleidingen.example.org/)**
"""


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_the_house_layout_fits_a_phone_and_passes_axe(new_page, axe, language):
    variant = layout.compile_variant(
        content_format="markdown",
        subject="Nieuws voor {{ contact.first_name }}",
        content=MARKDOWN,
        text=None,
        preheader="Drie nieuwe opleidingen dit voorjaar",
        language=language,
        topic_name="Nieuwe opleidingen",
        identity=SENDER,
    )
    mail = render(
        variant,
        contact=SAMPLE,
        unsubscribe_url="https://x.example/u/TOKEN",
        preferences_url="https://x.example/p/TOKEN",
    )
    page = new_page(viewport=PHONE)
    page.set_content(mail.html)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("innerWidth") == PHONE["width"]
    assert axe(page) == []
    assert page.locator("html").get_attribute("lang") == language
    assert page.title() == "Nieuws voor Sam"
    expect(page.get_by_text("Havenstraat 1, 2000 Antwerpen, België")).to_be_visible()
    assert not page.get_by_text("Drie nieuwe opleidingen dit voorjaar").is_visible()
    column = page.locator("table.column").bounding_box()
    assert column["width"] <= PHONE["width"]
    page.set_viewport_size(DESKTOP)
    assert page.locator("table.column").bounding_box()["width"] == 600


def test_marketing_duplicates_a_sent_campaign_from_its_page(
    live_server, new_page, axe, session, clock
):
    topic = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    sent = campaigns.create(
        session,
        topic_slug=topic.slug,
        variants={
            "nl": ("Voorjaarsnieuws", "# Beste {{ contact.first_name }}", None),
            "fr": ("Nouvelles du printemps", "# Bonjour {{ contact.first_name }}", None),
        },
        content_format="markdown",
        preheaders={"nl": "Drie nieuwe opleidingen", "fr": "Trois nouvelles formations"},
    )
    now = datetime(2026, 3, 10, 9, tzinfo=UTC)
    campaigns.start(session, sent, now=now, today=date(2026, 3, 10), years=5)
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()

    page = new_page(viewport=PHONE, locale="en-GB")
    page.goto(f"{live_server}/admin/login?next=/admin/campaigns/{sent.id}")
    page.get_by_label("Username").fill("lotte")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"/admin/campaigns/{sent.id}$"))

    # the sent campaign shows what went out, per language
    expect(page.get_by_role("heading", name="Content, per language")).to_be_visible()
    frame = page.frame_locator("iframe[title='Preview of the mail in Nederlands']")
    assert frame.locator("h1").inner_text() == "Beste Test"
    expect(page.get_by_text("Drie nieuwe opleidingen")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe(page) == []

    page.get_by_role("button", name="Duplicate").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))
    assert not page.url.endswith(f"/campaigns/{sent.id}")
    expect(page.get_by_text("Copied into a new draft")).to_be_visible()
    assert page.get_by_label("Name (for you").input_value() == "Voorjaarsnieuws (copy)"
    assert page.get_by_label("Subject (fr)").input_value() == "Nouvelles du printemps"
    assert page.get_by_label("Markdown, in our house layout").is_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe(page) == []

    page.get_by_role("link", name="Campaigns").first.click()
    expect(page.get_by_role("link", name="Voorjaarsnieuws (copy)")).to_be_visible()

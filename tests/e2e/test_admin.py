"""The marketing team's day in a real browser: sign in, compose in two languages, preview,
test-send, send, watch it go, and see a recipient's one-click unsubscribe in the figures.

Every page visited is checked with axe-core at 1280 px and at 768 px (a tablet), and must not
scroll sideways. With ``PREFSVC_SHOTS=DIR`` the pages are also saved as 1280 px screenshots.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from prefsvc.access import staff
from prefsvc.consent import suppression
from prefsvc.models import RightsKind, SuppressionReason
from prefsvc.privacy import register
from tests.e2e.conftest import DESKTOP, fits_and_passes_axe
from tests.factories import make_contact, make_topic

TABLET = {"width": 768, "height": 1024}
SHOTS = os.environ.get("PREFSVC_SHOTS")
HTML_NL = """<html><head><style>
  h1 { color: #0b3d91; font-family: Arial, sans-serif; }
  p { font-family: Arial, sans-serif; font-size: 16px; }
</style></head><body>
<h1>Nieuwe opleidingen in de haven</h1>
<p>Beste {{ contact.first_name }},</p>
<p>Dit voorjaar starten drie nieuwe opleidingen voor kraanmachinisten en heftruckchauffeurs.</p>
</body></html>"""
HTML_FR = """<html><head><style>
  h1 { color: #0b3d91; font-family: Arial, sans-serif; }
</style></head><body>
<h1>Nouvelles formations au port</h1>
<p>Bonjour {{ contact.first_name }},</p>
<p>Trois nouvelles formations commencent ce printemps.</p>
</body></html>"""
CSV = (
    "email;first_name;last_name;language;topics;basis;basis_date\n"
    "nieuw@example.org;Nele;Nieuw;nl;nieuwe-opleidingen;consent;2026-02-01\n"
    "lien@example.org;Lien;Peeters;nl;nieuwe-opleidingen;consent;2026-02-01\n"
    "bram@example.org;Bram;Janssens-De Smet;nl;promoties;customer;2026-02-15\n"
    "weg@example.org;Wim;;nl;promoties;consent;2026-02-01\n"
    "zonder-adres;Jan;;nl;;;\n"
    "taal@example.org;Tom;;de;;;\n"
)


@pytest.fixture
def team(session, settings, clock):
    """A topic with subscribers in nl and fr, an expiring window, an overdue request, staff."""
    courses = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    offers = make_topic(session, "promoties", "Promoties")
    people = [
        ("ana@example.org", "Ana", "Peeters", "nl"),
        ("bram@example.org", "Bram", "Janssens", "nl"),
        ("celine@example.org", "Céline", "Dubois", "fr"),
        ("damien@example.org", "Damien", "Lambert", "fr"),
        ("emma@example.org", "Emma", "Smith", "en"),
    ]
    for email, first, last, lang in people:
        make_contact(
            session,
            email,
            first_name=first,
            last_name=last,
            language=lang,
            topics=[courses, offers] if lang != "en" else [offers],
        )
    make_contact(
        session,
        "geert@example.org",
        first_name="Geert",
        last_name="Wouters",
        anchor=date(2021, 4, 2),
        topics=[courses],
    )
    suppression.add(session, settings.suppression_key, "weg@example.org", SuppressionReason.ERASURE)
    request = register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    request.due_on = date(2026, 3, 10) - timedelta(days=3)
    staff.create(session, "lotte", "een lang wachtwoord", "marketing", now=clock())
    session.commit()


def check(page, axe, name: str | None = None) -> None:
    """Run axe at 1280 px and 768 px (no sideways scrolling either); save a screenshot."""
    for viewport in (DESKTOP, TABLET):
        fits_and_passes_axe(page, axe, viewport)
    page.set_viewport_size(DESKTOP)
    if SHOTS and name:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"admin-{name}.png"), full_page=True)


def test_marketing_composes_sends_and_sees_an_unsubscribe_in_the_figures(
    live_server, new_page, axe, team, outbox, clock
):
    page = new_page(viewport=DESKTOP, locale="en-GB")

    page.goto(f"{live_server}/admin/")
    assert "/admin/login" in page.url
    check(page, axe)
    page.get_by_label("Username").fill("lotte")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server}/admin/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    check(page, axe, "dashboard")

    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Topic").select_option("nieuwe-opleidingen")
    page.get_by_label("HTML, as written").check()
    page.get_by_label("Subject (nl)").fill("Nieuw: opleidingen voor {{ contact.first_name }}")
    page.get_by_label("HTML (nl)").fill(HTML_NL)
    page.get_by_label("Subject (fr)").fill("Nouveau : nos formations")
    page.get_by_label("HTML (fr)").fill(HTML_FR)
    check(page, axe)
    page.get_by_role("button", name="Save draft and preview").click()

    page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))
    frame = page.frame_locator("iframe[title^='Preview of the mail in Nederlands']")
    assert "Beste" in frame.locator("body").inner_text()
    assert "Nieuwe opleidingen in de haven" in frame.locator("h1").inner_text()
    # CSS inlined, as the recipient gets it
    assert "color:#0b3d91" in frame.locator("h1").get_attribute("style").replace(" ", "")
    expect(page.get_by_text("Send now to 5 recipients")).to_be_visible()
    check(page, axe, "composer")

    page.get_by_label("Address").fill("lotte@example.org")
    page.get_by_label("Language", exact=True).select_option("fr")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test copy sent.")).to_be_visible()
    (test_copy,) = outbox()
    assert test_copy["Subject"] == "[TEST] Nouveau : nos formations"

    page.get_by_role("link", name="Send now to 5 recipients").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+/send$"))
    expect(page.get_by_text("This sends it now to 5 recipients")).to_be_visible()
    assert len(outbox()) == 1  # only the test copy: nothing goes before the confirmation
    check(page, axe, "confirm send")
    page.get_by_role("button", name="Yes, send it now to 5 recipients").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))
    expect(page.locator("#progress-bar")).to_be_visible()
    # the page polls while sending and reloads itself once the campaign is sent
    page.get_by_text("sent", exact=True).first.wait_for(timeout=30_000)
    expect(page.locator("[data-figure='sent']")).to_have_text("5")

    delivered = [m for m in outbox() if not m["Subject"].startswith("[TEST]")]
    assert len(delivered) == 5
    ana = next(m for m in delivered if m["To"] == "ana@example.org")
    unsubscribe_url = ana["List-Unsubscribe"].strip("<>")
    clock.advance(minutes=40)  # she reads it a while later
    answer = page.request.post(unsubscribe_url, form={"List-Unsubscribe": "One-Click"})
    assert answer.status == 200

    page.reload()
    expect(page.locator("[data-figure='unsubscribes']")).to_have_text("1")
    expect(page.locator("figure.chart svg")).to_have_count(2)
    check(page, axe, "campaign")

    page.get_by_role("link", name="Contacts").click()
    page.get_by_label("Search by address, name or organisation").fill("peeters")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=peeters"))
    check(page, axe)
    page.get_by_role("link", name="ana@example.org").click()
    expect(page.get_by_role("cell", name="one-click")).to_be_visible()
    check(page, axe, "contact")

    page.get_by_role("link", name="Import").click()
    check(page, axe)
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "nieuwe-cursisten.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Upload").click()
    assert page.get_by_role("combobox", name="email").input_value() == "email"  # guessed
    check(page, axe, "import-columns")
    page.get_by_role("button", name="Preview the import").click()
    # the preview runs as a job; its page refreshes itself until it is done
    page.get_by_role("heading", name="Rejected rows").wait_for(timeout=20_000)
    counts = page.locator("dl.figures").inner_text().split()
    assert counts[counts.index("contacts") + 1] == "2"  # New contacts
    assert counts[counts.index("Updated") + 1] == "1"
    assert counts[counts.index("Rejected") + 1] == "2"
    expect(page.get_by_role("cell", name="must be one of nl, fr, en")).to_be_visible()
    check(page, axe, "import-preview")
    page.get_by_role("button", name="Import these rows").click()
    page.get_by_role("heading", name=re.compile("Import done")).wait_for(timeout=20_000)


def test_campaign_page_follows_a_sending_campaign_until_it_is_sent(
    live_server, new_page, axe, team, session, clock, settings
):
    from prefsvc.campaigns import campaigns
    from prefsvc.models import Topic
    from prefsvc.queue import broker
    from tests.factories import make_campaign

    topic = session.query(Topic).filter_by(slug="nieuwe-opleidingen").one()
    campaign = make_campaign(session, topic)
    # fanned out but not yet queued: the page sees it sending until the batches go
    campaigns.start(session, campaign, now=clock(), today=clock().date(), years=5)
    session.commit()
    page = new_page(viewport=DESKTOP, locale="en-GB")
    page.goto(f"{live_server}/admin/login?next=/admin/campaigns/{campaign.id}")
    page.get_by_label("Username").fill("lotte")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"/admin/campaigns/{campaign.id}$"))
    expect(page.locator(".badge")).to_have_text("sending")
    expect(page.locator("[data-figure='done']")).to_have_text("0")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    check(page, axe)

    campaigns.requeue(session, campaign.id, batch_size=settings.batch_size, now=clock())
    broker.queue().jobs_held()

    page.locator(".badge", has_text="sent").wait_for(timeout=20_000)
    expect(page.locator("[data-figure='sent']")).to_have_text("5")
    assert page.locator("#progress-bar").get_attribute("value") == "5"


def test_privacy_pages_answer_a_suppression_check_and_show_the_request_queue(
    live_server, new_page, axe, team, session, clock
):
    staff.create(session, "sofie", "nog een lang wachtwoord", "privacy", now=clock())
    session.commit()
    page = new_page(viewport=DESKTOP, locale="nl-BE")
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Gebruikersnaam").fill("sofie")
    page.get_by_label("Wachtwoord").fill("nog een lang wachtwoord")
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url(f"{live_server}/admin/")
    assert page.get_by_role("link", name="Importeren").count() == 0  # not for privacy staff

    page.get_by_role("link", name="Blokkeerlijst").click()
    page.get_by_role("textbox", name="Adres").fill("Weg@Example.org")
    page.get_by_role("button", name="Nakijken").click()
    expect(page.get_by_role("status")).to_have_text("Ja: dit adres staat op de blokkeerlijst.")
    assert "weg@example.org" not in page.content().lower()
    check(page, axe)

    page.get_by_role("link", name="Verzoeken").click()
    expect(page.locator("tr.overdue")).to_have_count(1)
    expect(page.get_by_text("te laat")).to_be_visible()
    check(page, axe)

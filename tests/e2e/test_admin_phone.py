"""The admin UI on a 360 px phone: no page scrolls sideways, wide lists read as stacked rows.

``bench/admin_screenshots.py`` takes screenshots of every page; this checks the behaviour on a
representative set, with long addresses and a campaign sent over three days (the widest chart
labels).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from prefsvc.access import staff
from prefsvc.campaigns import campaigns
from prefsvc.consent import suppression
from prefsvc.models import Delivery, RightsKind, SuppressionReason
from prefsvc.privacy import register
from prefsvc.queue import broker
from prefsvc.webhooks import endpoints, events
from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import make_campaign, make_contact, make_topic

LONG = "a.very.long.address.that.does.not.fit.on.a.phone@subdomain.example-organisation.org"


@pytest.fixture
def office(session, settings, clock):
    """Long addresses, a campaign sent over three days and a draft, a webhook, a request."""
    courses = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    people = [make_contact(session, LONG, language="fr", topics=[courses])]
    for n in range(11):
        people.append(
            make_contact(session, f"persoon.{n}@example.org", language="nl", topics=[courses])
        )
    sent = make_campaign(
        session,
        courses,
        variants={
            "nl": ("Nieuwe opleidingen", "<p>Beste {{ contact.first_name }}</p>", None),
            "fr": ("Nouvelles formations", "<p>Bonjour {{ contact.first_name }}</p>", None),
        },
    )
    campaigns.launch(session, sent.id, now=clock(), today=clock().date(), years=5, batch_size=100)
    session.commit()
    broker.queue().jobs_held()
    broker.queue().join(timeout_ms=20_000)
    # spread the sends over three days: the chart's labels then carry dates and times
    ids = session.scalars(select(Delivery.id).where(Delivery.campaign_id == sent.id)).all()
    for n, delivery_id in enumerate(sorted(ids)):
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(sent_at=clock() + timedelta(hours=6 * n))
        )
    draft = make_campaign(session, courses, subject="Concept")
    endpoints.create(
        session, "https://crm.example.org/hooks/prefsvc/very/long/path", events.ALL, now=clock()
    )
    register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    suppression.add(session, settings.suppression_key, LONG, SuppressionReason.COMPLAINT)
    staff.create(session, "beheer", "een lang wachtwoord", "admin", now=clock())
    session.commit()
    return {"sent": sent.id, "draft": draft.id, "contact": people[0].public_id}


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Username").fill("beheer")
    page.get_by_label("Password").fill("een lang wachtwoord")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")


def scroll_width(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_no_admin_page_scrolls_sideways_on_a_phone(live_server, new_page, office):
    page = new_page(viewport=PHONE, locale="en-GB")
    sign_in(page, live_server)
    paths = [
        "/admin/",
        "/admin/campaigns/",
        f"/admin/campaigns/{office['draft']}",
        f"/admin/campaigns/{office['sent']}",
        "/admin/campaigns/new",
        f"/admin/campaigns/{office['draft']}/send",
        "/admin/contacts/",
        "/admin/contacts/?language=fr&status=subscribed&sort=name",
        f"/admin/contacts/{office['contact']}",
        "/admin/topics/",
        "/admin/topics/nieuwe-opleidingen",
        "/admin/suppression",
        "/admin/rights",
        "/admin/webhooks",
        "/admin/webhooks/1",
        "/admin/import",
    ]
    too_wide = {}
    for path in paths:
        response = page.goto(f"{live_server}{path}")
        assert response.status == 200, path
        if scroll_width(page) > PHONE["width"]:
            too_wide[path] = scroll_width(page)
    assert too_wide == {}


def test_wide_lists_become_stacked_rows_with_their_column_names(live_server, new_page, office):
    page = new_page(viewport=PHONE, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/campaigns/")
    row = page.locator("tbody tr").first
    assert row.evaluate("tr => getComputedStyle(tr).display") == "block"
    status = row.locator("td[data-label='Status']")
    label = status.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Status"'
    # the same list at desktop width is a table again
    page.set_viewport_size(DESKTOP)
    assert row.evaluate("tr => getComputedStyle(tr).display") == "table-row"
    expect(page.locator("thead")).to_be_visible()


@pytest.mark.parametrize(("viewport", "shown"), [(PHONE, 3), (DESKTOP, 5)], ids=["360", "1280"])
def test_a_charts_time_labels_never_overlap(live_server, new_page, office, viewport, shown):
    page = new_page(viewport=viewport, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/campaigns/{office['sent']}")
    labels = page.locator("#chart-sent-span span")
    boxes = [box for box in (s.bounding_box() for s in labels.all()) if box is not None]
    assert len(boxes) == shown
    for left, right in zip(boxes, boxes[1:], strict=False):
        assert left["x"] + left["width"] <= right["x"], (left, right)
    # dates and times: a send over days
    assert re.fullmatch(r"\d\d/\d\d \d\d:\d\d", labels.first.inner_text())
    # the axes keep their names
    assert "Horizontal: time" in page.locator(".chart .axis-title").first.inner_text()

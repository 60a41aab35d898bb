"""The admin dashboard over HTTP: the figures both teams watch."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from prefsvc.models import RightsKind
from prefsvc.privacy import register
from tests.factories import make_contact


def test_dashboard_counts_contacts_expiring_windows_and_overdue_requests(
    as_role, session, topic, clock, settings
):
    today = date(2026, 3, 10)
    make_contact(session, "a@example.org", topics=[topic], anchor=today)
    make_contact(session, "b@example.org", language="fr", topics=[topic], anchor=today)
    soon = make_contact(
        session, "soon@example.org", anchor=today.replace(year=2021) + timedelta(20)
    )
    request = register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    request.due_on = today - timedelta(days=2)
    session.commit()
    page = as_role("marketing").get("/admin/").get_data(as_text=True)
    assert "soon@example.org" in page
    assert soon.email in page
    assert re.search(r"Overdue rights requests</h2>\s*<p class=\"big\">1</p>", page)
    assert re.search(r"Windows ending in the next 60 days</h2>\s*<p class=\"big\">1</p>", page)
    assert re.search(r"Contacts we may mail</h2>\s*<p class=\"big\">3</p>", page)


def test_dashboard_warns_when_the_scheduler_has_not_run_for_five_minutes(
    as_role, session, settings, clock
):
    """Issue 18: scheduled campaigns never went out in the demo, and nothing said so."""
    from prefsvc.queue import scheduler

    client = as_role("marketing")
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-warning="scheduler"' in page and "The scheduler has never run" in page
    scheduler.tick(session, settings, now=clock())
    clock.advance(minutes=4)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-warning="scheduler"' not in page
    assert re.search(r'data-figure="scheduler-last-run">2026-03-10 10:30<', page)  # Brussels
    clock.advance(minutes=2)
    page = client.get("/admin/?lang=nl").get_data(as_text=True)
    assert "De planner is niet meer gelopen sinds 2026-03-10 10:30" in page


def test_dashboard_shows_jobs_waiting_for_the_broker(as_role, session, clock):
    from prefsvc.queue import outbox

    outbox.add(session, "send_batch", [[1, 2]], now=clock())
    session.commit()
    client = as_role("marketing")
    assert 'data-warning="outbox"' not in client.get("/admin/").get_data(as_text=True)
    clock.advance(minutes=2)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-warning="outbox"' in page
    assert '<dd data-figure="jobs-waiting">1</dd>' in page


@pytest.mark.parametrize(("language", "separator"), [("nl", "."), ("fr", "\u202f"), ("en", ",")])
def test_dashboard_figures_are_written_as_the_page_language_writes_numbers(
    as_role, session, clock, settings, language, separator
):
    """A marketer reads 1.240 contacts in Dutch, not 1240."""
    from prefsvc import demo
    from prefsvc.people import topics
    from prefsvc.reports import dashboard

    topics.create(session, "promoties", names={"nl": "Promoties"})
    demo.add_crowd(session, now=clock(), today=clock().date(), count=1240)
    session.commit()
    client = as_role("marketing")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    page = client.get("/admin/").get_data(as_text=True)
    big = re.search(r'<h2 id="h-contacts">[^<]*</h2>\s*<p class="big">([^<]*)</p>', page)[1]
    mailable = dashboard.figures(
        session, today=clock().date(), years=settings.marketing_window_years
    )
    assert mailable.contacts > 1000  # a few of the crowd left or bounced
    assert big == f"{mailable.contacts:,}".replace(",", separator)

"""Dashboard figures: counts by language and topic, windows ending soon, overdue requests."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from prefsvc.campaigns import audience
from prefsvc.models import ContactStatus, RightsKind
from prefsvc.privacy import register
from prefsvc.reports import dashboard
from tests.factories import make_campaign, make_contact, make_topic

TODAY = date(2026, 3, 10)


@pytest.mark.all_databases
def test_figures_count_only_active_contacts_by_language_and_topic(session):
    courses = make_topic(session, "courses", "Courses")
    make_topic(session, "offers", "Offers")
    make_contact(session, language="nl", topics=[courses])
    make_contact(session, language="fr", topics=[courses])
    make_contact(session, language="fr", status=ContactStatus.UNSUBSCRIBED, topics=[courses])
    figures = dashboard.figures(session, today=TODAY, years=5)
    assert figures.contacts == 2
    assert figures.by_language == {"nl": 1, "fr": 1}
    assert figures.by_topic == [("courses", "Courses", 2), ("offers", "Offers", 0)]


@pytest.mark.all_databases
def test_windows_ending_within_sixty_days_are_counted_not_those_already_ended(session):
    make_contact(session, "ends-today@example.org", anchor=date(2021, 3, 10))
    make_contact(session, "ends-tomorrow@example.org", anchor=date(2021, 3, 11))
    make_contact(session, "in-60-days@example.org", anchor=date(2021, 3, 10) + timedelta(60))
    make_contact(session, "in-61-days@example.org", anchor=date(2021, 3, 10) + timedelta(61))
    figures = dashboard.figures(session, today=TODAY, years=5)
    assert [e.email for e in figures.expiring] == [
        "ends-tomorrow@example.org",
        "in-60-days@example.org",
    ]
    assert figures.expiring_count == 2
    assert figures.expiring[0].expires_on == date(2026, 3, 11)


def test_overdue_requests_and_recent_campaigns_are_listed(session, settings, clock):
    late = register.open_request(session, RightsKind.ACCESS, now=clock(), settings=settings)
    late.due_on = TODAY - timedelta(days=1)
    register.open_request(session, RightsKind.ERASURE, now=clock(), settings=settings)
    topic = make_topic(session)
    older = make_campaign(session, topic)
    newer = make_campaign(session, topic)
    figures = dashboard.figures(session, today=TODAY, years=5)
    assert [r.id for r in figures.overdue] == [late.id]
    assert [c.id for c in figures.recent] == [newer.id, older.id]


@pytest.mark.all_databases
def test_contacts_we_may_mail_are_the_audience_a_campaign_would_have_today(session):
    topic = make_topic(session, "courses", "Courses")
    make_contact(session, "fresh@example.org", anchor=date(2024, 1, 1), topics=[topic])
    make_contact(session, "fr@example.org", language="fr", anchor=date(2025, 1, 1), topics=[topic])
    make_contact(session, "ended@example.org", anchor=date(2021, 3, 10), topics=[topic])
    paused = make_contact(session, "paused@example.org", topics=[topic])
    paused.paused_until = TODAY + timedelta(days=30)
    make_contact(session, "gone@example.org", status=ContactStatus.UNSUBSCRIBED, topics=[topic])
    campaign = make_campaign(session, topic)
    session.flush()

    figures = dashboard.figures(session, today=TODAY, years=5)
    reached = audience.count(session, campaign, on=TODAY, years=5)

    assert reached.audience == 2
    assert reached.excluded["window_expired"] == 1
    assert figures.contacts == reached.audience
    assert figures.by_language == {"nl": 1, "fr": 1}
    assert figures.by_topic == [("courses", "Courses", reached.audience)]

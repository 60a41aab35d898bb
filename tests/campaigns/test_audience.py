"""Who gets a campaign, and why the others do not (CONTRACT §7)."""

from __future__ import annotations

from datetime import date

import pytest

from prefsvc.campaigns import audience
from prefsvc.models import ContactStatus, Subscription, SubscriptionStatus
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
YEARS = 5


def test_audience_counts_subscribers_and_names_each_exclusion(session):
    topic = make_topic(session)
    other = make_topic(session)
    make_contact(session, "fresh@example.org", anchor=date(2024, 1, 1), topics=[topic])
    make_contact(session, "old@example.org", anchor=date(2019, 1, 1), topics=[topic])
    paused = make_contact(session, "paused@example.org", topics=[topic])
    paused.paused_until = date(2026, 6, 1)
    left = make_contact(session, "left@example.org", topics=[topic])
    session.query(Subscription).filter_by(contact_id=left.id).update(
        {"status": SubscriptionStatus.UNSUBSCRIBED}
    )
    objector = make_contact(session, "objector@example.org", topics=[topic])
    objector.status = ContactStatus.UNSUBSCRIBED
    make_contact(session, "elsewhere@example.org", topics=[other])
    session.flush()

    result = audience.count(
        session, make_campaign(session, topic), on=date(2026, 3, 10), years=YEARS
    )

    assert result.audience == 1
    assert result.excluded == {
        "window_expired": 1,
        "paused": 1,
        "unsubscribed": 1,
        "suppressed": 1,
    }


@pytest.mark.parametrize(
    ("on", "included"),
    [(date(2026, 6, 14), True), (date(2026, 6, 15), False), (date(2026, 6, 16), False)],
    ids=["day-before-expiry", "expiry-day", "day-after"],
)
def test_window_boundary_in_the_audience(session, on, included):
    topic = make_topic(session)
    make_contact(session, anchor=date(2021, 6, 15), topics=[topic])
    result = audience.count(session, make_campaign(session, topic), on=on, years=YEARS)
    assert result.audience == (1 if included else 0)


@pytest.mark.parametrize(
    ("on", "included"), [(date(2029, 2, 27), True), (date(2029, 2, 28), False)]
)
def test_leap_day_anchor_expires_on_28_february(session, on, included):
    topic = make_topic(session)
    make_contact(session, anchor=date(2024, 2, 29), topics=[topic])
    result = audience.count(session, make_campaign(session, topic), on=on, years=YEARS)
    assert result.audience == (1 if included else 0)


def test_pause_ends_on_its_date(session):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    contact.paused_until = date(2026, 4, 1)
    session.flush()
    campaign = make_campaign(session, topic)
    assert audience.count(session, campaign, on=date(2026, 3, 31), years=YEARS).audience == 0
    assert audience.count(session, campaign, on=date(2026, 4, 1), years=YEARS).audience == 1

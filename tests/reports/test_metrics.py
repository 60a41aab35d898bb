"""Prometheus figures read from the database at scrape time, whatever process serves them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select

from prefsvc.campaigns import campaigns
from prefsvc.consent import changes as consent
from prefsvc.models import Delivery, DeliveryStatus
from prefsvc.reports.metrics import DatabaseCollector
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def exposition(session, queue_depth: int | None = None, now: datetime | None = None) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(session, queue_depth, now=now))
    return generate_latest(registry).decode()


@pytest.fixture
def sending(session):
    """A campaign being sent to four people: one sent a moment ago, one failed, two queued."""
    topic = make_topic(session)
    people = [make_contact(session, f"m{i}@example.org", topics=[topic]) for i in range(4)]
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    rows = {d.contact_id: d for d in session.scalars(select(Delivery))}
    sent, failed = rows[people[0].id], rows[people[1].id]
    sent.status, sent.sent_at = DeliveryStatus.SENT, NOW - timedelta(seconds=10)
    failed.status, failed.reason = DeliveryStatus.FAILED, "rejected"
    session.commit()
    return campaign


def test_the_exposition_holds_the_delivery_states_and_the_campaigns(session, sending):
    text = exposition(session, queue_depth=3, now=NOW)

    assert 'prefsvc_deliveries_open{state="queued"} 2.0' in text
    assert 'prefsvc_messages_total{reason="",state="sent"} 1.0' in text
    assert 'prefsvc_messages_total{reason="rejected",state="failed"} 1.0' in text
    assert 'prefsvc_campaigns{status="sending"} 1.0' in text
    assert "prefsvc_queue_depth 3.0" in text
    assert f"prefsvc_send_rate {1 / 60!r}" in text
    assert "@example.org" not in text


def test_the_send_rate_counts_the_last_minute_only(session, sending):
    assert "prefsvc_send_rate 0.0" in exposition(session, now=NOW + timedelta(seconds=61))


def test_figures_the_scrape_cannot_know_are_left_out_rather_than_zero(session, sending):
    text = exposition(session, queue_depth=None, now=None)
    assert "prefsvc_queue_depth" not in text
    assert "prefsvc_send_rate" not in text
    assert 'prefsvc_deliveries_open{state="queued"} 2.0' in text


def test_unsubscribes_and_objections_are_counted_by_channel(session, settings):
    topic = make_topic(session)
    ana, bo, cy = (make_contact(session, topics=[topic]) for _ in range(3))
    for person in (ana, bo):
        consent.unsubscribe(session, person, topic, channel="one-click", now=NOW, today=TODAY)
    consent.object_to_all(
        session, cy, channel="preference-centre", now=NOW, suppression_key=settings.suppression_key
    )
    session.commit()

    text = exposition(session)
    assert 'prefsvc_unsubscribes_total{channel="one-click",kind="unsubscribed"} 2.0' in text
    assert 'prefsvc_unsubscribes_total{channel="preference-centre",kind="objection"} 1.0' in text

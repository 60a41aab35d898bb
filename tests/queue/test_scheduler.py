"""Periodic jobs: stuck deliveries come back to the queue; retention runs once a day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, claims
from prefsvc.models import ContactStatus, Delivery, DeliveryStatus
from prefsvc.queue import broker, scheduler
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


def test_deliveries_of_a_dead_worker_are_requeued_after_the_timeout(session, settings, clock):
    topic = make_topic(session)
    for i in range(3):
        make_contact(session, f"s{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    claims.claim(session, ids, now=clock(), stuck_after=timedelta(minutes=15))  # then it died
    queued: list[list[int]] = []

    early = scheduler.recover(
        session, settings, now=clock() + timedelta(minutes=5), enqueue=queued.append
    )
    late = scheduler.recover(
        session, settings, now=clock() + timedelta(minutes=16), enqueue=queued.append
    )

    assert (early, late) == (0, 3)
    assert queued == [sorted(ids)]
    statuses = set(session.scalars(select(Delivery.status)))
    assert statuses == {DeliveryStatus.QUEUED}


def test_retention_runs_once_per_day(session, settings, clock):
    make_contact(session, "expired@example.org", anchor=date(2020, 1, 1))
    make_contact(session, "current@example.org", anchor=date(2025, 1, 1))
    session.commit()

    notify = broker.queue().send_notice
    first = scheduler.tick(session, settings, now=clock(), enqueue=lambda ids: None, notify=notify)
    again = scheduler.tick(
        session, settings, now=clock() + timedelta(hours=3), enqueue=lambda ids: None, notify=notify
    )
    tomorrow = scheduler.tick(
        session, settings, now=clock() + timedelta(days=1), enqueue=lambda ids: None, notify=notify
    )

    assert (first.retention_ran, first.anonymised) == (True, 1)
    assert again.retention_ran is False
    assert (tomorrow.retention_ran, tomorrow.anonymised) == (True, 0)
    from prefsvc.models import Contact

    statuses = {c.email: c.status for c in session.scalars(select(Contact))}
    assert statuses == {None: ContactStatus.ANONYMISED, "current@example.org": ContactStatus.ACTIVE}

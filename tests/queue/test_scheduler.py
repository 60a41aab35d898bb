"""Periodic jobs: stuck deliveries come back to the queue; retention runs once a day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select

from prefsvc.campaigns import campaigns, claims
from prefsvc.models import ContactStatus, Delivery, DeliveryStatus, OutboxJob
from prefsvc.queue import outbox, scheduler
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


def test_deliveries_of_a_dead_worker_are_requeued_once_its_lease_lapses(session, settings, clock):
    topic = make_topic(session)
    for i in range(3):
        make_contact(session, f"s{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    claims.claim(session, ids, now=clock(), lease=timedelta(seconds=30), owner="w1")  # it died

    early = scheduler.recover(session, settings, now=clock() + timedelta(seconds=20))
    late = scheduler.recover(session, settings, now=clock() + timedelta(seconds=31))

    assert (early, late) == (0, 3)
    assert outbox.held(session, "send_batch") == [[sorted(ids)]]
    statuses = set(session.scalars(select(Delivery.status)))
    assert statuses == {DeliveryStatus.QUEUED}


def test_queued_deliveries_whose_jobs_were_lost_are_requeued_after_the_grace(
    session, settings, clock
):
    """Issue 19: after a broker lost its jobs (or the demo was killed), rows stayed queued for
    good. The scheduler queues them again once nothing has happened for REQUEUE_AFTER_SECONDS."""
    topic = make_topic(session)
    for i in range(3):
        make_contact(session, f"q{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.launch(session, campaign.id, now=clock(), today=clock().date(), years=5, batch_size=2)
    session.execute(delete(OutboxJob))  # the relay queued them; then the broker lost them
    session.commit()
    grace = settings.requeue_after_seconds

    soon = scheduler.tick(session, settings, now=clock() + timedelta(seconds=grace - 10))
    assert soon.requeued == 0
    late = scheduler.tick(session, settings, now=clock() + timedelta(seconds=grace + 10))
    assert late.requeued == 3
    assert [len(args[0]) for args in outbox.held(session, "send_batch")] == [3]
    # the next tick does not pile more jobs on while those are on their way
    again = scheduler.tick(session, settings, now=clock() + timedelta(seconds=grace + 70))
    assert again.requeued == 0


def test_each_tick_records_that_the_scheduler_ran(session, settings, clock):
    assert scheduler.last_run(session) is None
    scheduler.tick(session, settings, now=clock())
    assert scheduler.last_run(session) == clock()
    assert scheduler.late(clock(), now=clock() + timedelta(minutes=4)) is False
    assert scheduler.late(clock(), now=clock() + timedelta(minutes=6)) is True


def test_retention_runs_once_per_day(session, settings, clock):
    make_contact(session, "expired@example.org", anchor=date(2020, 1, 1))
    make_contact(session, "current@example.org", anchor=date(2025, 1, 1))
    session.commit()

    first = scheduler.tick(session, settings, now=clock())
    again = scheduler.tick(session, settings, now=clock() + timedelta(hours=3))
    tomorrow = scheduler.tick(session, settings, now=clock() + timedelta(days=1))

    assert (first.retention_ran, first.anonymised) == (True, 1)
    assert again.retention_ran is False
    assert (tomorrow.retention_ran, tomorrow.anonymised) == (True, 0)
    from prefsvc.models import Contact

    statuses = {c.email: c.status for c in session.scalars(select(Contact))}
    assert statuses == {None: ContactStatus.ANONYMISED, "current@example.org": ContactStatus.ACTIVE}


def test_without_an_imap_url_the_tick_polls_no_mailbox(session, settings, clock):
    report = scheduler.tick(session, settings.with_(inbound_imap_url=None), now=clock())

    assert not report.imap_polled
    assert not scheduler.imap_due(
        session, settings.with_(inbound_imap_url=None), now=clock() + timedelta(days=1)
    )

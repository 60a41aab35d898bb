"""Claims: of two workers racing for a batch only one wins; a dead worker's rows are taken over."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, claims
from prefsvc.extensions import db
from prefsvc.models import Delivery
from prefsvc.queue import heartbeats
from tests.campaigns.test_delivery import _audience


@pytest.mark.all_databases
def test_two_workers_racing_for_a_batch_never_both_win(app, session, clock):
    _, _, campaign = _audience(session, 40)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)))
    won: list[list[int]] = []
    barrier = threading.Barrier(4)

    def race():
        with app.app_context():
            barrier.wait()
            won.append(claims.claim(db.session, ids, now=clock(), lease=timedelta(seconds=30)))
            db.session.remove()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for w in won for i in w]
    assert sorted(claimed) == sorted(ids)  # every delivery claimed, none twice


@pytest.mark.all_databases
def test_rows_of_a_killed_worker_are_taken_over_once_its_lease_lapses(app, session, clock):
    """Issue 19: a killed worker's rows waited 15 minutes; now 30 s after its last heartbeat."""
    _, _, campaign = _audience(session, 2)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    lease = timedelta(seconds=30)
    assert claims.claim(session, ids, now=clock(), lease=lease, owner="a") == sorted(ids)
    # worker "a" is killed: it beats no more, and its job comes back to worker "b"
    soon = clock() + timedelta(seconds=20)
    assert claims.claim(session, ids, now=soon, lease=lease, owner="b") == []
    later = clock() + timedelta(seconds=31)
    assert claims.claim(session, ids, now=later, lease=lease, owner="b") == sorted(ids)
    owners = set(session.scalars(select(Delivery.owner)))
    assert owners == {"b"}


def test_a_slow_worker_that_keeps_beating_keeps_its_rows(app, session, clock):
    _, _, campaign = _audience(session, 2)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    lease = timedelta(seconds=30)
    claims.claim(session, ids, now=clock(), lease=lease, owner="slow")
    for minute in range(1, 20):  # twenty minutes on one batch, beating all the while
        heartbeats.beat(session, "slow", heartbeats.WORKER, now=clock() + timedelta(minutes=minute))
        session.commit()
        later = clock() + timedelta(minutes=minute, seconds=5)
        assert claims.claim(session, ids, now=later, lease=lease, owner="other") == []


def test_a_row_claimed_outside_a_worker_counts_from_its_claim(app, session, clock):
    _, _, campaign = _audience(session, 1)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    lease = timedelta(seconds=30)
    claims.claim(session, ids, now=clock(), lease=lease)
    assert claims.claim(session, ids, now=clock() + timedelta(seconds=10), lease=lease) == []
    assert claims.claim(session, ids, now=clock() + timedelta(seconds=31), lease=lease) == ids

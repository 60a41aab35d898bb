"""Claims: of two workers racing for a batch only one wins; a dead worker's rows are taken over."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, claims
from prefsvc.extensions import db
from prefsvc.models import Delivery
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
            won.append(
                claims.claim(db.session, ids, now=clock(), stuck_after=timedelta(minutes=15))
            )
            db.session.remove()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for w in won for i in w]
    assert sorted(claimed) == sorted(ids)  # every delivery claimed, none twice


def test_delivery_stuck_in_sending_is_taken_over_after_the_timeout(app, session, clock):
    _, _, campaign = _audience(session, 2)
    campaigns.start(session, campaign, now=clock(), today=date(2026, 3, 10), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    first = claims.claim(session, ids, now=clock(), stuck_after=timedelta(minutes=15))
    assert first == sorted(ids)
    # the worker that claimed them was killed; its job comes back
    soon = clock() + timedelta(minutes=5)
    assert claims.claim(session, ids, now=soon, stuck_after=timedelta(minutes=15)) == []
    later = clock() + timedelta(minutes=16)
    assert claims.claim(session, ids, now=later, stuck_after=timedelta(minutes=15)) == sorted(ids)

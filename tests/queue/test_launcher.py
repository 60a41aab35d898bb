"""Launch and requeue from an app context: the app's session, clock, settings and task queue."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from prefsvc.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from prefsvc.queue import broker, launcher
from prefsvc.settings import SETTINGS_KEY
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


@pytest.fixture
def campaign(app, session, settings):
    """A campaign to five subscribers (and one who left), with batches of two."""
    app.extensions[SETTINGS_KEY] = settings.with_(batch_size=2)
    topic = make_topic(session)
    for i in range(5):
        make_contact(session, f"l{i}@example.org", topics=[topic])
    make_contact(session, "left@example.org", status="unsubscribed", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    return campaign


@pytest.fixture
def queued(monkeypatch, session) -> list[tuple[list[int], int]]:
    """Record each batch handed to the task queue, with how many of its rows a worker sees."""
    batches: list[tuple[list[int], int]] = []

    def send_batch(ids: list[int]) -> None:
        with session.get_bind().connect() as other:  # another transaction, as a worker's
            visible = other.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.id.in_(ids))
            )
        batches.append((ids, visible))

    monkeypatch.setattr(broker.queue(), "send_batch", send_batch)
    return batches


def test_launch_commits_before_it_queues_and_returns_the_audience_size(
    session, clock, campaign, queued
):
    size = launcher.launch(campaign.id)

    assert size == 5
    assert [(len(ids), visible) for ids, visible in queued] == [(2, 2), (2, 2), (1, 1)]
    session.expire_all()
    launched = session.get(Campaign, campaign.id)
    assert launched.status is CampaignStatus.SENDING
    assert launched.queued_at == clock()  # the app's clock, not the machine's


def test_requeue_queues_what_is_still_queued_in_the_settings_batch_size(session, campaign, queued):
    launcher.launch(campaign.id)
    first = session.scalars(select(Delivery).where(Delivery.status == "queued")).first()
    first.status = DeliveryStatus.SENT
    session.commit()
    queued.clear()

    assert launcher.requeue(campaign.id) == 4
    assert [len(ids) for ids, _ in queued] == [2, 2]
    assert first.id not in [i for ids, _ in queued for i in ids]

"""Launch and requeue from an app context: the app's session, clock, settings and job outbox."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from prefsvc.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, OutboxJob
from prefsvc.queue import broker, launcher, outbox
from prefsvc.settings import SETTINGS_KEY
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases


@pytest.fixture
def campaign(app, session, settings, monkeypatch):
    """A campaign to five subscribers (and one who left), with batches of two; no relay runs."""
    app.extensions[SETTINGS_KEY] = settings.with_(batch_size=2)
    monkeypatch.setattr(broker.queue(), "jobs_held", lambda: None)
    topic = make_topic(session)
    for i in range(5):
        make_contact(session, f"l{i}@example.org", topics=[topic])
    make_contact(session, "left@example.org", status="unsubscribed", topics=[topic])
    campaign = make_campaign(session, topic)
    session.commit()
    return campaign


@pytest.fixture
def queued(session):
    """Return a function listing the batch jobs held in the outbox, as another process sees them."""

    def read() -> list[list[int]]:
        session.commit()
        return [args[0] for args in outbox.held(session, "send_batch")]

    return read


def test_launch_commits_the_rows_with_their_jobs_and_returns_the_audience_size(
    session, clock, campaign, queued
):
    size = launcher.launch(campaign.id)

    assert size == 5
    assert [len(ids) for ids in queued()] == [2, 2, 1]
    session.expire_all()
    launched = session.get(Campaign, campaign.id)
    assert launched.status is CampaignStatus.SENDING
    assert launched.queued_at == clock()  # the app's clock, not the machine's


def test_requeue_queues_what_is_still_queued_in_the_settings_batch_size(session, campaign, queued):
    launcher.launch(campaign.id)
    session.execute(delete(OutboxJob))  # relayed
    first = session.scalars(select(Delivery).where(Delivery.status == "queued")).first()
    first.status = DeliveryStatus.SENT
    session.commit()

    assert launcher.requeue(campaign.id) == 4
    assert [len(ids) for ids in queued()] == [2, 2]
    assert first.id not in [i for ids in queued() for i in ids]

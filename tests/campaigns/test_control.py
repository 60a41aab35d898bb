"""Campaign control: schedule, pause, resume, cancel."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import campaigns, control, delivery
from prefsvc.errors import CampaignStateError, InvalidInput
from prefsvc.mail import kit
from prefsvc.models import CampaignStatus, Delivery, DeliveryStatus
from prefsvc.queue import broker, scheduler
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
TODAY = date(2026, 3, 10)


def _campaign(session, n=5):
    topic = make_topic(session)
    people = [make_contact(session, f"c{i}@example.org", topics=[topic]) for i in range(n)]
    campaign = make_campaign(session, topic)
    session.commit()
    return campaign, people


def test_paused_campaign_sends_nothing_until_resumed(
    session, settings, clock, outbox, run_campaign
):
    campaign, people = _campaign(session)
    campaigns.start(session, campaign, now=clock(), today=TODAY, years=5)
    control.pause(session, campaign)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))

    result = delivery.deliver(
        session, ids, settings=settings, now=clock, transport=kit.transport(settings)
    )

    assert result.sent == 0 and outbox() == []
    assert set(session.scalars(select(Delivery.status))) == {DeliveryStatus.QUEUED}
    control.resume(session, campaign)
    session.commit()
    campaigns.requeue(session, campaign.id, batch_size=settings.batch_size, now=clock())
    broker.queue().jobs_held()
    finished = run_campaign(campaign.id, launch=False)
    assert finished.status is CampaignStatus.SENT
    assert sorted(m["To"] for m in outbox()) == sorted(p.email for p in people)


def test_cancelled_campaign_drops_what_is_still_queued(session, clock):
    campaign, _ = _campaign(session)
    campaigns.start(session, campaign, now=clock(), today=TODAY, years=5)
    dropped = control.cancel(session, campaign, now=clock())
    session.commit()
    assert dropped == 5
    report = campaigns.stats(session, campaign, today=TODAY, years=5)
    assert (report["status"], report["sent"], report["excluded"]) == (
        "cancelled",
        0,
        {"cancelled": 5},
    )
    with pytest.raises(CampaignStateError):
        control.cancel(session, campaign, now=clock())


def test_scheduled_campaign_is_launched_by_the_scheduler_when_due(session, settings, clock):
    campaign, _ = _campaign(session, 2)
    control.schedule(session, campaign, at=clock() + timedelta(hours=2), now=clock())
    session.commit()
    launched: list[int] = []

    early = scheduler.tick(
        session,
        settings,
        now=clock() + timedelta(hours=1),
        launch=launched.append,
    )
    late = scheduler.tick(
        session,
        settings,
        now=clock() + timedelta(hours=2, minutes=1),
        launch=launched.append,
    )

    assert early.launched == [] and late.launched == [campaign.id] == launched
    with pytest.raises(InvalidInput):
        control.schedule(session, campaign, at=clock() - timedelta(hours=1), now=clock())


def test_cli_pause_of_a_draft_is_a_one_line_error(runner, session):
    campaign, _ = _campaign(session, 1)
    result = runner.invoke(args=["campaigns", "pause", str(campaign.id)])
    assert result.exit_code != 0
    assert result.stderr.strip() == f"Error: campaign {campaign.id} is draft, not sending"

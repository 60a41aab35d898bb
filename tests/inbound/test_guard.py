"""The complaint guard rail: past 0.1 % the team is warned, at 0.3 % of 1,000 sent it pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import insert, select

from prefsvc.campaigns import control
from prefsvc.inbound import guard, intake, verp
from prefsvc.models import Campaign, CampaignStatus, Contact, Delivery, DeliveryStatus
from prefsvc.reports.metrics import DatabaseCollector
from tests.factories import make_campaign, make_topic
from tests.inbound.samples import BOUNCE_DOMAIN, retoken
from tests.web.admin.conftest import PASSWORD, sign_in

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("complained", "delivered", "level"),
    [
        (0, 0, "ok"),
        (1, 1000, "ok"),  # exactly 0.1 %: not past it
        (2, 1000, "warn"),
        (3, 1000, "pause"),
        (2, 500, "warn"),  # 0.4 %, but too few sent to judge the campaign by
        (30, 9000, "pause"),
    ],
)
def test_the_complaint_rate_warns_past_a_tenth_and_pauses_at_three_tenths_of_a_thousand(
    complained, delivered, level
):
    assert guard.complaint_level(complained, delivered) == level


@pytest.fixture
def settings(settings):
    return settings.with_(bounce_domain=BOUNCE_DOMAIN)


def _sending_to_a_thousand(session) -> tuple[Campaign, list[int]]:
    topic = make_topic(session, "haven")
    campaign = make_campaign(session, topic)
    campaign.status = CampaignStatus.SENDING
    session.execute(
        insert(Contact),
        [
            {
                "email": f"reader{n}@example.net",
                "first_name": "Ana",
                "last_name": "Peeters",
                "window_anchor": date(2026, 1, 1),
                "basis_date": date(2026, 1, 1),
            }
            for n in range(1001)
        ],
    )
    ids = session.scalars(select(Contact.id).order_by(Contact.id)).all()
    session.execute(
        insert(Delivery),
        [
            {
                "campaign_id": campaign.id,
                "contact_id": contact_id,
                "status": DeliveryStatus.QUEUED if n == 1000 else DeliveryStatus.SENT,
                "sent_at": None if n == 1000 else NOW,
            }
            for n, contact_id in enumerate(ids)
        ],
    )
    session.commit()
    deliveries = session.scalars(
        select(Delivery.id).where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)
    ).all()
    return campaign, list(deliveries)


def _complaint(session, settings, delivery_id: int) -> str:
    arf = retoken("yahoo-arf-abuse.eml", verp.codec(settings.secret_keys), {101: delivery_id})
    received = intake.receive(
        session,
        arf,
        recipient=f"bounces@{BOUNCE_DOMAIN}",
        now=NOW,
        today=TODAY,
        intake=intake.Intake.from_settings(settings, "example.org"),
    )
    session.commit()
    return received.outcome


def _metrics(session) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(session, None))
    return generate_latest(registry).decode()


@pytest.mark.all_databases
def test_complaints_warn_the_team_then_pause_the_campaign_with_its_reason(
    app, session, settings, runner, client, clock
):
    from prefsvc.access import staff
    from prefsvc.models import StaffRole

    staff.create(session, "marketing", PASSWORD, StaffRole.MARKETING, now=clock())
    campaign, deliveries = _sending_to_a_thousand(session)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert sign_in(client, "marketing").status_code == 302
    page = f"/admin/campaigns/{campaign.id}"

    assert _complaint(session, settings, deliveries[0]) == "complained"
    assert "reported as spam" not in client.get(page).get_data(as_text=True)

    assert _complaint(session, settings, deliveries[1]) == "complained"
    session.refresh(campaign)
    assert campaign.status is CampaignStatus.SENDING
    warned = client.get(page).get_data(as_text=True)
    assert "Complaint rate 0.20 %: more than 0.1 % of the messages sent" in warned
    metrics = _metrics(session)
    assert f'prefsvc_campaign_complaint_rate{{campaign="{campaign.id}"}} 0.002' in metrics
    assert "prefsvc_campaigns_complaint_warning 1.0" in metrics

    assert _complaint(session, settings, deliveries[2]) == "complained"
    session.refresh(campaign)
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, "complaint_rate")
    paused = client.get(page).get_data(as_text=True)
    assert "This campaign paused itself: 0.30 % of the messages sent" in paused
    shown = runner.invoke(args=["campaigns", "show", str(campaign.id)])
    assert "complained   3 (0.30% of sent)" in shown.stdout
    assert "paused by    complaint_rate" in shown.stdout
    as_json = runner.invoke(args=["campaigns", "show", str(campaign.id), "--json"])
    assert '"rates": {"bounced": 0.0, "bounced_soft": 0.0, "complained": 0.003' in as_json.stdout

    control.resume(session, campaign)
    session.commit()
    assert campaign.pause_reason is None

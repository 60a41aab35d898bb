"""Fixtures of the privacy tests: a person with a history to export, correct and erase."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from prefsvc.consent import changes as consent
from prefsvc.models import (
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    EventKind,
    Language,
    RightsKind,
)
from prefsvc.privacy import register
from tests.factories import make_campaign, make_contact, make_topic


@pytest.fixture
def person(session, clock, settings):
    """Ana: two topics (one left), a campaign received, a rights request, some history."""
    news = make_topic(session, slug="nieuwe-opleidingen", name="Nieuwe opleidingen")
    promo = make_topic(session, slug="promoties", name="Promoties")
    ana = make_contact(
        session,
        "ana@example.org",
        language=Language.FR,
        anchor=date(2025, 6, 1),
        topics=[news, promo],
        first_name="Ana",
        last_name="Peeters",
        organisation="Haven NV",
    )
    consent.record(session, ana, EventKind.IMPORTED, channel="import", now=clock())
    clock.advance(days=1)
    consent.unsubscribe(
        session, ana, promo, channel="one-click", now=clock(), today=date(2026, 3, 11)
    )
    campaign = make_campaign(
        session,
        news,
        variants={
            "nl": ("Nieuw in maart", "<p>nl</p>", None),
            "fr": ("Nouveau en mars", "<p>fr</p>", None),
        },
    )
    campaign.status = CampaignStatus.SENT
    campaign.audience_size = 1
    session.add(
        Delivery(
            campaign_id=campaign.id,
            contact_id=ana.id,
            status=DeliveryStatus.SENT,
            attempts=1,
            smtp_text="250 2.0.0 Ok: queued for <ana@example.org>",
            sent_at=datetime(2026, 3, 9, 8, 0, tzinfo=UTC),
        )
    )
    register.open_request(
        session, RightsKind.ACCESS, now=clock(), settings=settings, contact=ana, note="called"
    )
    session.commit()
    return ana

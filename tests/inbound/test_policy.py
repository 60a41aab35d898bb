"""The rules acting on what comes back: a soft-bounce score like Mailman's, idempotent acts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from prefsvc.campaigns import audience
from prefsvc.inbound import policy
from prefsvc.inbound.codes import Kind
from prefsvc.models import Contact, Delivery, DeliveryStatus, SubscriptionStatus
from tests.factories import make_campaign, make_contact, make_topic

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
RULES = policy.Rules(suppression_key="test-suppression-key-0123456789", score_limit=3, stale_days=7)


def soft(session, contact, day: date) -> str:
    return policy.soft_bounce(
        session,
        contact.id,
        status="4.2.2",
        diagnostic="mailbox full",
        now=NOW,
        today=day,
        rules=RULES,
    )


@pytest.mark.all_databases
def test_soft_bounces_count_once_a_day_and_exclude_at_the_limit(session):
    contact = make_contact(session)
    day = date(2026, 3, 10)
    assert soft(session, contact, day) == "scored"
    assert soft(session, contact, day) == "scored_today"
    assert soft(session, contact, day + timedelta(days=1)) == "scored"
    assert contact.bounced_at is None and contact.bounce_score == 2
    assert soft(session, contact, day + timedelta(days=2)) == "bounced"
    assert (contact.bounce_code, contact.bounce_diagnostic) == ("4.2.2", "mailbox full")
    reason = audience.reason_for(contact, SubscriptionStatus.SUBSCRIBED, on=day, years=5)
    assert reason == audience.BOUNCED


@pytest.mark.all_databases
def test_the_score_starts_again_after_quiet_days(session):
    contact = make_contact(session)
    day = date(2026, 3, 1)
    soft(session, contact, day)
    soft(session, contact, day + timedelta(days=1))
    assert soft(session, contact, day + timedelta(days=9)) == "scored"
    assert contact.bounce_score == 1


@pytest.mark.all_databases
def test_a_delivery_keeps_its_strongest_feedback(session):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic)
    delivery = Delivery(campaign_id=campaign.id, contact_id=contact.id, status=DeliveryStatus.SENT)
    session.add(delivery)
    session.flush()
    for kind in (Kind.SOFT_BOUNCE, Kind.HARD_BOUNCE, Kind.POLICY, Kind.SOFT_BOUNCE):
        policy.note_delivery(session, delivery.id, kind)
    session.expire_all()
    assert session.get(Delivery, delivery.id).feedback == "hard_bounce"


def test_a_hard_bounce_on_an_erased_contact_changes_nothing(session):
    contact = make_contact(session)
    contact.email = None
    session.flush()
    assert not policy.hard_bounce(session, contact.id, status="5.1.1", diagnostic="", now=NOW)
    assert session.get(Contact, contact.id).bounced_at is None


def test_the_diagnostic_kept_does_not_quote_the_address(session):
    contact = make_contact(session, "jan@example.net")
    policy.hard_bounce(
        session,
        contact.id,
        status="5.1.1",
        diagnostic="550 5.1.1 <jan@example.net>:\n   Recipient address rejected " + "x" * 500,
        now=NOW,
    )
    assert contact.bounce_diagnostic.startswith("550 5.1.1 <<recipient>>: Recipient address")
    assert len(contact.bounce_diagnostic) == policy.MAX_DIAGNOSTIC


@pytest.mark.all_databases
def test_clearing_a_bounce_makes_the_address_mailable_again(session):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    for day in range(3):
        soft(session, contact, date(2026, 3, 1) + timedelta(days=day))
    assert contact.bounced_at is not None
    on, years = date(2026, 3, 10), 5
    assert audience.reason_for(contact, SubscriptionStatus.SUBSCRIBED, on=on, years=years) == (
        "bounced"
    )

    assert policy.clear_bounce(session, contact) is True

    assert (contact.bounced_at, contact.bounce_code, contact.bounce_score) == (None, None, 0)
    assert contact.last_soft_bounce_on is None
    assert audience.reason_for(contact, SubscriptionStatus.SUBSCRIBED, on=on, years=years) is None
    assert policy.clear_bounce(session, contact) is False  # nothing left to clear

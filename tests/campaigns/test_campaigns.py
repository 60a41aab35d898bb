"""Campaign life cycle: fan-out into delivery rows, state rules and figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from prefsvc.campaigns import campaigns
from prefsvc.errors import CampaignStateError, InvalidInput, NotFound
from prefsvc.models import CampaignStatus, Delivery, DeliveryStatus
from tests.factories import make_campaign, make_contact, make_topic

pytestmark = pytest.mark.all_databases
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def test_fan_out_writes_one_row_per_subscriber_with_exclusions(session):
    topic = make_topic(session)
    for i in range(5):
        make_contact(session, f"p{i}@example.org", topics=[topic])
    make_contact(session, "expired@example.org", anchor=date(2020, 1, 1), topics=[topic])
    campaign = make_campaign(session, topic)

    size = campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)

    assert size == 5
    assert campaign.status is CampaignStatus.SENDING
    rows = session.execute(
        select(Delivery.status, Delivery.reason, func.count()).group_by(
            Delivery.status, Delivery.reason
        )
    ).all()
    assert sorted((s.value, r, n) for s, r, n in rows) == [
        ("excluded", "window_expired", 1),
        ("queued", None, 5),
    ]
    report = campaigns.stats(session, campaign, today=TODAY, years=5)
    assert report["audience"] == 5
    assert report["excluded"] == {"window_expired": 1}


def test_database_refuses_a_second_delivery_for_the_same_contact(session):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    session.add(Delivery(campaign_id=campaign.id, contact_id=contact.id))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_a_campaign_cannot_be_started_twice(session):
    topic = make_topic(session)
    make_contact(session, topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError):
        campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)


def test_campaign_with_nobody_to_mail_is_sent_at_once(session):
    topic = make_topic(session)
    make_contact(session, anchor=date(2019, 1, 1), topics=[topic])
    campaign = make_campaign(session, topic)
    assert campaigns.start(session, campaign, now=NOW, today=TODAY, years=5) == 0
    assert campaign.status is CampaignStatus.SENT


def test_draft_figures_preview_the_audience(session):
    topic = make_topic(session)
    make_contact(session, topics=[topic])
    make_contact(session, anchor=date(2019, 1, 1), topics=[topic])
    report = campaigns.stats(session, make_campaign(session, topic), today=TODAY, years=5)
    assert report["status"] == "draft"
    assert report["audience"] == 1
    assert report["excluded"] == {"window_expired": 1}
    assert report["sent"] == 0


def test_batches_cover_every_queued_delivery_once(session):
    topic = make_topic(session)
    for i in range(23):
        make_contact(session, f"b{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    batches = list(campaigns.queued_batches(session, campaign.id, 10))
    assert [len(b) for b in batches] == [10, 10, 3]
    ids = [i for b in batches for i in b]
    assert len(set(ids)) == 23
    assert set(ids) == set(
        session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.QUEUED))
    )


def test_create_checks_the_templates_and_the_topic(session):
    make_topic(session, slug="news")
    with pytest.raises(InvalidInput) as error:
        campaigns.create(
            session, topic_slug="news", variants={"nl": ("Hi", "<p>{% if %}</p>", None)}
        )
    assert error.value.field == "html"
    with pytest.raises(NotFound):
        campaigns.create(session, topic_slug="nope", variants={"nl": ("Hi", "<p>x</p>", None)})
    with pytest.raises(InvalidInput) as error:
        campaigns.create(session, topic_slug="news", variants={"de": ("Hi", "<p>x</p>", None)})
    assert error.value.field == "language"


# --- the admin composer -----------------------------------------------------------------


def test_variant_problems_names_every_bad_field_with_its_language(session):
    topic = make_topic(session)
    problems = campaigns.variant_problems(
        session,
        topic_slug=topic.slug,
        variants={
            "nl": ("", "<p>ok</p>", None),
            "fr": ("Sujet", "<p>{{ contact.first_name </p>", None),
            "en": ("Subject", "<p>fine</p>", None),
        },
    )
    assert set(problems) == {("nl", "subject"), ("fr", "html")}


def test_variant_problems_asks_for_a_topic_and_a_language(session):
    problems = campaigns.variant_problems(session, topic_slug="nope", variants={})
    assert set(problems) == {(None, "topic"), (None, "variants")}


def test_revise_replaces_a_drafts_variants_and_refuses_once_sending(session):
    topic = make_topic(session)
    other = make_topic(session)
    campaign = make_campaign(session, topic)
    campaigns.revise(
        session,
        campaign,
        topic_slug=other.slug,
        variants={"fr": ("Nouveau", "<p>Bonjour</p>", None), "nl": ("Nieuw", "<p>Dag</p>", None)},
    )
    session.expire_all()
    assert campaign.topic_id == other.id
    assert sorted(v.subject for v in campaign.variants) == ["Nieuw", "Nouveau"]
    assert campaign.default_language.value == "nl"
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    with pytest.raises(CampaignStateError):
        campaigns.revise(
            session, campaign, topic_slug=topic.slug, variants={"nl": ("x", "<p>y</p>", None)}
        )


def test_timeline_lists_sends_and_the_first_unsubscribe_after_each(session):
    from datetime import timedelta

    from prefsvc.consent import changes as consent

    topic = make_topic(session)
    ana = make_contact(session, "ana@example.org", topics=[topic])
    make_contact(session, "bram@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=NOW, today=TODAY, years=5)
    sent_at = NOW + timedelta(minutes=1)
    session.execute(
        Delivery.__table__.update()
        .where(Delivery.campaign_id == campaign.id)
        .values(status=DeliveryStatus.SENT, sent_at=sent_at)
    )
    later = NOW + timedelta(hours=2)
    consent.unsubscribe(session, ana, topic, channel="one-click", now=later, today=TODAY)
    points = campaigns.timeline(session, campaign)
    assert points == [(sent_at, "sent"), (sent_at, "sent"), (later, "unsubscribed")]

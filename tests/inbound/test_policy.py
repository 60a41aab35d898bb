"""The rules acting on what comes back: a soft-bounce score like Mailman's, idempotent acts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from prefsvc.campaigns import audience
from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.inbound import intake, policy
from prefsvc.inbound.codes import Kind
from prefsvc.inbound.verp import BOUNCES, DELIVERY, NOTICE, UNSUBSCRIBE, Token
from prefsvc.models import (
    ConsentEvent,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    EventKind,
    InboundMessage,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
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


@pytest.mark.all_databases
def test_a_groups_notes_keep_what_one_note_at_a_time_keeps(session):
    """``note_deliveries`` (one statement on PostgreSQL) against ``note_delivery`` in turn."""
    topic = make_topic(session)
    campaign = make_campaign(session, topic)
    held = [None, "soft_bounce", "complaint", "hard_bounce", "delivered", None]
    noted = [
        [Kind.SOFT_BOUNCE],
        [Kind.HARD_BOUNCE, Kind.POLICY],
        [Kind.HARD_BOUNCE],
        [Kind.SOFT_BOUNCE, Kind.POLICY],
        [Kind.POLICY],
        [Kind.POLICY, Kind.COMPLAINT, Kind.SOFT_BOUNCE],
    ]

    def deliveries(side: str) -> list[Delivery]:
        made = []
        for n, feedback in enumerate(held):
            contact = make_contact(session, f"{side}{n}@example.org")
            made.append(Delivery(campaign_id=campaign.id, contact_id=contact.id, feedback=feedback))
        session.add_all(made)
        session.flush()
        return made

    alone, together = deliveries("alone"), deliveries("together")
    for delivery, kinds in zip(alone, noted, strict=True):
        for kind in kinds:
            policy.note_delivery(session, delivery.id, kind)
    policy.note_deliveries(
        session,
        [
            (d.id, kind)
            for d, kinds in reversed(list(zip(together, noted, strict=True)))
            for kind in kinds
        ],
    )
    session.expire_all()

    kept = [session.get(Delivery, d.id).feedback for d in together]
    assert kept == [session.get(Delivery, d.id).feedback for d in alone]
    assert kept == [
        "soft_bounce",
        "hard_bounce",
        "complaint",
        "hard_bounce",
        "policy",
        "complaint",
    ]


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


def _what_objecting_left(session, contact_id: int) -> tuple:
    contact = session.get(Contact, contact_id)
    events = session.execute(
        select(ConsentEvent.kind, ConsentEvent.channel, ConsentEvent.topic_id, ConsentEvent.detail)
        .where(ConsentEvent.contact_id == contact_id)
        .order_by(ConsentEvent.seq)
    ).all()
    suppressed = session.scalar(
        select(Suppression.reason).where(
            Suppression.address_hash
            == suppression.address_hash(RULES.suppression_key, contact.email)
        )
    )
    return (
        contact.status,
        sorted((sub.topic.slug, sub.status) for sub in contact.subscriptions),
        suppressed,
        [tuple(event) for event in events],
    )


@pytest.mark.all_databases
def test_a_complaint_leaves_what_an_objection_leaves_and_counts_once(session):
    topics = [make_topic(session, "haven"), make_topic(session, "opleidingen")]
    spam = make_contact(session, "spam@example.net", topics=topics)
    objector = make_contact(session, "objector@example.net", topics=topics)
    session.commit()

    assert policy.complaint(session, spam.id, now=NOW, rules=RULES)
    assert not policy.complaint(session, spam.id, now=NOW, rules=RULES)
    consent.object_to_all(
        session,
        objector,
        channel=policy.CHANNEL_COMPLAINT,
        now=NOW,
        suppression_key=RULES.suppression_key,
        reason=SuppressionReason.COMPLAINT,
        detail={"reason": "complained"},
    )
    session.commit()
    session.expire_all()

    left = _what_objecting_left(session, spam.id)
    assert left == _what_objecting_left(session, objector.id)
    assert left[0] is ContactStatus.UNSUBSCRIBED and left[2] is SuppressionReason.COMPLAINT
    assert [event[0] for event in left[3]][-1] is EventKind.OBJECTION
    assert session.get(Contact, spam.id).complained_at == NOW
    assert session.get(Contact, objector.id).complained_at is None


@pytest.mark.all_databases
def test_a_complaint_from_someone_who_already_objected_is_noted_without_a_new_event(session):
    topic = make_topic(session)
    contact = make_contact(session, "gone@example.net", topics=[topic])
    consent.object_to_all(
        session, contact, channel="one-click", now=NOW, suppression_key=RULES.suppression_key
    )
    session.commit()
    before = _what_objecting_left(session, contact.id)

    assert policy.complaint(session, contact.id, now=NOW, rules=RULES)
    session.commit()
    session.expire_all()

    assert _what_objecting_left(session, contact.id) == before
    assert session.get(Contact, contact.id).complained_at == NOW


@pytest.mark.all_databases
def test_a_group_is_looked_up_in_one_statement_as_each_report_would_be_alone(session):
    topic = make_topic(session)
    contact = make_contact(session, "ana@example.net", topics=[topic])
    campaign = make_campaign(session, topic)
    session.flush()
    delivery = Delivery(
        campaign_id=campaign.id,
        contact_id=contact.id,
        status=DeliveryStatus.SENT,
        feedback="policy",
    )
    session.add(delivery)
    session.flush()
    kept = InboundMessage(
        received_at=NOW, digest="a" * 64, kind="unknown", outcome="ignored", raw=b""
    )
    session.add(kept)
    session.commit()
    tokens = [
        Token(BOUNCES, DELIVERY, delivery.id),
        Token(BOUNCES, DELIVERY, delivery.id + 1000),  # deleted since
        Token(BOUNCES, NOTICE, contact.id),
        Token(BOUNCES, NOTICE, contact.id + 1000),
        None,
        Token(UNSUBSCRIBE, DELIVERY, delivery.id),
    ]
    digests = ["a" * 64, "b" * 64, "c" * 64, "a" * 64, "d" * 64, "b" * 64]

    together = policy.look_up_all(session, tokens, digests)

    alone = [
        policy.look_up(session, token, intake._SEEN, {"digest": digest})
        for token, digest in zip(tokens, digests, strict=True)
    ]
    assert together == alone
    assert together[0] == (kept.id, policy.Target(contact.id, delivery.id, topic.id, "policy"))
    assert together[1] == (None, None)

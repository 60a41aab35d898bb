"""Events reach a real receiver, signed, once, in order per contact; failing receivers stop."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prefsvc.campaigns import campaigns
from prefsvc.consent import changes as consent
from prefsvc.consent import suppression
from prefsvc.extensions import db
from prefsvc.inbound import policy
from prefsvc.mail.tokens import Signer
from prefsvc.models import (
    CampaignStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookOutboxEvent,
)
from prefsvc.privacy import erasure, retention
from prefsvc.webhooks import delivery, endpoints, events
from tests.factories import make_campaign, make_contact, make_topic
from tests.webhooks.conftest import pump, verify

pytestmark = pytest.mark.all_databases
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _now(clock) -> int:
    return int(clock().timestamp())


def test_one_click_unsubscribe_arrives_signed_with_the_address(
    app, session, settings, clock, receiver, endpoint
):
    topic = make_topic(session, slug="haven")
    ana = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    token = Signer(settings.secret_keys).unsubscribe_token(ana.public_id, topic.id)

    response = app.test_client(use_cookies=False).post(f"/u/{token}", data=ONE_CLICK)
    assert response.status_code == 200
    pump()

    [received] = receiver.received
    assert verify(endpoint.secret, received.headers, received.body, now=_now(clock))
    payload = received.payload
    assert payload["type"] == "contact.unsubscribed"
    assert payload["data"]["contact"] == {"public_id": ana.public_id, "email": "ana@example.org"}
    assert payload["data"]["topic"] == "haven"
    assert payload["data"]["channel"] == "one-click"
    assert received.headers["webhook-id"].startswith("msg_")


def test_nothing_is_held_while_no_endpoint_is_enabled(app, session, clock):
    topic = make_topic(session)
    ana = make_contact(session, topics=[topic])
    consent.unsubscribe(session, ana, topic, channel="test", now=clock(), today=clock().date())
    session.commit()
    assert session.scalar(select(func.count()).select_from(WebhookOutboxEvent)) == 0


def test_a_receiver_down_for_a_while_gets_everything_once_in_order_per_contact(
    app, session, clock, receiver, endpoint
):
    topics = [make_topic(session, slug=f"t{i}") for i in range(3)]
    people = [make_contact(session, f"p{i}@example.org", topics=topics) for i in range(3)]
    session.commit()
    receiver.stop()
    today = clock().date()
    for topic in topics:  # three events per person, in this order
        for person in people:
            consent.unsubscribe(session, person, topic, channel="test", now=clock(), today=today)
            session.commit()
    pump()
    assert receiver.received == []
    [first_try] = {d.last_response for d in session.scalars(select(WebhookDelivery))} - {None}
    assert first_try == "ConnectionRefusedError"

    receiver.start()  # up again, on the same port
    for _ in range(12):  # backoff: a failed lane waits, then goes on in order
        clock.advance(minutes=30)
        pump()

    got = receiver.events()
    assert len(got) == 9
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 9  # once each
    for person in people:
        mine = [
            e["data"]["topic"] for e in got if e["data"]["contact"]["public_id"] == person.public_id
        ]
        assert mine == ["t0", "t1", "t2"]
    states = set(session.scalars(select(WebhookDelivery.status)))
    assert states == {WebhookDeliveryStatus.DELIVERED}


def test_a_receiver_answering_500_is_disabled_after_three_days_and_admins_told(
    app, session, settings, clock, receiver, endpoint, outbox
):
    app.extensions["prefsvc.settings"] = settings.with_(webhook_alert_to="ops@example.org")
    receiver.status = 500
    topic = make_topic(session)
    ana = make_contact(session, topics=[topic])
    consent.unsubscribe(session, ana, topic, channel="test", now=clock(), today=clock().date())
    session.commit()
    pump()
    [row] = session.scalars(select(WebhookDelivery))
    assert (row.last_status, row.last_response) == (500, "receiver broke")

    for _ in range(18):  # 18 × 4 h: past the three days
        clock.advance(hours=4)
        pump()

    session.expire_all()
    disabled = session.get(WebhookEndpoint, endpoint.id)
    assert not disabled.enabled
    assert disabled.disabled_reason == endpoints.DISABLED_FAILING
    [alert] = outbox()
    assert alert["To"] == "ops@example.org"
    assert f"Webhook endpoint {endpoint.id}" in alert["Subject"]
    assert "ana" not in alert.get_body().get_content()  # no address, only id and host


def test_during_a_rotation_both_secrets_sign_then_only_the_new(
    app, session, clock, receiver, endpoint
):
    old = endpoint.secret
    new = endpoints.rotate_secret(session, endpoint, now=clock())
    topic = make_topic(session)
    ana = make_contact(session, topics=[topic])
    consent.unsubscribe(session, ana, topic, channel="test", now=clock(), today=clock().date())
    session.commit()
    pump()
    [during] = receiver.received
    assert verify(old, during.headers, during.body, now=_now(clock))
    assert verify(new, during.headers, during.body, now=_now(clock))

    clock.advance(hours=25)
    other = make_topic(session)
    consent.subscribe(session, ana, other, channel="test", now=clock(), today=clock().date())
    session.commit()
    pump()
    after = receiver.received[1]
    assert after.payload["type"] == "contact.subscribed"
    assert verify(new, after.headers, after.body, now=_now(clock))
    assert not verify(old, after.headers, after.body, now=_now(clock))


def test_an_erased_contact_is_announced_by_public_id_and_keyed_hash_only(
    app, session, settings, clock, receiver, endpoint
):
    ana = make_contact(session, "ana@example.org")
    session.commit()
    erasure.erase(session, ana, settings=settings, now=clock())
    session.commit()
    pump()
    [received] = receiver.received
    assert b"ana@example.org" not in received.body
    contact = received.payload["data"]["contact"]
    assert received.payload["type"] == "contact.erased"
    assert contact["public_id"] == ana.public_id
    assert len(contact["address_hash"]) == 64


def test_a_contact_anonymised_by_retention_is_announced_with_the_keyed_hash_too(
    app, session, settings, clock, receiver, endpoint
):
    """The window ended: the CRM learns of it by public id and the address's keyed hash only."""
    old = make_contact(session, "old@example.org", anchor=date(2021, 1, 1))
    session.commit()
    report = retention.run(
        session,
        today=date(2026, 3, 10),
        now=clock(),
        years=5,
        grace_days=30,
        dry_run=False,
        address_key=settings.suppression_key,
    )
    session.commit()
    assert report.anonymised == 1
    pump()
    [received] = receiver.received
    assert b"old@example.org" not in received.body
    contact = received.payload["data"]["contact"]
    assert received.payload["type"] == "contact.erased"
    assert contact["public_id"] == old.public_id
    assert contact["address_hash"] == suppression.address_hash(
        settings.suppression_key, "old@example.org"
    )


def test_an_endpoint_only_gets_the_events_it_asked_for_and_a_replay_sends_again(
    app, session, clock, receiver
):
    only_subscribes = endpoints.create(session, receiver.url, [events.SUBSCRIBED], now=clock())
    topic = make_topic(session)
    ana = make_contact(session)
    session.commit()
    today = clock().date()
    consent.subscribe(session, ana, topic, channel="test", now=clock(), today=today)
    consent.unsubscribe(session, ana, topic, channel="test", now=clock(), today=today)
    session.commit()
    pump()
    assert [e["type"] for e in receiver.events()] == ["contact.subscribed"]

    [sent] = delivery.log_of(session, only_subscribes.id)
    assert delivery.replay(session, now=clock(), delivery_id=sent.id) == 1
    session.commit()
    pump()
    assert [r.headers["webhook-id"] for r in receiver.received] == [sent.message_id] * 2


def test_bounces_complaints_and_finished_campaigns_are_announced(
    app, session, settings, clock, receiver, endpoint
):
    topic = make_topic(session, slug="haven")
    bo, cy = make_contact(session, "bo@example.org"), make_contact(session, "cy@example.org")
    campaign = make_campaign(session, topic)
    campaign.status = CampaignStatus.SENDING
    session.commit()
    policy.hard_bounce(session, bo.id, status="5.1.1", diagnostic="no such user", now=clock())
    rules = policy.Rules(suppression_key=settings.suppression_key)
    policy.complaint(session, cy.id, now=clock(), rules=rules)
    campaigns.finish_if_done(session, campaign.id, now=clock())
    session.commit()
    pump()

    got = {e["type"]: e["data"] for e in receiver.events()}
    assert got["contact.bounced"]["contact"] == {
        "public_id": bo.public_id,
        "email": "bo@example.org",
    }
    assert got["contact.complained"]["contact"]["email"] == "cy@example.org"
    assert got["campaign.sent"] == {"campaign": {"id": campaign.id, "topic": "haven", "sent": 0}}


def test_the_delivery_log_is_pruned_a_chunk_at_a_time_once_past_its_days(
    app, session, clock, receiver, endpoint
):
    topic = make_topic(session)
    people = [make_contact(session, f"p{i}@example.org", topics=[topic]) for i in range(5)]
    session.commit()
    for person in people:
        consent.unsubscribe(
            session, person, topic, channel="test", now=clock(), today=clock().date()
        )
    session.commit()
    pump()
    assert len(receiver.received) == 5

    clock.advance(days=29)
    assert delivery.prune(session, now=clock(), keep_days=30, chunk=2) == 0
    clock.advance(days=2)
    assert delivery.prune(session, now=clock(), keep_days=30, chunk=2) == 5
    session.commit()
    assert delivery.log_of(session, endpoint.id) == []


def test_one_fan_out_keeps_each_contacts_events_in_order_for_every_endpoint(
    app, session, clock, receiver, endpoint
):
    second = endpoints.create(session, receiver.url, events.ALL, now=clock())
    topics = [make_topic(session, slug=f"t{i}") for i in range(4)]
    people = [make_contact(session, f"p{i}@example.org", topics=topics) for i in range(3)]
    session.commit()
    today = clock().date()
    for topic in topics:  # interleaved: t0 for everyone, then t1 for everyone, …
        for person in people:
            consent.unsubscribe(session, person, topic, channel="test", now=clock(), today=today)
    session.commit()

    assert delivery.fan_out(session, now=clock()) == 12  # all twelve in one batch
    session.commit()

    rows = session.execute(
        select(
            WebhookDelivery.endpoint_id, WebhookDelivery.contact_id, WebhookDelivery.payload
        ).order_by(WebhookDelivery.id)
    ).all()
    assert len(rows) == 24
    for lane in {(e, c) for e, c, _ in rows}:
        in_id_order = [p["data"]["topic"] for e, c, p in rows if (e, c) == lane]
        assert in_id_order == ["t0", "t1", "t2", "t3"]
    assert {e for e, _, _ in rows} == {endpoint.id, second.id}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_one_relay_fans_out_at_a_time_so_later_events_get_later_ids(app, session, clock, endpoint):
    topic = make_topic(session)
    people = [make_contact(session, f"p{i}@example.org", topics=[topic]) for i in range(3)]
    session.commit()
    today = clock().date()
    for person in people[:2]:
        consent.unsubscribe(session, person, topic, channel="test", now=clock(), today=today)
    session.commit()

    with Session(db.engine) as first_relay:
        assert delivery.fan_out(first_relay, now=clock()) == 2  # not committed yet
        consent.unsubscribe(session, people[2], topic, channel="test", now=clock(), today=today)
        session.commit()
        assert delivery.fan_out(session, now=clock()) == 0  # the first relay is at it
        session.rollback()
        first_relay.commit()
    assert delivery.fan_out(session, now=clock()) == 1
    session.commit()

    contacts_by_id = session.scalars(
        select(WebhookDelivery.contact_id).order_by(WebhookDelivery.id)
    ).all()
    assert contacts_by_id == [p.id for p in people]

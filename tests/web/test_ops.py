"""Operations endpoints: health and metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from prefsvc.campaigns import campaigns
from tests.factories import make_campaign, make_contact, make_topic


@pytest.mark.all_brokers
def test_health_reports_database_and_broker(client, broker_kind):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["broker"] == ("in-process" if broker_kind == "stub" else "ok")


def test_health_is_503_when_the_broker_is_unreachable(settings, clock):
    from prefsvc import create_app

    app = create_app(settings.with_(broker_url="redis://127.0.0.1:1/0"), clock=clock)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "degraded",
        "database": "ok",
        "broker": "unreachable",
    }


def test_metrics_expose_deliveries_and_queue_depth(session, client, clock):
    topic = make_topic(session)
    for i in range(3):
        make_contact(session, f"m{i}@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=clock().date(), years=5)
    session.commit()

    response = client.get("/metrics")
    text = response.get_data(as_text=True)

    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST  # what Prometheus expects
    assert 'prefsvc_deliveries_open{state="queued"} 3.0' in text
    assert 'prefsvc_campaigns{status="sending"} 1.0' in text
    assert "prefsvc_queue_depth" in text


class _RefusingSome:
    """A transport that refuses one address for good and accepts the others."""

    def send(self, *, sender, recipients, message):
        from prefsvc.mail.transport import PermanentFailure

        if recipients[0].startswith("gone"):
            raise PermanentFailure(550, "5.1.1 No such user")

    def close(self):
        pass


@pytest.mark.all_databases
def test_metrics_count_sent_and_failed_by_reason_and_the_send_rate(
    session, settings, client, clock
):

    from sqlalchemy import select

    from prefsvc.campaigns import delivery
    from prefsvc.models import Delivery

    topic = make_topic(session)
    for address in ("a@example.org", "b@example.org", "gone@example.org"):
        make_contact(session, address, topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=clock().date(), years=5)
    session.commit()
    ids = list(session.scalars(select(Delivery.id)))
    delivery.deliver(session, ids, settings=settings, now=clock, transport=_RefusingSome())

    text = client.get("/metrics").get_data(as_text=True)
    assert 'prefsvc_messages_total{reason="",state="sent"} 2.0' in text
    assert 'prefsvc_messages_total{reason="rejected",state="failed"} 1.0' in text
    assert f"prefsvc_send_rate {2 / 60!r}" in text
    assert "gone@example.org" not in text

    clock.advance(seconds=61)
    assert "prefsvc_send_rate 0.0" in client.get("/metrics").get_data(as_text=True)


@pytest.mark.all_databases
def test_metrics_scraped_again_soon_do_not_query_the_database_again(session, client, clock):
    from sqlalchemy import event

    from prefsvc.extensions import db

    topic = make_topic(session)
    make_contact(session, "a@example.org", topics=[topic])
    campaign = make_campaign(session, topic)
    campaigns.start(session, campaign, now=clock(), today=clock().date(), years=5)
    session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        first = client.get("/metrics").get_data(as_text=True)
        queried = len(statements)
        clock.advance(seconds=5)
        again = client.get("/metrics").get_data(as_text=True)
        assert len(statements) == queried  # within METRICS_CACHE_SECONDS (15): no query
        clock.advance(seconds=15)
        client.get("/metrics")
        assert len(statements) > queried  # older than that: read afresh
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert queried > 0
    assert 'prefsvc_deliveries_open{state="queued"} 1.0' in first
    assert first == again


def test_health_reports_jobs_waiting_for_a_broker_and_the_scheduler(session, client, clock):
    from prefsvc.queue import outbox, scheduler

    outbox.add(session, "send_notice", ["optout_ack", 1, {}], now=clock())
    scheduler.tick(session, client.application.extensions["prefsvc.settings"], now=clock())
    fresh = client.get("/healthz")
    assert fresh.status_code == 200 and fresh.get_json()["jobs_waiting"] == 0
    clock.advance(minutes=2)
    stale = client.get("/healthz")
    assert stale.status_code == 503
    body = stale.get_json()
    assert (body["status"], body["jobs_waiting"], body["oldest_job_waiting_seconds"]) == (
        "degraded",
        1,
        120,
    )
    assert body["scheduler_last_run"].startswith("2026-03-10T09:30:00")

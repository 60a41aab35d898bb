"""Operations endpoints: health and metrics."""

from __future__ import annotations

import pytest

from prefsvc import campaigns
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

    text = client.get("/metrics").get_data(as_text=True)

    assert 'prefsvc_deliveries_open{state="queued"} 3.0' in text
    assert 'prefsvc_campaigns{status="sending"} 1.0' in text
    assert "prefsvc_queue_depth" in text
